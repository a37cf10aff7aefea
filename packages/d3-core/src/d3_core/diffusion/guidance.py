"""Guidance for score-entropy samplers: classifier-free and oracle (predictor) guidance.

Both act on the concrete score. A reverse step of the uniform graph moves position l from x_l
to y at the rate R(x -> y) = s_y(x) Q(y, x_l) sigma'(t) (docs/method.md#sampling), where
s_y(x) = p_t(y) / p_t(x) is the score of the single-base neighbour y. Tilting the target
distribution by a positive factor tilts every neighbour ratio by the factor's ratio, so guidance
is a transform of the score function and works unchanged in every predictor (Euler, analytic),
in the final denoiser and with fixed positions. The entry at the current token stays 0.

Classifier-free guidance (CFG). A model trained with label dropout gives the conditional
log-score log s(x | c) and, for the null label (an all-NaN label row), the unconditional one
log s(x). Guiding with weight w samples, at each time, from the tilted marginal

    p_w(x | c)  ∝  p_t(x | c)^(1 + w) · p_t(x)^(-w),

whose concrete score needs no normaliser, since it cancels in the ratio:

    s_w,y(x) = [p_t(y | c) / p_t(x | c)]^(1 + w) · [p_t(y) / p_t(x)]^(-w)
    log s_w  = (1 + w) · log s(x | c) - w · log s(x).

w = 0 is the conditional model, w = -1 the unconditional one and w > 0 sharpens the
conditioning. In rate form this is R_c^(1+w) R_u^(-w) (the Q factor cancels), the guided rate
of CTMC classifier-free guidance (Nisonoff et al., "Unlocking guidance for discrete state-space
diffusion"). As for continuous diffusion, the tilted marginals are not exactly the noised
marginals of one tilted data distribution; the guided chain's own law is what the samplers
reproduce (tested against the exact chain of a one-position toy).

Oracle (predictor) guidance. Bayes' rule p(x | c) ∝ p(x) p(c | x) turns any score into a
conditional one: s_y(x | c) = s_y(x) · p(c | y) / p(c | x). With an oracle f (predicted
activity, in label units) and a Gaussian likelihood p(c | x) = N(c; f(x), I), the guided
log-score with weight γ is

    log s_y(x) + γ · [log p(c | y) - log p(c | x)]
      = log s_y(x) - (γ / 2) · (|f(y) - c|² - |f(x) - c|²).

It needs no label dropout, so it works with every checkpoint, including research runs. The
oracle was trained on clean sequences, so it is not applied to the noisy x_t but to the
denoised estimate x̂ = E[x_0 | x_t] (per position, from the same score, as the final denoiser
computes it) given as a soft one-hot input; the neighbour y of x_t at position l becomes x̂
with row l set to one-hot(y). The *exact* form evaluates the oracle on all 3L such neighbours
(3L + 1 oracle calls per sequence and step); the *gradient* form takes the first-order
expansion  f(y) - f(x̂) ≈ ∇f(x̂) · (e_y - x̂_l)  and needs one forward and backward pass.
Each position's tilt assumes the others stay, so the final denoising jump, whose step is the
whole remaining noise, is taken with the unguided score (`denoiser` of the guided function).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from d3_core.diffusion.graph import Graph
from d3_core.diffusion.loss import ScoreFn
from d3_core.errors import D3ConfigError, D3InputError

__all__ = [
    "ORACLE_GUIDANCE_FORMS",
    "Guidance",
    "classifier_free",
    "denoised_probs",
    "guided_score_fn",
    "load_guiding_oracle",
    "null_labels",
    "oracle_guided",
    "resolve_guidance",
]

ORACLE_GUIDANCE_FORMS = ("gradient", "exact")


def null_labels(labels: Tensor) -> Tensor:
    """The null label (all NaN) in the shape of `labels`: "no label", for unconditional scores."""
    return torch.full_like(labels, float("nan"))


def classifier_free(score_fn: ScoreFn, weight: float) -> ScoreFn:
    """A score function guided by classifier-free guidance of weight `weight` (module docstring).

    The conditional and unconditional scores come from one call on the doubled batch.

    Args:
        score_fn: Log-score model `(tokens, labels, sigma) -> (B, L, V)` that accepts null
            (all-NaN) label rows, i.e. one trained with label dropout.
        weight: w; 0 returns `score_fn` itself.

    Returns:
        `(tokens, labels, sigma) -> (1 + w) log s(x | labels) - w log s(x)`.
    """
    if weight == 0:
        return score_fn

    def guided(tokens: Tensor, labels: Tensor, sigma: Tensor) -> Tensor:
        batch = tokens.shape[0]
        both = score_fn(
            torch.cat([tokens, tokens]),
            torch.cat([labels, null_labels(labels)]),
            torch.cat([sigma, sigma]),
        ).float()
        conditional, unconditional = both[:batch], both[batch:]
        return (1.0 + weight) * conditional - weight * unconditional

    return guided


def denoised_probs(log_score: Tensor, tokens: Tensor, sigma: Tensor, graph: Graph) -> Tensor:
    """Per-position p(x_0 = y | x_t) from a score: the final denoiser's jump from sigma to 0.

    Args:
        log_score: (B, L, V) log-scores at `tokens`.
        tokens: (B, L) int64 noised tokens.
        sigma: (B,) total noise.
        graph: The forward process.

    Returns:
        (B, L, V) float32 probabilities, rows summing to one.
    """
    sigma = sigma.reshape(-1, 1).to(log_score.dtype)
    probs = graph.staggered_score(log_score.float().exp(), sigma) * graph.transp_transition(
        tokens, sigma
    )
    probs = probs.clamp_min(0.0)
    return probs / probs.sum(-1, keepdim=True).clamp_min(torch.finfo(probs.dtype).tiny)


def oracle_guided(
    score_fn: ScoreFn,
    predict: Callable[[Tensor], Tensor],
    weight: float,
    *,
    graph: Graph,
    targets: Callable[[Tensor], Tensor] | None = None,
    form: str = "gradient",
    chunk: int = 1024,
) -> ScoreFn:
    """A score function tilted toward sequences the oracle scores at the requested labels.

    Args:
        score_fn: Log-score model `(tokens, labels, sigma) -> (B, L, V)`, any checkpoint.
        predict: The oracle on soft one-hot input: (N, V, L) float -> (N, F) in label units
            (e.g. `Oracle.model`); differentiable for the gradient form.
        weight: γ, the weight of the log-likelihood; 0 returns `score_fn` itself.
        graph: The forward process (for the denoised estimate).
        targets: Maps the requested labels to the oracle's F outputs; identity when None.
        form: "gradient" (one forward and backward pass per step) or "exact" (the oracle on
            every single-base neighbour).
        chunk: Oracle inputs per forward pass in the exact form.

    Returns:
        The guided score function (module docstring).

    Raises:
        D3ConfigError: Unknown form or a negative weight.
    """
    if form not in ORACLE_GUIDANCE_FORMS:
        raise D3ConfigError(
            f"unknown oracle guidance form {form!r}; choose one of {list(ORACLE_GUIDANCE_FORMS)}"
        )
    if weight < 0:
        raise D3ConfigError(f"oracle guidance weight must be >= 0, got {weight}")
    if weight == 0:
        return score_fn

    def guided(tokens: Tensor, labels: Tensor, sigma: Tensor) -> Tensor:
        log_score = score_fn(tokens, labels, sigma).float()  # (B, L, V)
        goal = (targets(labels) if targets is not None else labels).float()  # (B, F)
        x_hat = denoised_probs(log_score, tokens, sigma, graph).transpose(1, 2)  # (B, V, L)
        if form == "gradient":
            delta = _gradient_delta(predict, x_hat, goal)
        else:
            delta = _exact_delta(predict, x_hat, goal, chunk)
        tilt = delta - delta.gather(-1, tokens[..., None])  # relative to staying at x_l
        return log_score + weight * tilt

    # The final denoising jump (sigma(eps) -> 0) uses the model's own score: its move
    # probabilities are ~sigma(eps) · score, and a tilt evaluated for one position at a time
    # would flip every position the oracle favours at once.
    guided.denoiser = score_fn
    return guided


def _log_likelihood(prediction: Tensor, goal: Tensor) -> Tensor:
    if prediction.shape != goal.shape:
        raise D3InputError(
            f"the oracle predicts {tuple(prediction.shape[1:])} values per sequence but the "
            f"requested activity has {tuple(goal.shape[1:])}; oracle guidance needs an oracle "
            "whose outputs are the labels (or a targets map to them)"
        )
    return -0.5 * (prediction.float() - goal).pow(2).sum(-1)  # (N,)


def _gradient_delta(predict, x_hat: Tensor, goal: Tensor) -> Tensor:
    """∂ log p(c | x̂) / ∂ x̂ as (B, L, V): the first-order change of setting row l to e_y."""
    # Sampling runs under inference mode; the oracle's gradient needs ordinary tensors.
    with torch.inference_mode(False), torch.enable_grad():
        x = x_hat.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(_log_likelihood(predict(x), goal.clone()).sum(), x)
    return grad.transpose(1, 2)  # (B, L, V)


@torch.no_grad()
def _exact_delta(predict, x_hat: Tensor, goal: Tensor, chunk: int) -> Tensor:
    """log p(c | x̂ with row l set to e_y) for every (l, y), as (B, L, V)."""
    batch, states, length = x_hat.shape
    eye = torch.eye(states, dtype=x_hat.dtype, device=x_hat.device)
    out = torch.empty(batch, length, states, device=x_hat.device)
    for b in range(batch):
        # All L·V neighbours of sequence b: row l replaced by each one-hot state.
        inputs = x_hat[b].expand(length * states, states, length).clone()
        pos = torch.arange(length, device=x_hat.device).repeat_interleave(states)
        inputs[torch.arange(length * states), :, pos] = eye.repeat(length, 1)
        scores = torch.cat(
            [
                _log_likelihood(predict(part), goal[b].expand(len(part), -1))
                for part in inputs.split(chunk)
            ]
        )
        out[b] = scores.reshape(length, states)
    return out


@dataclass(frozen=True)
class Guidance:
    """How to guide sampling: CFG weight, oracle weight and form.

    Attributes:
        cfg: Classifier-free guidance weight w (0: none); needs a model with a null label.
        oracle: Oracle guidance weight γ (0: none); needs an oracle.
        oracle_form: "gradient" or "exact".
    """

    cfg: float = 0.0
    oracle: float = 0.0
    oracle_form: str = "gradient"

    def __post_init__(self) -> None:
        if self.oracle < 0:
            raise D3ConfigError(f"--oracle-guidance must be >= 0, got {self.oracle}")
        if self.oracle_form not in ORACLE_GUIDANCE_FORMS:
            raise D3ConfigError(
                f"unknown oracle guidance form {self.oracle_form!r}; choose one of "
                f"{list(ORACLE_GUIDANCE_FORMS)}"
            )

    @property
    def active(self) -> bool:
        return self.cfg != 0 or self.oracle != 0

    def describe(self) -> dict[str, Any]:
        """The settings, for provenance and reports."""
        return {"cfg": self.cfg, "oracle": self.oracle, "oracle_form": self.oracle_form}


def guided_score_fn(model: Any, guidance: Guidance, *, graph: Graph, oracle: Any = None) -> ScoreFn:
    """The score function a sampler should call for `guidance`.

    Args:
        model: The score model (its ``config.null_label`` says whether CFG is possible).
        guidance: The settings.
        graph: The forward process.
        oracle: A loaded `d3_core.oracles.Oracle`, for oracle guidance.

    Raises:
        D3ConfigError: CFG asked of a model without a null label, or oracle guidance without
            an oracle; the message says what to do instead.
    """
    score_fn: ScoreFn = model
    if guidance.cfg != 0:
        if not has_null_label(model):
            raise D3ConfigError(
                "--guidance needs a model trained with label dropout (model.null_label: true, "
                "training.label_dropout > 0); this checkpoint has no null label. Use "
                "--oracle-guidance with an oracle instead, or retrain with the CPU/paper preset "
                "of d3 >= 0.5"
            )
        score_fn = classifier_free(score_fn, guidance.cfg)
    if guidance.oracle != 0:
        if oracle is None:
            raise D3ConfigError("--oracle-guidance needs an oracle (--oracle FILE)")
        score_fn = oracle_guided(
            score_fn, oracle.model, guidance.oracle, graph=graph, targets=oracle.spec.targets,
            form=guidance.oracle_form,
        )  # fmt: skip
    return score_fn


def has_null_label(model: Any) -> bool:
    """Whether a score model can give unconditional scores (it was built with a null label)."""
    return bool(getattr(getattr(model, "config", None), "null_label", False))


def resolve_guidance(
    model: Any,
    sampling: Any,
    *,
    cfg: float | None = None,
    oracle: float | None = None,
    oracle_form: str | None = None,
    has_oracle: bool = False,
) -> tuple[Guidance, list[str]]:
    """The guidance a command uses: what the user asked for, else the checkpoint's defaults.

    Args:
        model: The score model.
        sampling: The checkpoint config's ``sampling`` section (``guidance``,
            ``oracle_guidance``, ``oracle_guidance_form``).
        cfg: ``--guidance``; None takes ``sampling.guidance`` (``sampling.guidance_with_oracle``
            when an oracle guides) when the model has a null label, and 0 otherwise.
        oracle: ``--oracle-guidance``; None takes ``sampling.oracle_guidance`` when an oracle
            guides and 0 otherwise.
        oracle_form: ``--oracle-guidance-form``; None takes the config's.
        has_oracle: Whether an oracle was given to guide with.

    Returns:
        The settings and sentences for the user and the report saying what was chosen and why.
    """
    notes = []
    if cfg is None:
        key = "guidance_with_oracle" if has_oracle and oracle != 0 else "guidance"
        default = float(sampling.get(key, 0.0))
        if has_null_label(model):
            cfg = default
            if default:
                notes.append(f"classifier-free guidance w = {default:g} (the checkpoint's "
                             f"sampling.{key})")  # fmt: skip
            elif key == "guidance_with_oracle" and sampling.get("guidance", 0.0):
                notes.append("no classifier-free guidance while the oracle guides "
                             "(sampling.guidance_with_oracle = 0)")  # fmt: skip
        else:
            cfg = 0.0
            if default:
                notes.append(
                    f"no classifier-free guidance (the config's w = {default:g}): the checkpoint "
                    "was trained without label dropout, so it has no unconditional score"
                )
    if oracle is None:
        oracle = float(sampling.get("oracle_guidance", 0.0)) if has_oracle else 0.0
        if oracle:
            notes.append(f"oracle guidance weight {oracle:g} (the checkpoint's default)")
    form = oracle_form or str(sampling.get("oracle_guidance_form", "gradient"))
    return Guidance(cfg=float(cfg), oracle=float(oracle), oracle_form=form), notes


def load_guiding_oracle(
    path: Any, dataset: Any, *, device: Any = "cpu", trusted: bool = False, names: Any = None
) -> Any:
    """Loads the dataset's oracle that guides sampling, or returns None when `path` is None.

    `dataset` is the dataset's plugin (or, at a caller's edge, its name).

    Raises:
        D3InputError, CheckpointError: As `d3_core.oracles.load_oracle`.
    """
    if path is None:
        return None
    from d3_core.oracles import load_oracle
    from d3_core.registry import as_plugin

    plugin = as_plugin(dataset)
    spec = plugin.load("oracle")
    return load_oracle(path, spec, device=device, trusted=trusted, names=names)
