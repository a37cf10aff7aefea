"""Reverse-time samplers: Euler and analytic tau-leaping with a final denoiser
(docs/method.md#sampling).

Every sampler shares one leading signature, `(score_fn, x, labels, *, graph, noise, ...)`: it
starts from tokens `x` (usually drawn from the graph's limit distribution), calls `score_fn`
with the same labels at every step and returns the final tokens. A score function is any
callable `(tokens (B, L) int64, labels, sigma (B,)) -> log-scores (B, L, V)`, so samplers are
testable with exact scores and no trained model. A score function may carry a ``denoiser``
attribute, the score function the final denoising jump uses instead (oracle guidance does).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from d3_core.diffusion.graph import Graph
from d3_core.diffusion.loss import ScoreFn
from d3_core.diffusion.noise import Noise
from d3_core.errors import D3ConfigError, D3InputError

__all__ = [
    "PREDICTORS",
    "FixedPositions",
    "sample",
    "sample_analytic",
    "sample_categorical",
    "sample_euler",
]

#: Randomness: one generator for the batch, or one per sequence (results then do not depend on
#: the batch size or the order of the other sequences).
Generators = torch.Generator | Sequence[torch.Generator] | None
#: Called after every step with {"step", "steps", "t", "x"}.
Callback = Callable[[dict], None]


@dataclass(frozen=True)
class FixedPositions:
    """Positions held at given tokens throughout sampling (adapters, motifs to design around).

    Attributes:
        mask: (L,) or (B, L) bool, True where the token is fixed.
        tokens: (L,) or (B, L) int64 tokens; only entries under `mask` are used.
    """

    mask: torch.Tensor
    tokens: torch.Tensor

    def __post_init__(self) -> None:
        if self.mask.dtype != torch.bool:
            raise D3InputError(f"fixed-position mask must be bool, got {self.mask.dtype}")
        if self.tokens.dtype != torch.int64:
            raise D3InputError(f"fixed tokens must be int64, got {self.tokens.dtype}")
        if self.mask.dim() not in (1, 2) or self.tokens.dim() not in (1, 2):
            raise D3InputError(
                "fixed-position mask and tokens must be (L,) or (B, L), got "
                f"{tuple(self.mask.shape)} and {tuple(self.tokens.shape)}"
            )

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """Returns `x` (B, L) with the fixed positions overwritten."""
        try:
            return torch.where(self.mask.to(x.device), self.tokens.to(x.device), x)
        except RuntimeError:
            raise D3InputError(
                f"fixed positions {tuple(self.mask.shape)} do not fit tokens {tuple(x.shape)}"
            ) from None


def _exponential_like(probs: torch.Tensor, generator: Generators) -> torch.Tensor:
    if generator is None or isinstance(generator, torch.Generator):
        return torch.empty_like(probs).exponential_(generator=generator)
    rows = [torch.empty_like(probs[0]).exponential_(generator=g) for g in generator]
    return torch.stack(rows)


def sample_categorical(probs: torch.Tensor, generator: Generators = None) -> torch.Tensor:
    """Draws one state per row of unnormalised non-negative weights by an exponential race.

    argmax_y p_y / E_y with E_y ~ Exp(1) picks y with probability p_y / sum(p); negative weights
    (from a coarse Euler step) are clipped to zero.

    Args:
        probs: (..., V) weights.
        generator: One generator, or one per leading row.

    Returns:
        (...) int64 draws.
    """
    return (probs.clamp_min(0.0) / _exponential_like(probs, generator)).argmax(-1)


def _limit(graph: Graph, batch: int, length: int, device, generator: Generators) -> torch.Tensor:
    if generator is None or isinstance(generator, torch.Generator):
        return graph.sample_limit(batch, length, device=device, generator=generator)
    if len(generator) != batch:
        raise D3InputError(f"got {len(generator)} generators for a batch of {batch}")
    return torch.cat([graph.sample_limit(1, length, device=device, generator=g) for g in generator])


def _scores(score_fn: ScoreFn, x: torch.Tensor, labels: torch.Tensor, sigma: torch.Tensor):
    sigma = sigma.expand(x.shape[0])  # (B,)
    return score_fn(x, labels, sigma).float().exp()  # (B, L, V) ratios


def _euler_step(score_fn, x, labels, t, dt, graph, noise, generator):
    sigma, dsigma = noise(t)
    rate = graph.reverse_rate(x, _scores(score_fn, x, labels, sigma))
    probs = F.one_hot(x, graph.num_states).to(rate.dtype) + dt * dsigma * rate
    return sample_categorical(probs, generator)


def _analytic_step(score_fn, x, labels, t, dt, graph, noise, generator):
    sigma = noise.total_noise(t)
    dsigma = sigma - noise.total_noise(t - dt)
    return _jump(score_fn, x, labels, sigma, dsigma, graph, generator)


def _jump(score_fn, x, labels, sigma, dsigma, graph, generator, drop_mask=False):
    """Tweedie tau-leap: p(x_{sigma - dsigma} | x_sigma) from the staggered score."""
    score = graph.staggered_score(_scores(score_fn, x, labels, sigma), dsigma)
    probs = score * graph.transp_transition(x, dsigma)  # (B, L, V)
    if drop_mask:
        probs = probs[..., : graph.num_states - 1]
    return sample_categorical(probs, generator)


_STEPS = {"euler": _euler_step, "analytic": _analytic_step}
PREDICTORS = tuple(_STEPS)


@torch.no_grad()
def _integrate(
    step_fn,
    score_fn: ScoreFn,
    x: torch.Tensor,
    labels: torch.Tensor,
    *,
    graph: Graph,
    noise: Noise,
    steps: int,
    eps: float,
    denoise: bool,
    fixed: FixedPositions | None,
    generator: Generators,
    callback: Callback | None,
) -> torch.Tensor:
    if steps < 1:
        raise D3ConfigError(f"sampling needs at least 1 step, got steps={steps}")
    if not 0.0 < eps < 1.0:
        raise D3ConfigError(f"sampling eps must lie in (0, 1), got {eps}")
    if x.dim() != 2 or x.dtype != torch.int64:
        raise D3InputError(f"tokens must be (B, L) int64, got {tuple(x.shape)} {x.dtype}")
    if labels.shape[0] != x.shape[0]:
        raise D3InputError(f"labels have {labels.shape[0]} rows for a batch of {x.shape[0]}")
    apply_fixed = fixed.apply if fixed is not None else (lambda tokens: tokens)
    x = apply_fixed(x)
    times = torch.linspace(1.0, eps, steps + 1, device=x.device)  # t_0 = 1 ... t_steps = eps
    dt = (1.0 - eps) / steps
    for i in range(steps):
        x = apply_fixed(step_fn(score_fn, x, labels, times[i], dt, graph, noise, generator))
        if callback is not None:
            callback({"step": i + 1, "steps": steps, "t": float(times[i + 1]), "x": x})
    if denoise:
        sigma = noise.total_noise(times[-1])
        denoiser = getattr(score_fn, "denoiser", score_fn)
        x = apply_fixed(
            _jump(denoiser, x, labels, sigma, sigma, graph, generator, drop_mask=graph.absorbing)
        )
    return x


def sample_euler(
    score_fn: ScoreFn,
    x: torch.Tensor,
    labels: torch.Tensor,
    *,
    graph: Graph,
    noise: Noise,
    steps: int = 128,
    eps: float = 1e-5,
    denoise: bool = True,
    fixed: FixedPositions | None = None,
    generator: Generators = None,
    callback: Callback | None = None,
) -> torch.Tensor:
    """Euler tau-leaping: x' ~ onehot(x) + dt sigma'(t) R(x, s), then a final denoiser.

    Args:
        score_fn: Log-score model `(tokens, labels, sigma) -> (B, L, V)`.
        x: (B, L) int64 start tokens (t = 1), e.g. from `graph.sample_limit`.
        labels: (B, S) or (B, L, S) labels, passed unchanged to every call.
        graph: The forward process the model was trained on.
        noise: Its noise schedule.
        steps: Number of predictor steps on t = linspace(1, eps, steps + 1).
        eps: Final time.
        denoise: Finish with one analytic jump from sigma(eps) to zero (it samples, no argmax).
        fixed: Positions held at given tokens.
        generator: Randomness: one generator, or one per sequence.
        callback: Called after every step.

    Returns:
        (B, L) int64 tokens.
    """
    return _integrate(
        _euler_step, score_fn, x, labels, graph=graph, noise=noise, steps=steps, eps=eps,
        denoise=denoise, fixed=fixed, generator=generator, callback=callback,
    )  # fmt: skip


def sample_analytic(
    score_fn: ScoreFn,
    x: torch.Tensor,
    labels: torch.Tensor,
    *,
    graph: Graph,
    noise: Noise,
    steps: int = 128,
    eps: float = 1e-5,
    denoise: bool = True,
    fixed: FixedPositions | None = None,
    generator: Generators = None,
    callback: Callback | None = None,
) -> torch.Tensor:
    """Analytic (Tweedie) tau-leaping: x' ~ exp(-dsigma Q)^T s * P_dsigma(. -> x), SEDD alg. 2.

    Arguments and return value as `sample_euler`.
    """
    return _integrate(
        _analytic_step, score_fn, x, labels, graph=graph, noise=noise, steps=steps, eps=eps,
        denoise=denoise, fixed=fixed, generator=generator, callback=callback,
    )  # fmt: skip


def sample(
    score_fn: ScoreFn,
    labels: torch.Tensor,
    *,
    length: int,
    graph: Graph,
    noise: Noise,
    predictor: str = "analytic",
    steps: int = 128,
    eps: float = 1e-5,
    denoise: bool = True,
    fixed: FixedPositions | None = None,
    generator: Generators = None,
    callback: Callback | None = None,
) -> torch.Tensor:
    """Draws one sequence per label row, starting from the graph's limit distribution.

    Args:
        score_fn: Log-score model `(tokens, labels, sigma) -> (B, L, V)`.
        labels: (B, S) or (B, L, S) labels; B sequences are drawn.
        length: Sequence length L.
        graph: The forward process the model was trained on.
        noise: Its noise schedule.
        predictor: "analytic" (default) or "euler".
        steps, eps, denoise, fixed, generator, callback: As for `sample_euler`.

    Returns:
        (B, L) int64 tokens.
    """
    if predictor not in _STEPS:
        raise D3ConfigError(f"unknown predictor {predictor!r}; choose one of {list(PREDICTORS)}")
    x = _limit(graph, labels.shape[0], length, labels.device, generator)
    sampler = sample_analytic if predictor == "analytic" else sample_euler
    return sampler(
        score_fn, x, labels, graph=graph, noise=noise, steps=steps, eps=eps, denoise=denoise,
        fixed=fixed, generator=generator, callback=callback,
    )  # fmt: skip
