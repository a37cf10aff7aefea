"""Metrics of designed sequences (SPEC §13); every function takes plain arrays."""

from __future__ import annotations

import numpy as np

from d3_core.errors import D3InputError

__all__ = ["pearson", "sp_mse"]


def _paired(real: np.ndarray, generated: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    real = np.asarray(real, dtype=np.float64)
    generated = np.asarray(generated, dtype=np.float64)
    if real.shape != generated.shape:
        raise D3InputError(
            f"paired metrics need predictions of equal shape; got real {real.shape} and "
            f"generated {generated.shape}"
        )
    return real.reshape(len(real), -1), generated.reshape(len(generated), -1)


def sp_mse(real: np.ndarray, generated: np.ndarray) -> float:
    """Conditional fidelity: mean over sequences and outputs of (f(x_real) - f(x_gen))^2.

    Args:
        real: (N, F...) scores of the real sequences (any scorer: oracle or planted rule).
        generated: Scores of the sequences generated for the same labels, in the same order.
    """
    real, generated = _paired(real, generated)
    return float(np.mean((real - generated) ** 2))


def pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson correlation per column of two (N, F) arrays; NaN where a column is constant."""
    x, y = _paired(x, y)
    x = x - x.mean(axis=0)
    y = y - y.mean(axis=0)
    denominator = np.sqrt((x**2).sum(axis=0) * (y**2).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (x * y).sum(axis=0) / denominator
