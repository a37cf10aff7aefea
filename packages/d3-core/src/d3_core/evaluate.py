"""Scoring designed sequences against the real ones they were designed to match (SPEC §13).

A scorer maps tokens (N, L) to predictions (N, F): a dataset's oracle, or on synthetic data its
planted rule. `conditional_fidelity` compares the scores of generated and real sequences paired
by label, beside two baselines that bracket it: real test sequences paired with shuffled labels
(what ignoring the labels costs) and uniform random sequences (what ignoring the data costs).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from d3_core.errors import D3InputError
from d3_core.metrics import discriminability, kmer_spectrum, pearson, sp_mse

__all__ = ["conditional_fidelity", "evaluate_run", "label_response", "set_metrics", "summarise"]

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


# -- d3 evaluate ----------------------------------------------------------------------------------


def _markdown(report: dict[str, Any]) -> str:
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
        from d3_core.sweep import sweep_markdown

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


@dataclass
class _Reference:
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


def set_metrics(reference: _Reference, tokens: np.ndarray, *, paired: bool) -> dict[str, float]:
    """Every SPEC §13 metric of one set of sequences against the reference, as a flat dict.

    Args:
        reference: The real test set and how to score it.
        tokens: (n, L) sequences; `paired` if row i was made for label i (then SP-MSE and the
            Pearson r of requested labels against scores are defined).
    """
    from d3_core.metrics import diversity, js_distance, ks_statistic, memorisation

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


def _metrics_table(metrics: dict[str, Any]) -> list[str]:
    samples, baselines = metrics["samples"], metrics["baselines"]
    replicates = metrics["parameters"]["replicates"]
    lines = [
        "## Metrics (SPEC §13)",
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


def evaluate_run(
    *,
    dataset: str,
    out: Path,
    arch: str | None = None,
    model_path: str | Path | None = None,
    data: str | Path | None = None,
    oracle_path: str | Path | None = None,
    oracle_names: str | Path | None = None,
    samples: str | Path | None = None,
    samples_dir: Path | None = None,
    ground_truth: bool = False,
    num_samples: int | None = None,
    replicates: int = 1,
    paired_repeat: int = 1,
    kmer: Sequence[int] = (6,),
    discriminator: bool = True,
    plots: bool = True,
    steps: int | None = None,
    predictor: str | None = None,
    seed: int = 0,
    batch_size: int | None = None,
    device: str | None = None,
    trusted: bool = False,
    force: bool = False,
    progress: bool = True,
    guidance: float | None = None,
    oracle_guidance: float | None = None,
    oracle_guidance_form: str | None = None,
    guide_oracle: str | Path | None = None,
    guidance_sweep: Sequence[float] | None = None,
    context: dict[str, Any] | None = None,
    say: Callable[[str], None] = print,
    warn: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Designs one sequence per test label (or reads them), scores them, and writes a report.

    Writes ``report.json``, ``report.md`` and PNG plots into `out`, and the samples, when drawn,
    into `samples_dir` (default ``out/samples``; replicate r > 0 into ``<samples_dir>-r<r>``).
    `context` (e.g. how the model was trained) is stored in the report as it is. Returns the
    report with its markdown under ``"markdown"``.

    Sampling is guided as `d3_core.guidance.resolve_guidance` decides: classifier-free guidance
    at the checkpoint's ``sampling.guidance`` when the model has a null label, oracle guidance
    only with a guiding oracle (`guide_oracle`, or the scoring oracle when `oracle_guidance` is
    asked for; its own scores of the samples are then optimistic, which the report says).
    `guidance_sweep` samples once more per weight and reports SP-MSE, Pearson r, diversity and
    memorisation per weight (`d3_core.sweep`).

    Every metric of SPEC §13 is computed for each of `replicates` sample sets (sampling seeds
    ``seed + r``) and summarised as mean and sd, beside three baselines: real test sequences
    with shuffled labels (SP-MSE), real validation sequences (the floor of the unpaired metrics)
    and uniform random sequences (the ceiling).

    Raises:
        D3InputError: Nothing to score with, no checkpoint and no samples, no data file, samples
            that do not pair with the test labels, or a report already in `out` without `force`.
    """
    import json
    import platform
    import time

    import torch

    from d3_core import __version__
    from d3_core.io import atomic_write
    from d3_core.registry import load_dataset_plugin

    started = time.perf_counter()
    plugin = load_dataset_plugin(dataset)
    if oracle_path is None and not ground_truth:
        raise D3InputError(
            "nothing to score with: give --oracle FILE (the dataset's oracle weights; `d3 oracle "
            "train` makes one) or --ground-truth (the planted rule of synthetic data)"
        )
    if paired_repeat < 1 or (paired_repeat > 1 and replicates != 1):
        raise D3InputError("--paired-repeat must be at least 1; give it or --replicates, not both")
    # k samples per test label, each paired with it: k sets of one sample per label, whose
    # SP-MSE pooled over all N·k pairs is the mean over the sets.
    replicates = max(replicates, paired_repeat)
    if replicates < 1 or (samples is not None and replicates != 1):
        raise D3InputError(
            "--replicates and --paired-repeat must be at least 1, and 1 with --samples"
        )
    if guidance_sweep and model_path is None:
        raise D3InputError("--guidance-sweep samples at each weight: give --model-path")
    kmer = tuple(sorted(set(kmer)))
    out = Path(out)
    if (out / "report.json").exists() and not force:
        raise D3InputError(f"{out} already holds report.json; choose another --out or pass --force")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    loaded = None
    if model_path is not None:
        from d3_core.checkpoint import load_checkpoint

        loaded = load_checkpoint(
            model_path, device=device, trusted=trusted, dataset=plugin.name, arch=arch
        )
        if loaded.format != "d3":
            say(f"read a {loaded.format} checkpoint: {'; '.join(loaded.notes)}")
    elif samples is None:
        raise D3InputError("give --model-path (to sample) or --samples (sequences to score)")
    data = data or (loaded.cfg.dataset.data if loaded is not None else None)
    if not data:
        raise D3InputError("give --data: the dataset file whose test split is the reference")
    splits = plugin.load("data_loader")(data)
    from d3_core.data import label_names_of

    _, label_names = label_names_of(
        plugin, splits, loaded.cfg.dataset.label_names if loaded is not None else None
    )
    test = splits["test"]
    n = min(num_samples or len(test), len(test))
    real = test.tokens[:n].numpy()
    labels = test.labels[:n].numpy().astype(np.float32)

    sets: list[np.ndarray] = []
    sampling: dict[str, Any] | None = None
    from d3_core.guidance import Guidance

    chosen, guide = Guidance(), None
    if samples is not None:
        from d3_core.generate import read_samples

        generated = read_samples(samples, length=plugin.sequence_length)
        if len(generated) != n:
            raise D3InputError(
                f"{samples} holds {len(generated)} sequences but {n} test labels are scored; "
                f"give --num-samples {len(generated)} if they were made for the first "
                f"{len(generated)} test labels"
            )
        sets.append(generated)
        sequences_from = str(Path(samples).resolve())
    else:
        from d3_core.generate import sample_sequences, write_samples

        if loaded.precision != "32-true":
            warn(f"the model was trained under {loaded.precision}; it samples in float32")
        cfg = loaded.cfg.sampling
        steps, predictor = steps or cfg.steps, predictor or cfg.predictor
        batch_size = batch_size or cfg.batch_size
        from d3_core.guidance import load_guiding_oracle, resolve_guidance

        if guide_oracle is None and oracle_guidance and oracle_path is not None:
            guide_oracle = oracle_path
        guide = load_guiding_oracle(guide_oracle, plugin.name, device=device, trusted=trusted,
                                    names=oracle_names)  # fmt: skip
        if guide is not None:
            say(f"guiding oracle: {guide.spec.name} ({'; '.join(guide.notes)})")
        chosen, guidance_notes = resolve_guidance(
            loaded.model, cfg, cfg=guidance, oracle=oracle_guidance,
            oracle_form=oracle_guidance_form, has_oracle=guide is not None,
        )  # fmt: skip
        if guide is not None and chosen.oracle and guide_oracle == oracle_path:
            guidance_notes.append(
                "the scoring oracle also guided sampling: its scores of the samples are "
                "optimistic; judge them by an independent scorer (another oracle, the planted rule)"
            )
        for note in guidance_notes:
            say(note)
        seconds = []
        base_dir = samples_dir or out / "samples"
        for r in range(replicates):
            say(f"sampling {n} sequences for the test labels ({predictor}, {steps} steps, "
                f"seed {seed + r}{f', replicate {r + 1} of {replicates}' if replicates > 1 else ''})")  # fmt: skip
            run = sample_sequences(
                loaded, labels, seed=seed + r, steps=steps, predictor=predictor,
                batch_size=batch_size, progress=progress, guidance=chosen, oracle=guide,
            )  # fmt: skip
            sets.append(run.tokens)
            seconds.append(round(run.seconds, 2))
            provenance = {"checkpoint": str(loaded.path), "checkpoint_sha256": loaded.sha256,
                          "labels_from": f"first {n} test labels of {data}", "seed": seed + r,
                          "steps": steps, "predictor": predictor,
                          "guidance": chosen.describe()}  # fmt: skip
            folder = base_dir if r == 0 else base_dir.with_name(f"{base_dir.name}-r{r}")
            write_samples(folder, run, names=list(label_names), provenance=provenance)
        sampling = {"steps": steps, "predictor": predictor, "seeds": [seed + r for r in
                    range(replicates)], "batch_size": batch_size, "seconds": seconds,
                    "guidance": chosen.describe(), "guidance_notes": guidance_notes,
                    "guiding_oracle": guide.describe() if guide is not None else None}  # fmt: skip
        sequences_from = f"{loaded.path} (sampled)"

    scorers: dict[str, tuple[Scorer, tuple[str, ...]]] = {}
    requested: dict[str, np.ndarray] = {"ground_truth": labels}  # labels in each scorer's terms
    oracle_info = None
    if oracle_path is not None:
        from d3_core.oracle import load_oracle

        oracle = load_oracle(oracle_path, plugin.load("oracle"), device=device, trusted=trusted,
                             names=oracle_names)  # fmt: skip
        oracle_info = oracle.describe()
        say(f"oracle: {oracle.spec.name} ({'; '.join(oracle.notes)})")
        scorers["oracle"] = (
            lambda tokens: oracle.predict(
                tokens, batch_size=oracle.spec.predict_batch, progress=progress
            ),
            oracle.output_names,
        )
        requested["oracle"] = oracle.spec.targets_of(labels)
    if ground_truth:
        truth = plugin.load("ground_truth")
        scorers["ground_truth"] = (lambda tokens: np.asarray(truth(tokens)), label_names)
    say(f"scoring with {' and '.join(scorers)}: every SPEC §13 metric, {len(sets)} set(s) and "
        f"three baselines")  # fmt: skip
    reference = _Reference(
        real=real, labels=labels, train=splits["train"].tokens.numpy(), scorers=scorers,
        kmer=kmer, discriminator=discriminator and n >= 20, seed=seed, requested=requested,
    )  # fmt: skip
    per_set = [set_metrics(reference, tokens, paired=True) for tokens in sets]
    rng = np.random.default_rng(seed)
    shuffled = rng.permutation(n)
    random_tokens = rng.integers(0, 4, size=real.shape)
    valid = splits["valid"].tokens[:n].numpy()
    baselines = {
        "shuffled_labels": {
            f"sp_mse.{name}": sp_mse(reference.f_real[name], reference.f_real[name][shuffled])
            for name in scorers
        },
        "valid_vs_test": set_metrics(reference, valid, paired=False),
        "random_sequences": set_metrics(reference, random_tokens, paired=True),
    }
    metrics = {
        "parameters": {
            "replicates": len(sets),
            "paired_repeat": paired_repeat,
            "paired_protocol": f"{paired_repeat} sample(s) per test label, each paired with it; "
            "SP-MSE pooled over every pair equals the mean over the sets",
            "kmer_k": list(kmer),
            "js": "Jensen-Shannon distance (sqrt of the divergence, natural log) of pooled "
            "forward-strand k-mer counts",
            "ks": "two-sample KS statistic of scorer outputs, mean over outputs",
            "auroc": "SPEC §13 CNN (conv 64/96/128, dense 256), 70/10/20 split, early stopping "
            f"(patience 3, at most 30 epochs), seed {seed}"
            if reference.discriminator
            else "not computed",
            "memorisation": f"largest fraction of identical positions to any of the "
            f"{len(reference.train)} training sequences",
            "diversity": "mean nearest-neighbour identity inside the set, as a fraction",
            "baseline_seed": seed,
        },
        "samples": {**summarise(per_set), "replicates": per_set},
        "baselines": baselines,
    }
    sweep = None
    if guidance_sweep:
        from d3_core.sweep import run_sweep

        sweep = run_sweep(reference, loaded, labels, guidance_sweep, chosen, guide, seed=seed,
                           steps=steps, predictor=predictor, batch_size=batch_size,
                           progress=progress, say=say)  # fmt: skip
    scores = {
        name: conditional_fidelity(fn, real, sets[0], requested[name], names=names, scorer=(
            oracle_info["name"] if name == "oracle" else f"{plugin.distribution} planted rule"),
            seed=seed)
        for name, (fn, names) in scorers.items()
    }  # fmt: skip
    figures = []
    if plots:
        figures = _write_plots(out, reference, sets[0], scores, scorers)
        if sweep is not None:
            from d3_core.sweep import plot_sweep

            figures.append(plot_sweep(sweep, out / "guidance_sweep.png",
                                      floor=baselines["valid_vs_test"]))  # fmt: skip
    report: dict[str, Any] = {
        "dataset": plugin.name,
        "architecture": loaded.architecture if loaded is not None else arch,
        "data": str(Path(data).resolve()),
        "num_sequences": n,
        "sequences_from": sequences_from,
        "checkpoint": None
        if loaded is None
        else {
            "path": str(loaded.path),
            "sha256": loaded.sha256,
            "format": loaded.format,
            "step": loaded.step,
            "notes": list(loaded.notes),
        },
        "sampling": sampling,
        "oracle": oracle_info,
        "metrics": metrics,
        "guidance_sweep": sweep,
        "scores": scores,
        "plots": [str(p.name) for p in figures],
        "context": context,
        "versions": {
            "d3-core": __version__,
            plugin.distribution: plugin.version,
            "torch": str(torch.__version__),
        },
        "device": device,
        "host": platform.node(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seconds": round(time.perf_counter() - started, 1),
    }
    markdown = _markdown(report)
    with atomic_write(out / "report.json") as file:
        json.dump(report, file, indent=2)
        file.write("\n")
    with atomic_write(out / "report.md") as file:
        file.write(markdown + "\n")
    return {**report, "markdown": markdown}


def _write_plots(out: Path, reference: _Reference, generated: np.ndarray, scores, scorers):
    """The report's PNG figures: per scorer, predictions against requested labels and their
    distributions; the k-mer spectrum of the smallest k."""
    from d3_core.plots import (
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
