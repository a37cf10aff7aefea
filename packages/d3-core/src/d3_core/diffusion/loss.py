"""Diffusion-weighted denoising score entropy, the SEDD training loss
(docs/method.md#score-entropy-loss)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from d3_core.diffusion.graph import Graph
from d3_core.diffusion.noise import Noise, sample_train_times

__all__ = [
    "ScoreFn",
    "loss_dtype_for",
    "perturb",
    "score_entropy_loss",
    "weighted_score_entropy",
]

#: A score model call: (tokens (B, L) int64, labels, sigma (B,)) -> log-scores (B, L, V).
ScoreFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def loss_dtype_for(device: torch.device) -> torch.dtype:
    """float64 where the device has it: the entropy's constant term cancels badly in float32
    at sigma ~ 1e-4 (docs/method.md#score-entropy-loss). The tensors are (B, L, V), so the cost is
    negligible."""
    return torch.float32 if device.type == "mps" else torch.float64


def perturb(
    x0: torch.Tensor,
    *,
    graph: Graph,
    noise: Noise,
    t: torch.Tensor | None = None,
    eps: float = 1e-3,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Draws the forward process for a batch: times (unless given), then x_t ~ P_sigma(t)(x0 -> .).

    Args:
        x0: (B, L) int64 clean tokens.
        graph: The forward process.
        noise: The noise schedule.
        t: (B,) times in (0, 1]; drawn as (1 - eps) U + eps when None.
        eps: Smallest training time when `t` is drawn.
        generator: Randomness for t and x_t, on x0's device.

    Returns:
        (x_t (B, L) int64, sigma (B,), sigma' (B,)).
    """
    if t is None:
        t = sample_train_times(x0.shape[0], eps=eps, device=x0.device, generator=generator)
    sigma, dsigma = noise(t)
    return graph.sample_transition(x0, sigma[:, None], generator=generator), sigma, dsigma


def weighted_score_entropy(
    log_score: torch.Tensor,
    xt: torch.Tensor,
    x0: torch.Tensor,
    sigma: torch.Tensor,
    dsigma: torch.Tensor,
    *,
    graph: Graph,
) -> torch.Tensor:
    """sum_l sigma' SE(log_score; sigma, x_t, x0) per sequence, computed in float64 where possible.

    Args:
        log_score: (B, L, V) model output at `xt`.
        xt: (B, L) noised tokens; x0: (B, L) clean tokens.
        sigma: (B,) total noise; dsigma: (B,) its rate.
        graph: The forward process.

    Returns:
        (B,) float32 loss per sequence (summed over positions, no 1/L).
    """
    dtype = loss_dtype_for(log_score.device)
    entropy = graph.score_entropy(log_score.to(dtype), sigma[:, None].to(dtype), xt, x0)
    return (dsigma[:, None].to(dtype) * entropy).sum(-1).float()


def score_entropy_loss(
    score_fn: ScoreFn,
    x0: torch.Tensor,
    labels: torch.Tensor,
    *,
    graph: Graph,
    noise: Noise,
    t: torch.Tensor | None = None,
    eps: float = 1e-3,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Per-sequence loss sum_l sigma'(t) SE(s; sigma(t), x_t, x0) at random or given times.

    Args:
        score_fn: The score model, called once on the noised batch.
        x0: (B, L) int64 clean tokens.
        labels: (B, S) or (B, L, S) float conditioning labels, passed through to `score_fn`.
        graph: The forward process.
        noise: The noise schedule.
        t: (B,) times in (0, 1]; drawn as (1 - eps) U + eps when None.
        eps: Smallest training time when `t` is drawn.
        generator: Randomness for t and x_t, on x0's device.

    Returns:
        (B,) loss per sequence (summed over positions, no 1/L), float32, differentiable.
    """
    xt, sigma, dsigma = perturb(x0, graph=graph, noise=noise, t=t, eps=eps, generator=generator)
    log_score = score_fn(xt, labels, sigma)  # (B, L, V)
    return weighted_score_entropy(log_score, xt, x0, sigma, dsigma, graph=graph)
