"""The files ``d3 evaluate`` writes for people: ``report.md`` and the plots of `evaluate_run`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from d3_core.evaluation.fidelity import Reference
from d3_core.evaluation.metrics import kmer_spectrum

__all__ = ["report_markdown", "write_plots"]


def report_markdown(report: dict[str, Any]) -> str:
    title = f"# d3 evaluate: {report['dataset']}"
    if report.get("architecture"):
        title += f" ({report['architecture']})"
    lines = [title, "", f"{report['num_sequences']} test labels of {report['data']}; "
             f"sequences from {report['sequences_from']}.", ""]  # fmt: skip
    sampling = report.get("sampling") or {}
    if sampling.get("guidance"):
        g = sampling["guidance"]
        lines += [f"Guidance: classifier-free w = {g['cfg']:g}, oracle weight {g['oracle']:g}"
                  f" ({g['oracle_form']}). " + " ".join(
                      n[0].upper() + n[1:] + "." for n in sampling.get("guidance_notes", [])), ""]  # fmt: skip
    lines += _metrics_table(report["metrics"])
    if report.get("guidance_sweep"):
        from d3_core.evaluation.sweep import sweep_markdown

        floor = report["metrics"]["baselines"]["valid_vs_test"]
        lines += sweep_markdown(report["guidance_sweep"], floor=floor)
    for score in report["scores"].values():
        mse = score["sp_mse"]
        lines += [
            f"## Scored by the {score['scorer']}",
            "",
            "| sequences | SP-MSE (lower is better) |",
            "|---|---|",
            f"| generated for the test labels | {mse['samples']:.4f} |",
            f"| real test sequences, shuffled labels | {mse['baseline_shuffled_labels']:.4f} |",
            f"| uniform random sequences | {mse['baseline_random_sequences']:.4f} |",
            "",
        ]
        r = score.get("pearson_requested_vs_scored")
        if r and isinstance(r["samples"], dict):
            lines += ["| label | Pearson r, requested vs scored: generated | real | "
                      "high − low quartile: generated | real |", "|---|---|---|---|---|"]  # fmt: skip
            response = score["label_response"]
            for name in r["samples"]:
                lines.append(
                    f"| {name} | {r['samples'][name]:.3f} | {r['real'][name]:.3f} | "
                    f"{response['samples'][name]['difference']:.3f} | "
                    f"{response['real'][name]['difference']:.3f} |"
                )
            lines.append("")
        elif r:
            lines += [f"Mean per-position Pearson r, requested vs scored: generated "
                      f"{r['samples']:.3f}, real {r['real']:.3f}.", ""]  # fmt: skip
    return "\n".join(lines)


def _metrics_table(metrics: dict[str, Any]) -> list[str]:
    samples, baselines = metrics["samples"], metrics["baselines"]
    replicates = metrics["parameters"]["replicates"]
    lines = [
        "## Metrics (docs/metrics.md#metrics)",
        "",
        f"Samples: mean ± sd over {replicates} replicate(s). Floor: real validation sequences "
        "against the real test set. Ceiling: uniform random sequences."
        + (
            f" Paired protocol: {metrics['parameters']['paired_repeat']} samples per test label; "
            "the mean SP-MSE is the SP-MSE pooled over every (label, sample) pair."
            if metrics["parameters"].get("paired_repeat", 1) > 1
            else ""
        ),
        "",
        "| metric | samples | shuffled labels | floor (valid vs test) | ceiling (random) |",
        "|---|---|---|---|---|",
    ]

    def cell(group: dict[str, float], key: str) -> str:
        return f"{group[key]:.4f}" if key in group else "–"

    for key, mean in samples["mean"].items():
        lines.append(
            f"| {key} | {mean:.4f} ± {samples['std'][key]:.4f} | "
            f"{cell(baselines['shuffled_labels'], key)} | {cell(baselines['valid_vs_test'], key)} | "
            f"{cell(baselines['random_sequences'], key)} |"
        )
    return [*lines, ""]


def write_plots(out: Path, reference: Reference, generated: np.ndarray, scores, scorers):
    """The report's PNG figures: per scorer, predictions against requested labels and their
    distributions; the k-mer spectrum of the smallest k."""
    from d3_core.evaluation.plots import (
        plot_kmer_spectra,
        plot_prediction_distributions,
        plot_predictions_vs_requested,
        plot_profiles,
    )

    figures = []
    for name, (score, names) in scorers.items():
        f_real, f_gen = reference.f_real[name], np.asarray(score(generated))
        label = scores[name]["scorer"]
        requested = reference.labels_for(name)
        if requested.ndim == 3 and f_gen.shape == requested.shape:  # per-position tracks
            figures.append(plot_profiles(requested[..., 0], f_gen[..., 0], f_real[..., 0],
                                         out / f"profiles_{name}.png", scorer=label))  # fmt: skip
        if f_gen.ndim == 2:
            figures.append(plot_prediction_distributions(
                f_real, f_gen, names, out / f"distributions_{name}.png", scorer=label))  # fmt: skip
            if reference.labels_for(name).shape == f_gen.shape:
                figures.append(plot_predictions_vs_requested(
                    reference.labels_for(name), f_gen, f_real, names, out / f"requested_vs_{name}.png",
                    scorer=label))  # fmt: skip
    k = reference.kmer[0]
    figures.append(plot_kmer_spectra(reference.spectra[k], kmer_spectrum(generated, k), k,
                                     out / f"kmer_spectrum_k{k}.png"))  # fmt: skip
    return figures
