"""Noise schedules sigma(t) of the forward diffusion (docs/method.md#noise-schedules)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from d3_core.errors import D3ConfigError

__all__ = ["GeometricNoise", "LogLinearNoise", "Noise", "build_noise", "sample_train_times"]


@dataclass(frozen=True)
class GeometricNoise:
    """Geometric schedule sigma(t) = sigma_min^(1-t) * sigma_max^t, the one D3 uses.

    Attributes:
        sigma_min: Total noise at t = 0. Every D3 config uses 1e-4.
        sigma_max: Total noise at t = 1; 20 makes the uniform graph's x_1 uniform to e^-20.
    """

    sigma_min: float = 1e-4
    sigma_max: float = 20.0

    def __post_init__(self) -> None:
        if not 0.0 < self.sigma_min < self.sigma_max:
            raise D3ConfigError(
                f"geometric noise needs 0 < sigma_min < sigma_max, got sigma_min={self.sigma_min}, "
                f"sigma_max={self.sigma_max}"
            )

    def total_noise(self, t: torch.Tensor) -> torch.Tensor:
        """sigma(t) for t in [0, 1], any shape, same dtype."""
        log_min, log_max = math.log(self.sigma_min), math.log(self.sigma_max)
        return torch.exp(log_min + t * (log_max - log_min))

    def rate_noise(self, t: torch.Tensor) -> torch.Tensor:
        """sigma'(t) = sigma(t) * ln(sigma_max / sigma_min)."""
        return self.total_noise(t) * math.log(self.sigma_max / self.sigma_min)

    def __call__(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (sigma(t), sigma'(t)), each of t's shape."""
        sigma = self.total_noise(t)
        return sigma, sigma * math.log(self.sigma_max / self.sigma_min)


@dataclass(frozen=True)
class LogLinearNoise:
    """SEDD's log-linear schedule sigma(t) = -log(1 - (1-eps) t), meant for the absorbing graph.

    Attributes:
        eps: Keeps sigma(1) finite: sigma(1) = -log(eps).
    """

    eps: float = 1e-3

    def __post_init__(self) -> None:
        if not 0.0 < self.eps < 1.0:
            raise D3ConfigError(f"log-linear noise needs 0 < eps < 1, got eps={self.eps}")

    def total_noise(self, t: torch.Tensor) -> torch.Tensor:
        """sigma(t) for t in [0, 1], any shape, same dtype."""
        return -torch.log1p(-(1.0 - self.eps) * t)

    def rate_noise(self, t: torch.Tensor) -> torch.Tensor:
        """sigma'(t) = (1-eps) / (1 - (1-eps) t)."""
        return (1.0 - self.eps) / (1.0 - (1.0 - self.eps) * t)

    def __call__(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (sigma(t), sigma'(t)), each of t's shape."""
        return self.total_noise(t), self.rate_noise(t)


Noise = GeometricNoise | LogLinearNoise

_SCHEDULES = {"geometric": GeometricNoise, "loglinear": LogLinearNoise}


def build_noise(kind: str = "geometric", **params: float) -> Noise:
    """Builds a schedule by name ("geometric" or "loglinear") with its parameters."""
    key = kind.lower().replace("-", "").replace("_", "")
    if key not in _SCHEDULES:
        raise D3ConfigError(f"unknown noise schedule {kind!r}; choose one of {sorted(_SCHEDULES)}")
    try:
        return _SCHEDULES[key](**params)
    except TypeError as err:
        raise D3ConfigError(f"bad parameters for {kind!r} noise: {err}") from None


def sample_train_times(
    batch_size: int,
    *,
    eps: float = 1e-3,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draws training times t = (1 - eps) U + eps, U ~ U[0, 1), one per sequence.

    Args:
        batch_size: Number of sequences B.
        eps: Smallest time, > 0; the research code uses 1e-3 (the packaged release 1e-5).
        device: Where to put the result.
        generator: Source of randomness, on `device`.

    Returns:
        (B,) float32 times in [eps, 1).
    """
    if not 0.0 < eps < 1.0:  # t = 0 means sigma = 0 for log-linear noise: infinite ratios
        raise D3ConfigError(f"training time eps must lie in (0, 1), got {eps}")
    u = torch.rand(batch_size, device=device, generator=generator)
    return (1.0 - eps) * u + eps
