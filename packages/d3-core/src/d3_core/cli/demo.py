"""``d3 demo``: synthetic data → CPU-preset training → oracle → sampling for test labels → scores.

The samples' conditional fidelity (SP-MSE, docs/metrics.md#metrics) is printed beside two baselines,
real test sequences paired with shuffled labels and uniform random sequences, so that "the model
follows the labels" is a measured statement. It is measured twice: by the dataset's oracle, trained
here on the same synthetic data with its published recipe, and by the planted rule itself. Sampling
is guided as `d3 sample` would be with that oracle (`d3_core.diffusion.guidance`): classifier-free
guidance at the preset's weight and oracle guidance by the demo's oracle. The oracle's scores
of guided samples are therefore optimistic; the planted rule, which nothing was tuned on, is
the judge.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from d3_core.cli.options import quiet_lightning
from d3_core.data.files import read_data_file

__all__ = ["DEMO_ORACLE_EPOCHS", "DEMO_ORACLE_SECONDS", "DEMO_SAMPLES", "add_parser", "run"]

DEMO_SAMPLES = 256
"""Sequences the demo designs (the first test labels)."""

DEMO_ORACLE_EPOCHS = 12
"""Upper bound on the demo oracle's epochs (its recipe's early stopping may end it sooner)."""

DEMO_ORACLE_SECONDS = 240
"""The demo oracle stops at the first epoch end after this much training: a large oracle (MPRA's
takes about 110 s per epoch here) is then less accurate, which the demo prints."""


def add_parser(commands) -> argparse.ArgumentParser:
    """Registers ``d3 demo``."""
    demo = commands.add_parser(
        "demo",
        help="make data, train, sample and score, in minutes on a CPU",
        description="End to end on synthetic data: make data -> train the CPU preset -> sample "
        "for the test labels -> score the samples against the planted rule.",
    )
    demo.add_argument(
        "--dataset", default="deepstarr", help="dataset plugin name (default: deepstarr)"
    )
    demo.add_argument(
        "--arch",
        default="Conv",
        help="Conv or Tran (default: Conv, the faster to train on a CPU; both CPU presets learn "
        "the planted rule within the demo's minutes)",
    )
    demo.add_argument(
        "--out", help="run directory (default: runs/demo-<dataset>-<Arch>-<date>-<time>)"
    )
    demo.add_argument("--force", action="store_true", help="overwrite the run in --out")
    demo.add_argument("--no-progress", action="store_true", help="no progress bars")
    demo.add_argument(
        "--guidance-sweep", type=float, nargs="+", metavar="W",
        help="also sample at these guidance weights and report the fidelity/diversity trade",
    )  # fmt: skip
    return demo


def run(args: argparse.Namespace) -> int:
    """Runs the five stages and prints where everything went."""
    from d3_core.config import resolve_run_config
    from d3_core.evaluation.run import EvaluateRequest, evaluate_run
    from d3_core.oracles.training import recipe_with, train_oracle
    from d3_core.registry import arch_label, canonical_arch, load_dataset_plugin, require_ready
    from d3_core.training.run import prepare_run_dir, train

    quiet_lightning()
    started = time.perf_counter()
    plugin = load_dataset_plugin(args.dataset)
    require_ready(plugin)
    plugin.require("synthetic_data")
    plugin.require("ground_truth")
    arch = canonical_arch(args.arch)
    out = (
        args.out
        or Path("runs") / f"demo-{plugin.name}-{arch_label(arch)}-{time.strftime('%Y%m%d-%H%M%S')}"
    )
    run = prepare_run_dir(out, dataset=plugin.name, arch=arch, force=args.force, resuming=False)
    progress = not args.no_progress
    stages = 5 if plugin.provides("oracle") else 4
    print(f"run directory: {run.root}", flush=True)

    data = run.root / "data" / f"synthetic-{plugin.name}{plugin.data_suffix}"
    print(f"[1/{stages}] writing synthetic {plugin.name} data to {data}", flush=True)
    plugin.load("synthetic_data")(data, seed=0, size="small")

    cfg, _ = resolve_run_config(plugin, arch, preset="cpu", overrides=[f"dataset.data={data}"])
    print(
        f"[2/{stages}] training the CPU preset of {arch_label(arch)} for "
        f"{cfg.training.max_steps} steps",
        flush=True,
    )
    result = train(cfg, run, progress=progress, plugin=plugin)

    oracle_path = None
    context = {"demo": {"train_steps": result.steps, "val_loss": result.val_loss,
                        "checkpoint": str(result.last_checkpoint)}}  # fmt: skip
    if plugin.provides("oracle"):
        spec = plugin.load("oracle")
        recipe = recipe_with(
            spec.recipe, max_epochs=min(spec.recipe.max_epochs, DEMO_ORACLE_EPOCHS)
        )
        print(
            f"[3/{stages}] training the {spec.name} on the same data (up to {recipe.max_epochs} "
            f"epochs or the first epoch end after {DEMO_ORACLE_SECONDS} s)",
            flush=True,
        )
        splits = read_data_file(plugin, data, need=("train", "valid", "test"))
        oracle = train_oracle(
            spec, splits, run.root / "oracle", dataset=plugin.name, recipe=recipe,
            progress=progress, max_seconds=DEMO_ORACLE_SECONDS,
        )  # fmt: skip
        pearson = ", ".join(f"{k} {v:.3f}" for k, v in oracle.test_pearson.items())
        print(f"    oracle test Pearson r: {pearson} ({oracle.epochs} epochs, "
              f"{oracle.seconds:.0f} s)", flush=True)  # fmt: skip
        if min(oracle.test_pearson.values()) < 0.8:
            print(
                f"    the demo's budget leaves this oracle under-trained (r < 0.8); its scores "
                f"are rough. `d3 oracle train --dataset {plugin.name} --data {data}` trains it "
                f"fully.",
                flush=True,
            )
        oracle_path = oracle.checkpoint
        context["demo"]["oracle"] = {"epochs": oracle.epochs, "test_pearson": oracle.test_pearson,
                                     "report": str(oracle.report)}  # fmt: skip

    print(f"[{stages - 1}/{stages}] sampling for the first test labels (up to {DEMO_SAMPLES}), then "
          f"[{stages}/{stages}] scoring", flush=True)  # fmt: skip
    # The demo's oracle also guides sampling (weight: the preset's sampling.oracle_guidance),
    # so its own scores of the samples are optimistic; the planted rule is the fair judge.
    request = EvaluateRequest(
        dataset=plugin.name, out=run.root / "eval", model_path=result.last_checkpoint,
        data=data, oracle_path=oracle_path, ground_truth=True, num_samples=DEMO_SAMPLES,
        samples_dir=run.samples, progress=progress, force=True, context=context,
        guide_oracle=oracle_path, guidance_sweep=args.guidance_sweep,
    )  # fmt: skip
    report = evaluate_run(request)
    print(report["markdown"])
    seconds = time.perf_counter() - started
    print(
        f"finished in {seconds:.0f} s. data: {data}\ncheckpoint: {result.last_checkpoint}\n"
        f"samples: {run.samples}\nreport: {run.root / 'eval' / 'report.json'}",
        flush=True,
    )
    return 0
