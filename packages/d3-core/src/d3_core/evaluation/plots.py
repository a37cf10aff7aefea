"""The figures of an evaluation report, written as PNG files with matplotlib (no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "plot_kmer_spectra",
    "plot_prediction_distributions",
    "plot_predictions_vs_requested",
    "plot_profiles",
]


def _figure(panels: int):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 4), squeeze=False)
    return plt, fig, axes[0]


def _save(plt, fig, path: Path) -> Path:
    from d3_core.io import atomic_path

    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return path


def plot_predictions_vs_requested(
    requested: np.ndarray,
    generated: np.ndarray,
    real: np.ndarray,
    names: Sequence[str],
    path: Path,
    *,
    scorer: str,
) -> Path:
    """One panel per output: the score of each sequence against the label it was designed for;
    real test sequences (grey) show how closely the labels can be met."""
    plt, fig, axes = _figure(len(names))
    for j, (ax, name) in enumerate(zip(axes, names, strict=True)):
        ax.scatter(requested[:, j], real[:, j], s=6, c="0.7", label="real test sequence")
        ax.scatter(requested[:, j], generated[:, j], s=6, c="C0", label="generated")
        low = min(requested[:, j].min(), generated[:, j].min(), real[:, j].min())
        high = max(requested[:, j].max(), generated[:, j].max(), real[:, j].max())
        ax.plot([low, high], [low, high], c="k", lw=0.8, ls="--")
        r = np.corrcoef(requested[:, j], generated[:, j])[0, 1]
        ax.set(xlabel=f"requested {name}", ylabel=f"{scorer}: {name}",
               title=f"{name}: Pearson r {r:.2f} (generated)")  # fmt: skip
    axes[0].legend(loc="upper left", fontsize=8)
    return _save(plt, fig, path)


def plot_prediction_distributions(
    real: np.ndarray, generated: np.ndarray, names: Sequence[str], path: Path, *, scorer: str
) -> Path:
    """One panel per output: histograms of the scores of real and generated sequences."""
    plt, fig, axes = _figure(len(names))
    for j, (ax, name) in enumerate(zip(axes, names, strict=True)):
        bins = np.histogram_bin_edges(np.concatenate([real[:, j], generated[:, j]]), bins=40)
        ax.hist(real[:, j], bins=bins, alpha=0.5, density=True, label="real test")
        ax.hist(generated[:, j], bins=bins, alpha=0.5, density=True, label="generated")
        ax.set(xlabel=f"{scorer}: {name}", ylabel="density", title=name)
    axes[0].legend(fontsize=8)
    return _save(plt, fig, path)


def plot_kmer_spectra(real: np.ndarray, generated: np.ndarray, k: int, path: Path) -> Path:
    """Frequency of every k-mer in the real test set against the generated set (log-log)."""
    plt, fig, axes = _figure(1)
    p, q = real / real.sum(), generated / generated.sum()
    floor = 0.5 / max(real.sum(), generated.sum())  # place unseen k-mers just below the rest
    ax = axes[0]
    ax.scatter(np.maximum(p, floor), np.maximum(q, floor), s=3, alpha=0.4)
    top = max(p.max(), q.max())
    ax.plot([floor, top], [floor, top], c="k", lw=0.8, ls="--")
    ax.set(xscale="log", yscale="log", xlabel=f"{k}-mer frequency, real test",
           ylabel=f"{k}-mer frequency, generated", title=f"{k}-mer spectrum ({4**k} k-mers)")  # fmt: skip
    return _save(plt, fig, path)


def plot_profiles(
    requested: np.ndarray,
    generated: np.ndarray,
    real: np.ndarray,
    path: Path,
    *,
    scorer: str,
    examples: int = 4,
) -> Path:
    """Per-position labels: for the first `examples` labels, the requested track (black) and the
    scorer's track of the real sequence (grey) and of the sequence generated for it (blue); the
    last panel averages every label's tracks, aligned on position."""
    count = min(examples, len(requested))
    plt, fig, axes = _figure(count + 1)
    positions = np.arange(requested.shape[1])
    panels = [(f"label {i}", requested[i], real[i], generated[i]) for i in range(count)]
    panels.append((f"mean over {len(requested)}", requested.mean(0), real.mean(0),
                   generated.mean(0)))  # fmt: skip
    for ax, (title, asked, scored_real, scored_gen) in zip(axes, panels, strict=True):
        ax.plot(positions, asked, c="k", lw=0.8, label="requested")
        ax.plot(positions, scored_real, c="0.6", lw=0.8, label="real test sequence")
        ax.plot(positions, scored_gen, c="C0", lw=0.8, label="generated")
        ax.set(xlabel="position", ylabel=scorer, title=title)
    axes[0].legend(fontsize=8)
    return _save(plt, fig, path)
