"""``d3 evaluate`` as a function: sample or read designs, score them, write the report (SPEC §13).

`evaluate_run` draws (or reads) the sets, scores them with `d3_core.evaluation.fidelity` against the test
split and its baselines, and writes ``report.json``, ``report.md`` and the plots atomically. The
scoring functions are re-exported here, where earlier versions defined them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

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

__all__ = ["conditional_fidelity", "evaluate_run", "label_response", "set_metrics", "summarise"]


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

    Sampling is guided as `d3_core.diffusion.guidance.resolve_guidance` decides: classifier-free guidance
    at the checkpoint's ``sampling.guidance`` when the model has a null label, oracle guidance
    only with a guiding oracle (`guide_oracle`, or the scoring oracle when `oracle_guidance` is
    asked for; its own scores of the samples are then optimistic, which the report says).
    `guidance_sweep` samples once more per weight and reports SP-MSE, Pearson r, diversity and
    memorisation per weight (`d3_core.evaluation.sweep`).

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
        from d3_core.checkpoints.load import load_checkpoint

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
    from d3_core.data.loader import label_names_of

    _, label_names = label_names_of(
        plugin, splits, loaded.cfg.dataset.label_names if loaded is not None else None
    )
    test = splits["test"]
    n = min(num_samples or len(test), len(test))
    real = test.tokens[:n].numpy()
    labels = test.labels[:n].numpy().astype(np.float32)

    sets: list[np.ndarray] = []
    sampling: dict[str, Any] | None = None
    from d3_core.diffusion.guidance import Guidance

    chosen, guide = Guidance(), None
    if samples is not None:
        from d3_core.generation.sequences import read_samples

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
        from d3_core.generation.sequences import sample_sequences, write_samples

        if loaded.precision != "32-true":
            warn(f"the model was trained under {loaded.precision}; it samples in float32")
        cfg = loaded.cfg.sampling
        steps, predictor = steps or cfg.steps, predictor or cfg.predictor
        batch_size = batch_size or cfg.batch_size
        from d3_core.diffusion.guidance import load_guiding_oracle, resolve_guidance

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
        from d3_core.oracles.oracle import load_oracle

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
    reference = Reference(
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
        from d3_core.evaluation.sweep import run_sweep

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
        figures = write_plots(out, reference, sets[0], scores, scorers)
        if sweep is not None:
            from d3_core.evaluation.sweep import plot_sweep

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
    markdown = report_markdown(report)
    with atomic_write(out / "report.json") as file:
        json.dump(report, file, indent=2)
        file.write("\n")
    with atomic_write(out / "report.md") as file:
        file.write(markdown + "\n")
    return {**report, "markdown": markdown}
