"""One optimisation step of D3 as plain torch: loss, backward, clipping, optimizer, EMA."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from d3_core.diffusion.graph import Graph
from d3_core.diffusion.loss import perturb, weighted_score_entropy
from d3_core.diffusion.noise import Noise
from d3_core.errors import D3ConfigError, TrainingDiverged
from d3_core.training.ema import ExponentialMovingAverage

__all__ = ["drop_labels", "train_step"]


def drop_labels(
    labels: torch.Tensor, p: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Replaces each sequence's labels by the null label (all NaN) with probability `p`.

    This is the label dropout of classifier-free guidance: one model learns the conditional
    score and, from the dropped rows, the unconditional one. A per-position label is dropped
    for the whole sequence, so the unconditional model sees no label at all.

    Args:
        labels: (B, S) or (B, L, S) float labels.
        p: Drop probability in [0, 1); 0 returns `labels` without drawing random numbers.
        generator: Randomness, on the labels' device.
    """
    if p <= 0.0:
        return labels
    keep = torch.rand(labels.shape[0], device=labels.device, generator=generator) >= p
    keep = keep.reshape(-1, *[1] * (labels.dim() - 1))
    return torch.where(keep, labels, torch.full_like(labels, float("nan")))


def train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    ema: ExponentialMovingAverage | None,
    x0: torch.Tensor,
    labels: torch.Tensor,
    *,
    graph: Graph,
    noise: Noise,
    micro_batch: int | None = None,
    grad_clip: float | None = 1.0,
    eps: float = 1e-3,
    label_dropout: float = 0.0,
    generator: torch.Generator | None = None,
    backward: Callable[[torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """Runs one step on a batch: mean SEDD loss, backward, clip, optimizer step, EMA update.

    Micro-batching splits the batch for the forward and backward passes only: activations of
    `micro_batch` sequences are alive at a time, gradients accumulate, and the optimizer steps
    once on the mean over the whole batch. Times and noised tokens are drawn for the whole
    batch first, so with dropout off the step does not depend on `micro_batch`.

    Args:
        model: Score model `(tokens, labels, sigma) -> (B, L, V)` in training mode.
        optimizer: Its optimizer.
        ema: Updated after the optimizer step (docs/method.md#ema); None skips it.
        x0: (B, L) int64 clean tokens.
        labels: (B, S) or (B, L, S) labels.
        graph: The forward process.
        noise: The noise schedule.
        micro_batch: Sequences per forward/backward pass; None or >= B runs the batch at once.
        grad_clip: Maximum global gradient norm; None disables clipping.
        eps: Smallest training time.
        label_dropout: Probability of training a sequence on the null label (`drop_labels`);
            the model needs a null-label embedding when it is positive.
        generator: Randomness for times and noised tokens.
        backward: How to backpropagate a loss (e.g. Lightning's `manual_backward`);
            `loss.backward()` by default.

    Returns:
        The batch's mean loss, a detached scalar tensor.

    Raises:
        TrainingDiverged: The loss or the gradient norm is not finite. The optimizer, the EMA
            and the weights are left as they were before the step, so nothing non-finite is
            ever saved (one host sync per step decides it).
    """
    batch = x0.shape[0]
    step = batch if micro_batch is None else micro_batch
    if step < 1:
        raise D3ConfigError(f"micro_batch must be a positive integer or None, got {micro_batch}")
    backward = backward or torch.Tensor.backward
    xt, sigma, dsigma = perturb(x0, graph=graph, noise=noise, eps=eps, generator=generator)
    labels = drop_labels(labels, label_dropout, generator)
    optimizer.zero_grad(set_to_none=True)
    total = torch.zeros((), device=x0.device)
    for start in range(0, batch, step):
        part = slice(start, start + step)
        log_score = model(xt[part], labels[part], sigma[part])  # (b, L, V)
        loss = weighted_score_entropy(
            log_score, xt[part], x0[part], sigma[part], dsigma[part], graph=graph
        )
        loss = loss.sum() / batch  # this part's share of the batch mean
        backward(loss)
        total += loss.detach()
    # Without clipping, an infinite limit measures the norm and scales nothing.
    limit = grad_clip if grad_clip is not None else float("inf")
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), limit)
    if not bool(torch.isfinite(total + norm)):
        optimizer.zero_grad(set_to_none=True)
        raise TrainingDiverged(
            f"the loss is {float(total):.4g} and the gradient norm {float(norm):.4g}"
        )
    optimizer.step()
    if ema is not None:
        ema.update(model)
    return total
