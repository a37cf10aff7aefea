"""``d3 evaluate`` as a function: sample or read designs, score them, write the report
(docs/metrics.md#metrics).

`evaluate_run` takes an `EvaluateRequest`; it draws (or reads) the sets, scores them with
`d3_core.evaluation.fidelity` against the test split and its baselines, and writes
``report.json``, ``report.md``, the plots and the drawn samples as one set: ``out`` must be new,
empty or d3's, one writer at a time, and the set is swapped in whole, so a failure (a full disk)
keeps an earlier report (`d3_core.generation.filesets`). Scorers are re-exported from here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from d3_core.data.files import read_data_file
from d3_core.devices import resolve_device
from d3_core.errors import D3InputError
from d3_core.evaluation.fidelity import (
    Reference,
    Scorer,
    conditional_fidelity,
    label_response,
    set_metrics,
    summarise,
)
from d3_core.evaluation.metrics import sp_mse
from d3_core.evaluation.report import report_markdown, write_plots
from d3_core.evaluation.request import EvaluateRequest
from d3_core.generation.filesets import NamePatterns, claim, replace_set
from d3_core.seeds import check_seed

__all__ = [
    "EvaluateRequest",
    "conditional_fidelity",
    "evaluate_run",
    "label_response",
    "set_metrics",
    "summarise",
]

# What ``d3 evaluate`` writes into ``out`` (shell patterns): the report, its plots, the samples.
REPORT_FILES = ("report.json", "report.md", "*.png", "samples", "samples-r*")


@dataclass
class _Inputs:
    """What an evaluation reads before it samples: plugin, model, data and the test labels."""

    plugin: Any
    loaded: Any
    data: str | Path
    splits: dict[str, Any]
    label_names: tuple[str, ...]
    real: np.ndarray
    labels: np.ndarray
    device: str


@dataclass
class _Sets:
    """The scored sequence sets, how they were drawn, and the guidance used."""

    sets: list[np.ndarray]
    sampling: dict[str, Any] | None
    sequences_from: str
    chosen: Any
    guide: Any
    steps: int | None
    predictor: str | None
    batch_size: int | None


def evaluate_run(
    request: EvaluateRequest | None = None,
    /,
    *,
    say: Callable[[str], None] = print,
    warn: Callable[[str], None] = print,
    **options: Any,
) -> dict[str, Any]:
    """Designs one sequence per test label (or reads them), scores them, and writes a report.

    Writes ``report.json``, ``report.md`` and PNG plots into ``request.out``, and the samples,
    when drawn, into ``request.samples_dir`` (default ``out/samples``; replicate r > 0 into
    ``<samples_dir>-r<r>``). Returns the report with its markdown under ``"markdown"``.

    Sampling is guided as `d3_core.diffusion.guidance.resolve_guidance` decides: classifier-free
    guidance at the checkpoint's ``sampling.guidance`` when the model has a null label, oracle
    guidance only with a guiding oracle (``guide_oracle``, or the scoring oracle when
    ``oracle_guidance`` is asked for; its own scores of the samples are then optimistic, which
    the report says). ``guidance_sweep`` samples once more per weight and reports SP-MSE,
    Pearson r, diversity and memorisation per weight (`d3_core.evaluation.sweep`).

    Every metric of docs/metrics.md#metrics is computed for each sample set (sampling seeds
    ``seed + r``) and summarised as mean and sd, beside three baselines: real test sequences with
    shuffled labels (SP-MSE), real validation sequences (the floor of the unpaired metrics) and uniform
    random sequences (the ceiling).

    Args:
        request: What to evaluate; or give its fields as keyword `options` instead.
        say: Prints progress.
        warn: Prints warnings.
        **options: `EvaluateRequest` fields, when no `request` is given.

    Raises:
        D3InputError: Nothing to score with, no checkpoint and no samples, no data file, samples
            that do not pair with the test labels, or a report already in ``out`` without
            ``force`` (`EvaluateRequest.check`).
    """
    import time

    if request is None:
        request = EvaluateRequest(**options)
    elif options:
        raise TypeError("give evaluate_run a request or its fields as keywords, not both")
    started = time.perf_counter()
    check_seed(request.seed, option="--seed")
    device = resolve_device(request.device)
    owned = NamePatterns(*REPORT_FILES)
    # A run that draws no samples into out (--samples, or samples_dir elsewhere) keeps the ones
    # there; every other entry of an earlier report is replaced.
    samples_inside = request.samples is None and request.samples_dir is None
    replaced = owned if samples_inside else NamePatterns(*REPORT_FILES[:3])
    with claim(request.out, owned=owned, what="an evaluation report") as out:
        request.check()  # under the lock: no other process writes a report meanwhile
        with replace_set(out, names=replaced) as stage:
            inputs = _read_inputs(request, say, device)
            drawn = _draw_sets(request, inputs, say, warn, stage)
            report = _score(request, inputs, drawn, say, stage)
            return _write_report(request, inputs, report, started, stage)


def _read_inputs(request: EvaluateRequest, say: Callable[[str], None], device: str) -> _Inputs:
    """Resolves the plugin once and reads the checkpoint, the data file and the test labels."""

    from d3_core.data.loader import label_names_of
    from d3_core.registry import load_dataset_plugin

    plugin = load_dataset_plugin(request.dataset)
    loaded = None
    if request.model_path is not None:
        from d3_core.checkpoints.load import load_checkpoint

        loaded = load_checkpoint(
            request.model_path, device=device, trusted=request.trusted, dataset=plugin.name,
            arch=request.arch,
        )  # fmt: skip
        if loaded.format != "d3":
            say(f"read a {loaded.format} checkpoint: {'; '.join(loaded.notes)}")
    data = request.data or (loaded.cfg.dataset.data if loaded is not None else None)
    if not data:
        raise D3InputError("give --data: the dataset file whose test split is the reference")
    splits = read_data_file(plugin, data, need=("test",))
    _, label_names = label_names_of(
        plugin, splits, loaded.cfg.dataset.label_names if loaded is not None else None
    )
    test = splits["test"]
    n = min(request.num_samples or len(test), len(test))
    return _Inputs(
        plugin=plugin, loaded=loaded, data=data, splits=splits, label_names=tuple(label_names),
        real=test.tokens[:n].numpy(), labels=test.labels[:n].numpy().astype(np.float32),
        device=device,
    )  # fmt: skip


def _draw_sets(
    request: EvaluateRequest,
    inputs: _Inputs,
    say: Callable[[str], None],
    warn: Callable[[str], None],
    stage: Path,
) -> _Sets:
    """Reads ``request.samples``, or samples ``request.sets`` sets from the checkpoint."""
    from d3_core.diffusion.guidance import Guidance

    n, loaded = len(inputs.labels), inputs.loaded
    if request.samples is not None:
        from d3_core.generation.sequences import read_samples

        generated = read_samples(request.samples, length=inputs.plugin.sequence_length)
        if len(generated) != n:
            raise D3InputError(
                f"{request.samples} holds {len(generated)} sequences but {n} test labels are "
                f"scored; give --num-samples {len(generated)} if they were made for the first "
                f"{len(generated)} test labels"
            )
        return _Sets([generated], None, str(Path(request.samples).resolve()), Guidance(), None,
                     request.steps, request.predictor, request.batch_size)  # fmt: skip
    from d3_core.diffusion.guidance import load_guiding_oracle, resolve_guidance
    from d3_core.generation.sequences import check_fits, sample_sequences, write_samples

    if loaded.precision != "32-true":
        warn(f"the model was trained under {loaded.precision}; it samples in float32")
    cfg = loaded.cfg.sampling
    steps, predictor = request.steps or cfg.steps, request.predictor or cfg.predictor
    batch_size = request.batch_size or cfg.batch_size
    guide_oracle = request.guide_oracle
    if guide_oracle is None and request.oracle_guidance and request.oracle_path is not None:
        guide_oracle = request.oracle_path
    guide = load_guiding_oracle(guide_oracle, inputs.plugin, device=inputs.device,
                                trusted=request.trusted, names=request.oracle_names)  # fmt: skip
    if guide is not None:
        say(f"guiding oracle: {guide.spec.name} ({'; '.join(guide.notes)})")
    chosen, guidance_notes = resolve_guidance(
        loaded.model, cfg, cfg=request.guidance, oracle=request.oracle_guidance,
        oracle_form=request.oracle_guidance_form, has_oracle=guide is not None,
    )  # fmt: skip
    if guide is not None and chosen.oracle and guide_oracle == request.oracle_path:
        guidance_notes.append(
            "the scoring oracle also guided sampling: its scores of the samples are "
            "optimistic; judge them by an independent scorer (another oracle, the planted rule)"
        )
    for note in guidance_notes:
        say(note)
    sets, seconds, seed, replicates = [], [], request.seed, request.sets
    check_fits(n * replicates, inputs.plugin.sequence_length, inputs.labels.shape[1:],
               option="test labels x --replicates (or --paired-repeat)")  # fmt: skip
    base_dir = request.samples_dir or stage / "samples"
    for r in range(replicates):
        say(f"sampling {n} sequences for the test labels ({predictor}, {steps} steps, "
            f"seed {seed + r}{f', replicate {r + 1} of {replicates}' if replicates > 1 else ''})")  # fmt: skip
        run = sample_sequences(
            loaded, inputs.labels, seed=seed + r, steps=steps, predictor=predictor,
            batch_size=batch_size, progress=request.progress, guidance=chosen, oracle=guide,
        )  # fmt: skip
        sets.append(run.tokens)
        seconds.append(round(run.seconds, 2))
        provenance = {"checkpoint": str(loaded.path), "checkpoint_sha256": loaded.sha256,
                      "labels_from": f"first {n} test labels of {inputs.data}", "seed": seed + r,
                      "steps": steps, "predictor": predictor,
                      "guidance": chosen.describe()}  # fmt: skip
        folder = base_dir if r == 0 else base_dir.with_name(f"{base_dir.name}-r{r}")
        write_samples(folder, run, names=list(inputs.label_names), provenance=provenance)
    sampling = {"steps": steps, "predictor": predictor, "seeds": [seed + r for r in
                range(replicates)], "batch_size": batch_size, "seconds": seconds,
                "guidance": chosen.describe(), "guidance_notes": guidance_notes,
                "guiding_oracle": guide.describe() if guide is not None else None}  # fmt: skip
    return _Sets(sets, sampling, f"{loaded.path} (sampled)", chosen, guide, steps, predictor,
                 batch_size)  # fmt: skip


def _score(
    request: EvaluateRequest,
    inputs: _Inputs,
    drawn: _Sets,
    say: Callable[[str], None],
    stage: Path,
) -> dict[str, Any]:
    """Scores every set and the baselines; returns the report without its run details."""
    plugin, loaded, labels, real = inputs.plugin, inputs.loaded, inputs.labels, inputs.real
    sets, splits, n, seed = drawn.sets, inputs.splits, len(inputs.labels), request.seed
    progress, kmer, label_names = request.progress, request.kmer, inputs.label_names
    scorers: dict[str, tuple[Scorer, tuple[str, ...]]] = {}
    requested: dict[str, np.ndarray] = {"ground_truth": labels}  # labels in each scorer's terms
    oracle_info = None
    if request.oracle_path is not None:
        from d3_core.oracles.model import load_oracle

        oracle = load_oracle(request.oracle_path, plugin.load("oracle"), device=inputs.device,
                             trusted=request.trusted, names=request.oracle_names)  # fmt: skip
        oracle_info = oracle.describe()
        say(f"oracle: {oracle.spec.name} ({'; '.join(oracle.notes)})")
        scorers["oracle"] = (
            lambda tokens: oracle.predict(
                tokens, batch_size=oracle.spec.predict_batch, progress=progress
            ),
            oracle.output_names,
        )
        requested["oracle"] = oracle.spec.targets_of(labels)
    if request.ground_truth:
        truth = plugin.load("ground_truth")
        scorers["ground_truth"] = (lambda tokens: np.asarray(truth(tokens)), label_names)
    say(f"scoring with {' and '.join(scorers)}: every metric of docs/metrics.md, "
        f"{len(sets)} set(s) and three baselines")  # fmt: skip
    reference = Reference(
        real=real, labels=labels, train=splits["train"].tokens.numpy(), scorers=scorers,
        kmer=kmer, discriminator=request.discriminator and n >= 20, seed=seed, requested=requested,
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
            "paired_repeat": request.paired_repeat,
            "paired_protocol": f"{request.paired_repeat} sample(s) per test label, each paired with it; "
            "SP-MSE pooled over every pair equals the mean over the sets",
            "kmer_k": list(kmer),
            "js": "Jensen-Shannon distance (sqrt of the divergence, natural log) of pooled "
            "forward-strand k-mer counts",
            "ks": "two-sample KS statistic of scorer outputs, mean over outputs",
            "auroc": "the discriminator CNN of docs/metrics.md (conv 64/96/128, dense 256), "
            "70/10/20 split, early stopping "
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
    if request.guidance_sweep:
        from d3_core.evaluation.sweep import run_sweep

        sweep = run_sweep(reference, loaded, labels, request.guidance_sweep, drawn.chosen,
                           drawn.guide, seed=seed, steps=drawn.steps,
                           predictor=drawn.predictor, batch_size=drawn.batch_size,
                           progress=progress, say=say)  # fmt: skip
    scores = {
        name: conditional_fidelity(fn, real, sets[0], requested[name], names=names, scorer=(
            oracle_info["name"] if name == "oracle" else f"{plugin.distribution} planted rule"),
            seed=seed)
        for name, (fn, names) in scorers.items()
    }  # fmt: skip
    figures = []
    out = stage
    if request.plots:
        figures = write_plots(out, reference, sets[0], scores, scorers)
        if sweep is not None:
            from d3_core.evaluation.sweep import plot_sweep

            figures.append(plot_sweep(sweep, out / "guidance_sweep.png",
                                      floor=baselines["valid_vs_test"]))  # fmt: skip
    report: dict[str, Any] = {
        "dataset": plugin.name,
        "architecture": loaded.architecture if loaded is not None else request.arch,
        "data": str(Path(inputs.data).resolve()),
        "num_sequences": n,
        "sequences_from": drawn.sequences_from,
        "checkpoint": None
        if loaded is None
        else {
            "path": str(loaded.path),
            "sha256": loaded.sha256,
            "format": loaded.format,
            "step": loaded.step,
            "notes": list(loaded.notes),
        },
        "sampling": drawn.sampling,
        "oracle": oracle_info,
        "metrics": metrics,
        "guidance_sweep": sweep,
        "scores": scores,
        "plots": [str(p.name) for p in figures],
        "context": request.context,
    }
    return report


def _write_report(
    request: EvaluateRequest,
    inputs: _Inputs,
    report: dict[str, Any],
    started: float,
    stage: Path,
) -> dict[str, Any]:
    """Adds versions and timing, and writes ``report.json`` and ``report.md`` into `stage`."""
    import json
    import platform
    import time

    import torch

    from d3_core import __version__

    plugin, out = inputs.plugin, stage
    report |= {
        "versions": {
            "d3-core": __version__,
            plugin.distribution: plugin.version,
            "torch": str(torch.__version__),
        },
        "device": inputs.device,
        "host": platform.node(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seconds": round(time.perf_counter() - started, 1),
    }
    markdown = report_markdown(report)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (out / "report.md").write_text(markdown + "\n", encoding="utf-8")
    return {**report, "markdown": markdown}
