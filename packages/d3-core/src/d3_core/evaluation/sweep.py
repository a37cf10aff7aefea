"""The guidance sweep of `d3 evaluate --guidance-sweep`: fidelity against diversity per weight.

Guidance trades diversity for fidelity: stronger weights hit the requested activity more
closely and, past some point, make the designs alike or copy training sequences. The sweep
samples the same test labels at each weight and reports, per weight, SP-MSE and Pearson r per
scorer, diversity and memorisation (docs/metrics.md#metrics), as a table and a figure.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["guidance_sweep", "plot_sweep", "run_sweep", "sweep_markdown"]

_COLUMNS = ("sp_mse", "pearson", "diversity", "memorisation.max")


def guidance_sweep(
    reference: Any,
    sample_at: Callable[[float], np.ndarray],
    weights: Sequence[float],
    *,
    kind: str,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Samples at each weight and scores every set against the same reference.

    Args:
        reference: The evaluation's `d3_core.evaluation.fidelity.Reference` (real test set, scorers).
        sample_at: weight -> (n, L) tokens designed for the reference's labels.
        weights: The guidance weights, in the order to report them.
        kind: "cfg" or "oracle": which guidance the weight is.
        progress: Where to say which weight is being sampled.

    Returns:
        ``{"kind", "weights", "rows": [{"weight", metric: value, ...}], "floor": {...}}`` where
        the floor is real validation sequences' diversity and memorisation.
    """
    from d3_core.evaluation.fidelity import set_metrics

    quick = dataclasses.replace(reference, discriminator=False, kmer=reference.kmer[:1])
    rows = []
    for i, weight in enumerate(weights):
        progress(f"guidance sweep ({kind}): weight {weight:g} ({i + 1} of {len(weights)})")
        metrics = set_metrics(quick, sample_at(float(weight)), paired=True)
        rows.append({"weight": float(weight), **metrics})
    return {"kind": kind, "weights": [float(w) for w in weights], "rows": rows}


def _pick(row: dict[str, Any], scorer: str) -> list[str]:
    pearson = [v for k, v in row.items() if k.startswith(f"pearson.{scorer}.")]
    cells = [
        f"{row.get(f'sp_mse.{scorer}', float('nan')):.3f}",
        " / ".join(f"{r:.3f}" for r in pearson) if pearson else "–",
    ]
    return cells


def _scorers(sweep: dict[str, Any]) -> list[str]:
    return [k.removeprefix("sp_mse.") for k in sweep["rows"][0] if k.startswith("sp_mse.")]


def sweep_markdown(sweep: dict[str, Any], floor: dict[str, float] | None = None) -> list[str]:
    """The sweep as a markdown table: one row per weight."""
    scorers = _scorers(sweep)
    what = "classifier-free guidance w" if sweep["kind"] == "cfg" else "oracle guidance weight"
    head = ["weight"] + [f"{h} ({s})" for s in scorers for h in ("SP-MSE", "Pearson r")]
    head += ["diversity", "memorisation (max)"]
    lines = [
        f"## Guidance sweep: {what}",
        "",
        "Diversity: mean nearest-neighbour identity inside the set (lower is more diverse). "
        "Memorisation: the largest identity of a design to any training sequence.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for row in sweep["rows"]:
        cells = [f"{row['weight']:g}"] + [c for s in scorers for c in _pick(row, s)]
        cells += [f"{row['diversity']:.4f}", f"{row.get('memorisation.max', float('nan')):.4f}"]
        lines.append("| " + " | ".join(cells) + " |")
    if floor:
        cells = ["real validation"] + ["–", "–"] * len(scorers)
        cells += [f"{floor.get('diversity', float('nan')):.4f}",
                  f"{floor.get('memorisation.max', float('nan')):.4f}"]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def plot_sweep(sweep: dict[str, Any], path: Path, floor: dict[str, float] | None = None) -> Path:
    """Three panels against the weight: SP-MSE per scorer, mean Pearson r per scorer, and
    diversity with memorisation (real validation sequences dashed)."""
    from d3_core.evaluation.plots import _figure, _save

    plt, fig, axes = _figure(3)
    weights = [row["weight"] for row in sweep["rows"]]
    for scorer in _scorers(sweep):
        axes[0].plot(weights, [r[f"sp_mse.{scorer}"] for r in sweep["rows"]], "o-", label=scorer)
        pearson = [
            np.mean([v for k, v in r.items() if k.startswith(f"pearson.{scorer}.")] or [np.nan])
            for r in sweep["rows"]
        ]
        axes[1].plot(weights, pearson, "o-", label=scorer)
    axes[2].plot(weights, [r["diversity"] for r in sweep["rows"]], "o-", label="diversity")
    if "memorisation.max" in sweep["rows"][0]:
        axes[2].plot(weights, [r["memorisation.max"] for r in sweep["rows"]], "s-",
                     label="memorisation (max)")  # fmt: skip
    for key, style in (("diversity", "C0"), ("memorisation.max", "C1")):
        if floor and key in floor:
            axes[2].axhline(floor[key], color=style, ls="--", lw=1)
    what = "CFG weight w" if sweep["kind"] == "cfg" else "oracle guidance weight"
    for ax, title in zip(axes, ("SP-MSE (lower is better)", "Pearson r, requested vs scored",
                                "identity (dashed: real validation)"), strict=True):  # fmt: skip
        ax.set_xlabel(what)
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8)
    return _save(plt, fig, path)


def run_sweep(
    reference,
    loaded,
    labels,
    weights,
    chosen,
    guide,
    *,
    seed,
    steps,
    predictor,
    batch_size,
    progress,
    say,
) -> dict[str, Any]:
    """The guidance sweep: CFG weights for a model with a null label, else oracle weights."""
    import dataclasses

    from d3_core.diffusion.guidance import has_null_label
    from d3_core.errors import D3InputError
    from d3_core.generation.sequences import sample_sequences

    kind = "cfg" if has_null_label(loaded.model) else "oracle"
    if kind == "oracle" and guide is None:
        raise D3InputError(
            "--guidance-sweep: this checkpoint has no null label (no classifier-free guidance), "
            "so the sweep is over oracle guidance weights; give --guide-oracle FILE"
        )

    def sample_at(weight: float) -> np.ndarray:
        setting = dataclasses.replace(chosen, **{kind: weight})
        return sample_sequences(
            loaded, labels, seed=seed, steps=steps, predictor=predictor, batch_size=batch_size,
            progress=progress, guidance=setting, oracle=guide,
        ).tokens  # fmt: skip

    return guidance_sweep(reference, sample_at, weights, kind=kind, progress=say)
