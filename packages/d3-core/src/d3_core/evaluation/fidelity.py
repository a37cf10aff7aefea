"""Scoring designed sequences against the real ones they were designed to match
(docs/metrics.md#metrics).

A scorer maps tokens (N, L) to predictions (N, F): a dataset's oracle, or on synthetic data its
planted rule. `conditional_fidelity` compares the scores of generated and real sequences paired
by label, beside two baselines that bracket it: real test sequences paired with shuffled labels
(what ignoring the labels costs) and uniform random sequences (what ignoring the data costs).
`Reference` and `set_metrics` are the per-set metrics ``d3 evaluate`` reports
(`d3_core.evaluation.run`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from d3_core.errors import D3InputError
from d3_core.evaluation.metrics import discriminability, kmer_spectrum, pearson, sp_mse

__all__ = ["Reference", "conditional_fidelity", "label_response", "set_metrics", "summarise"]

Scorer = Callable[[np.ndarray], np.ndarray]


def label_response(
    labels: np.ndarray, scores: np.ndarray, names: Sequence[str], *, quantile: float = 0.25
) -> dict[str, dict[str, float]]:
    """How much the score follows each requested label: mean score of the sequences asked for
    the top `quantile` of that label minus the mean for the bottom `quantile`.

    Args:
        labels: (N, S) requested global labels.
        scores: (N, S) scores of the sequences, output j judging label j.
        names: Label names.
        quantile: Fraction of sequences in each group.

    Returns:
        ``{name: {"high": mean, "low": mean, "difference": high - low, "n": group size}}``.
    """
    labels, scores = np.asarray(labels, np.float64), np.asarray(scores, np.float64)
    if labels.ndim != 2 or labels.shape != scores.shape:
        raise D3InputError(
            f"label_response needs (N, S) labels and scores of the same shape; got "
            f"{labels.shape} and {scores.shape}"
        )
    n = max(1, int(len(labels) * quantile))
    out = {}
    for j, name in enumerate(names):
        order = np.argsort(labels[:, j], kind="stable")
        low, high = scores[order[:n], j].mean(), scores[order[-n:], j].mean()
        out[name] = {"high": float(high), "low": float(low), "difference": float(high - low),
                     "n": n}  # fmt: skip
    return out


def conditional_fidelity(
    score: Scorer,
    real: np.ndarray,
    generated: np.ndarray,
    labels: np.ndarray,
    *,
    names: Sequence[str],
    scorer: str,
    seed: int = 0,
) -> dict[str, Any]:
    """SP-MSE of generated sequences against the real ones of the same labels, with baselines.

    Args:
        score: tokens (N, L) → (N, F) predictions.
        real: (N, L) tokens of the real sequences whose labels were requested.
        generated: (N, L) tokens generated for those labels, in the same order.
        labels: (N, S) or (N, L, S) requested labels.
        names: The scorer's output names.
        scorer: What the scorer is, for the report.
        seed: Seeds the label shuffle and the random sequences.

    Returns:
        A JSON-ready dict: SP-MSE of the samples and of both baselines, Pearson r between the
        requested labels and the scores of the samples and of the real sequences (when the
        scorer's outputs are the labels), and the high-versus-low label response.
    """
    real, generated = np.asarray(real), np.asarray(generated)
    if real.shape != generated.shape:
        raise D3InputError(
            f"{len(generated)} generated sequences of shape {generated.shape[1:]} cannot be paired "
            f"with {len(real)} real ones of shape {real.shape[1:]}"
        )
    rng = np.random.default_rng(seed)
    f_real = np.asarray(score(real.astype(np.int64)))
    f_gen = np.asarray(score(generated.astype(np.int64)))
    f_shuffled = f_real[rng.permutation(len(real))]
    f_random = np.asarray(score(rng.integers(0, 4, size=real.shape)))
    report: dict[str, Any] = {
        "scorer": scorer,
        "num_sequences": len(real),
        "seed": seed,
        "sp_mse": {
            "samples": sp_mse(f_real, f_gen),
            "baseline_shuffled_labels": sp_mse(f_real, f_shuffled),
            "baseline_random_sequences": sp_mse(f_real, f_random),
        },
    }
    if labels.shape[: f_gen.ndim] == f_gen.shape:  # outputs stand for the labels
        flat = labels.reshape(len(labels), -1)
        for key, scores in (("samples", f_gen), ("real", f_real)):
            r = pearson(flat, scores.reshape(len(scores), -1))
            report.setdefault("pearson_requested_vs_scored", {})[key] = (
                dict(zip(names, map(float, r), strict=True))
                if labels.ndim == 2
                else float(np.nanmean(r))
            )
        if labels.ndim == 2:
            report["label_response"] = {
                "samples": label_response(labels, f_gen, names),
                "real": label_response(labels, f_real, names),
            }
    return report


@dataclass
class Reference:
    """What every generated set is compared with, computed once."""

    real: np.ndarray  # (n, L) test tokens whose labels were requested
    labels: np.ndarray  # (n, S) or (n, L, S)
    train: np.ndarray | None  # training tokens, for memorisation
    scorers: dict[str, tuple[Scorer, tuple[str, ...]]]  # name -> (score, output names)
    kmer: tuple[int, ...]
    discriminator: bool
    seed: int
    requested: dict[str, np.ndarray] = field(default_factory=dict)  # labels per scorer's terms
    f_real: dict[str, np.ndarray] = field(default_factory=dict)
    spectra: dict[int, np.ndarray] = field(default_factory=dict)

    def labels_for(self, scorer: str) -> np.ndarray:
        """The requested labels in the terms of a scorer's outputs (its targets)."""
        return self.requested.get(scorer, self.labels)

    def __post_init__(self) -> None:
        self.f_real = {name: np.asarray(fn(self.real)) for name, (fn, _) in self.scorers.items()}
        self.spectra = {k: kmer_spectrum(self.real, k) for k in self.kmer}


def set_metrics(reference: Reference, tokens: np.ndarray, *, paired: bool) -> dict[str, float]:
    """Every metric of docs/metrics.md of one set of sequences against the reference, as a flat
    dict.

    Args:
        reference: The real test set and how to score it.
        tokens: (n, L) sequences; `paired` if row i was made for label i (then SP-MSE and the
            Pearson r of requested labels against scores are defined).
    """
    from d3_core.evaluation.metrics import diversity, js_distance, ks_statistic, memorisation

    out: dict[str, float] = {}
    for name, (score, names) in reference.scorers.items():
        f_real, f_set = reference.f_real[name], np.asarray(score(tokens))
        if paired:
            out[f"sp_mse.{name}"] = sp_mse(f_real, f_set)
            labels = reference.labels_for(name)
            if labels.ndim == 2 and labels.shape == f_set.shape:
                for label, r in zip(names, pearson(labels, f_set), strict=True):
                    out[f"pearson.{name}.{label}"] = float(r)
        out[f"ks.{name}"] = ks_statistic(f_real, f_set)["mean"]
    for k in reference.kmer:
        out[f"js.k{k}"] = js_distance(reference.spectra[k], kmer_spectrum(tokens, k))
    if reference.discriminator:
        out["auroc"] = discriminability(reference.real, tokens, seed=reference.seed)["auroc"]
    if reference.train is not None:
        found = memorisation(tokens, reference.train)
        out["memorisation.mean"], out["memorisation.max"] = found["mean"], found["max"]
    out["diversity"] = diversity(tokens)
    return out


def summarise(replicates: Sequence[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean and sample standard deviation of each metric over replicates (sd 0 for one)."""
    keys = list(replicates[0])
    values = {k: np.array([r[k] for r in replicates], dtype=np.float64) for k in keys}
    return {
        "mean": {k: float(v.mean()) for k, v in values.items()},
        "std": {k: float(v.std(ddof=1)) if len(v) > 1 else 0.0 for k, v in values.items()},
    }
