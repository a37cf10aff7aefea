"""``d3 sample``: one sequence per label row from any checkpoint, with provenance."""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path
from typing import Any

from d3_core.cli.options import add_checkpoint_options, add_guidance_options, positive, say, warn
from d3_core.errors import D3InputError

__all__ = ["add_parser", "run"]


def add_parser(commands) -> argparse.ArgumentParser:
    """Registers ``d3 sample``."""
    sample = commands.add_parser(
        "sample",
        help="design sequences for requested labels",
        description="Draw one sequence per label row with a checkpoint's EMA weights; writes "
        "samples.fasta, samples.npz, labels.tsv and provenance.json into --out.",
    )
    sample.add_argument(
        "--checkpoint",
        required=True,
        help="any checkpoint: d3's, a research .pth or run directory, a d3-dna .ckpt, a "
        "converted Lightning file, or a d3 run directory",
    )
    add_checkpoint_options(sample)
    labels = sample.add_mutually_exclusive_group(required=True)
    labels.add_argument(
        "--labels", metavar="FILE", help="labels to sample for (.npy, .npz, .tsv, .csv)"
    )
    labels.add_argument(
        "--from-test-set", action="store_true", help="the labels of the data file's test split"
    )
    sample.add_argument(
        "--data", help="data file for --from-test-set (default: the one trained on)"
    )
    sample.add_argument(
        "--num-samples", type=positive, help="sequences to draw (default: one per label row)"
    )
    sample.add_argument("--steps", type=positive, help="sampler steps (default: the config's)")
    sample.add_argument("--predictor", choices=("analytic", "euler"), help="default: the config's")
    sample.add_argument("--batch-size", type=positive, help="sequences per forward pass")
    sample.add_argument("--seed", type=int, default=0, help="sequence i uses a seed from (seed, i)")
    sample.add_argument("--device", help="cpu, cuda, cuda:1... (default: cuda if available)")
    sample.add_argument("--out", required=True, help="output directory")
    sample.add_argument("--force", action="store_true", help="overwrite samples in --out")
    sample.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_guidance_options(sample)
    return sample


def _test_labels(loaded, plugin, data: str | None, count: int | None):
    """Labels of the first `count` sequences of the test split of the model's data file."""
    import numpy as np

    path = data or loaded.cfg.dataset.data
    if not path:
        raise D3InputError(
            "--from-test-set needs the data file: pass --data FILE (the checkpoint names none)"
        )
    if not Path(path).exists():
        raise D3InputError(f"data file {str(path)!r} does not exist; pass --data FILE")
    test = plugin.load("data_loader")(path)["test"]
    n = len(test) if count is None else min(count, len(test))
    if count is not None and count > len(test):
        warn(f"the test split has {len(test)} sequences; sampling {n}, not {count}")
    labels = np.stack([test[i][1].numpy() for i in range(n)]).astype(np.float32)
    return labels, f"test split of {Path(path).resolve()}"


def _choose_labels(args: argparse.Namespace, loaded, plugin) -> tuple[Any, str]:
    """The labels to sample for, and where they came from."""
    import numpy as np

    from d3_core.generation.sequences import read_labels

    if args.from_test_set:
        return _test_labels(loaded, plugin, args.data, args.num_samples)
    labels = read_labels(
        args.labels, label_shape=plugin.label_shape, names=list(loaded.cfg.dataset.label_names)
    )
    source = str(Path(args.labels).resolve())
    if args.num_samples is None:
        return labels, source
    if len(labels) == 1:
        return np.repeat(labels, args.num_samples, axis=0), source
    if args.num_samples > len(labels):
        raise D3InputError(
            f"--num-samples {args.num_samples} exceeds the {len(labels)} label rows of "
            f"{args.labels}; give one row to repeat it, or at least as many rows"
        )
    return labels[: args.num_samples], source


def _refuse_overwrite(out: Path, force: bool) -> None:
    from d3_core.generation.sequences import OUTPUT_FILES

    taken = [name for name in OUTPUT_FILES if (out / name).exists()]
    if taken and not force:
        raise D3InputError(
            f"{out} already holds samples ({', '.join(taken)}); choose another --out or pass "
            f"--force to overwrite them"
        )


def run(args: argparse.Namespace) -> int:
    """``d3 sample``: draw one sequence per label row and write them with provenance."""
    import torch

    from d3_core import __version__
    from d3_core.checkpoints.load import load_checkpoint
    from d3_core.diffusion.guidance import load_guiding_oracle, resolve_guidance
    from d3_core.generation.sequences import sample_sequences, write_samples

    out = Path(args.out).resolve()
    _refuse_overwrite(out, args.force)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    loaded = load_checkpoint(
        args.checkpoint, device=device, trusted=args.trust_checkpoint, dataset=args.dataset,
        arch=args.arch,
    )  # fmt: skip
    if loaded.format != "d3":
        say(f"read a {loaded.format} checkpoint: {'; '.join(loaded.notes)}")
    if loaded.precision != "32-true":
        warn(f"the model was trained under {loaded.precision}; it samples in float32")
    plugin = loaded.plugin  # resolved once, by the loader, from what the checkpoint holds
    labels, source = _choose_labels(args, loaded, plugin)
    sampling = loaded.cfg.sampling
    steps = args.steps or sampling.steps
    predictor = args.predictor or sampling.predictor
    batch_size = args.batch_size or sampling.batch_size
    oracle = load_guiding_oracle(args.oracle, plugin, device=device,
                                 trusted=args.trust_checkpoint, names=args.oracle_names)  # fmt: skip
    if oracle is not None:
        say(f"guiding oracle: {oracle.spec.name} ({'; '.join(oracle.notes)})")
    guidance, notes = resolve_guidance(
        loaded.model, sampling, cfg=args.guidance, oracle=args.oracle_guidance,
        oracle_form=args.oracle_guidance_form, has_oracle=oracle is not None,
    )  # fmt: skip
    for note in notes:
        say(note)
    say(
        f"sampling {len(labels)} sequences into {out} ({predictor}, {steps} steps, seed {args.seed})"
    )
    run = sample_sequences(
        loaded, labels, seed=args.seed, steps=steps, predictor=predictor,
        batch_size=batch_size, progress=not args.no_progress, guidance=guidance, oracle=oracle,
    )  # fmt: skip
    provenance = {
        "checkpoint": str(loaded.path),
        "checkpoint_sha256": loaded.sha256,
        "checkpoint_format": loaded.format,
        "checkpoint_notes": list(loaded.notes),
        "dataset": loaded.dataset,
        "architecture": loaded.architecture,
        "trained_steps": loaded.step,
        "weights": "ema",
        "num_samples": len(labels),
        "labels_from": source,
        "label_names": list(loaded.cfg.dataset.label_names),
        "seed": args.seed,
        "per_sequence_seeds": "sequence i uses d3_core.seeds.step_seed(seed, i)",
        "steps": steps,
        "predictor": predictor,
        "guidance": guidance.describe(),
        "guidance_notes": notes,
        "guiding_oracle": oracle.describe() if oracle is not None else None,
        "batch_size": batch_size,
        "device": device,
        "seconds": round(run.seconds, 3),
        "sequences_per_second": round(len(labels) / run.seconds, 4) if run.seconds else None,
        "versions": {"d3-core": __version__, "torch": str(torch.__version__)},
        "host": platform.node(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "npz_layout": "arr_0: (N, L, 4) float32 one-hot A,C,G,T; tokens: (N, L) uint8 0..3",
    }
    names = list(loaded.cfg.dataset.label_names)
    written = write_samples(out, run, names=names, provenance=provenance)
    rate = len(labels) / run.seconds if run.seconds else float("inf")
    say(f"wrote {len(labels)} sequences in {run.seconds:.1f} s ({rate:.2f} seq/s):")
    for path in written:
        say(f"  {path}")
    return 0
