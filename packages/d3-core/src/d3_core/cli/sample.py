"""``d3 sample``: one sequence per label row from any checkpoint, with provenance."""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path
from typing import Any

from d3_core.cli.options import add_checkpoint_options, add_guidance_options, positive, say, warn
from d3_core.data.files import read_data_file
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
    sample.add_argument(
        "--seed", type=int, default=0,
        help="sequence i uses its own generator seeded from (seed, i), whatever the batch size",
    )  # fmt: skip
    sample.add_argument(
        "--first-index", type=int, default=0, metavar="N",
        help="the run-wide index of the first sequence (default 0): label rows N, N+1, ... get "
        "sequences N, N+1, ... of the whole run, so jobs on several devices (or a resumed run) "
        "given --first-index 0, 1000, 2000 ... and --num-samples 1000 concatenate into one run",
    )  # fmt: skip
    sample.add_argument("--device", help="cpu, cuda, cuda:1... (default: cuda if available)")
    sample.add_argument("--out", required=True, help="output directory (new, empty or d3's)")
    sample.add_argument(
        "--force", action="store_true",
        help="replace the samples in --out (the new set is written in full first, then swapped "
        "in; on failure the old set stays)",
    )  # fmt: skip
    sample.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_guidance_options(sample)
    return sample


def _test_labels(loaded, plugin, data: str | None, count: int | None, first: int):
    """Labels of `count` sequences of the test split of the model's data file, from `first`."""
    import numpy as np

    path = data or loaded.cfg.dataset.data
    if not path:
        raise D3InputError(
            "--from-test-set needs the data file: pass --data FILE (the checkpoint names none)"
        )
    if not Path(path).exists():
        raise D3InputError(f"data file {str(path)!r} does not exist; pass --data FILE")
    test = read_data_file(plugin, path, need=("test",))["test"]
    left = len(test) - first
    if left < 1:
        raise D3InputError(f"--first-index {first}: the test split has only {len(test)} sequences")
    n = left if count is None else min(count, left)
    if count is not None and count > left:
        warn(f"the test split has {left} sequences from index {first}; sampling {n}, not {count}")
    labels = np.stack([test[first + i][1].numpy() for i in range(n)]).astype(np.float32)
    shard = f", from index {first}" if first else ""
    return labels, f"test split of {Path(path).resolve()}{shard}"


def _choose_labels(args: argparse.Namespace, loaded, plugin) -> tuple[Any, str]:
    """The labels to sample for, and where they came from."""
    import numpy as np

    from d3_core.generation.sequences import check_fits, read_labels

    first, count = args.first_index, args.num_samples
    if count is not None:
        check_fits(count, plugin.sequence_length, plugin.label_shape, option="--num-samples")
    if args.from_test_set:
        return _test_labels(loaded, plugin, args.data, count, first)
    labels = read_labels(
        args.labels, label_shape=plugin.label_shape, names=list(loaded.cfg.dataset.label_names)
    )
    source = str(Path(args.labels).resolve())
    if len(labels) == 1:  # one row, repeated: sequence i is row 0 with seed (seed, i)
        return np.repeat(labels, count or 1, axis=0), source
    if first >= len(labels):
        raise D3InputError(
            f"--first-index {first}: {args.labels} has only {len(labels)} label rows (row i is "
            "sequence i of the run)"
        )
    if first:
        source += f", rows from {first}"
    if count is None:
        return labels[first:], source
    if first + count > len(labels):
        raise D3InputError(
            f"--num-samples {count} from --first-index {first} exceeds the {len(labels)} label "
            f"rows of {args.labels}; give one row to repeat it, or at least as many rows"
        )
    return labels[first : first + count], source


def _refuse_overwrite(out: Path, force: bool) -> None:
    """Refuses to replace an existing sample set unless --force."""
    from d3_core.generation.sequences import OUTPUT_FILES

    taken = [name for name in OUTPUT_FILES if (out / name).exists()]
    if taken and not force:
        raise D3InputError(
            f"{out} already holds samples ({', '.join(taken)}); choose another --out or pass "
            f"--force to overwrite them"
        )


def run(args: argparse.Namespace) -> int:
    """``d3 sample``: draw one sequence per label row and write them with provenance."""
    from d3_core.devices import resolve_device
    from d3_core.generation.filesets import claim
    from d3_core.generation.sequences import OUTPUT_FILES
    from d3_core.seeds import check_seed

    check_seed(args.seed, option="--seed")
    check_seed(args.first_index, option="--first-index")
    device = resolve_device(args.device)
    with claim(args.out, owned=OUTPUT_FILES, what="samples") as out:
        _refuse_overwrite(out, args.force)
        return _sample(args, out, device)


def _sample(args: argparse.Namespace, out: Path, device: str) -> int:
    """Loads, samples and writes, inside the claimed --out."""
    import torch

    from d3_core import __version__
    from d3_core.checkpoints.load import load_checkpoint
    from d3_core.diffusion.guidance import load_guiding_oracle, resolve_guidance
    from d3_core.generation.sequences import sample_sequences, write_samples

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
    first = args.first_index
    shard = f", sequences {first}..{first + len(labels) - 1}" if first else ""
    say(f"sampling {len(labels)} sequences into {out} ({predictor}, {steps} steps, seed "
        f"{args.seed}{shard})")  # fmt: skip
    run = sample_sequences(
        loaded, labels, seed=args.seed, steps=steps, predictor=predictor,
        batch_size=batch_size, progress=not args.no_progress, guidance=guidance, oracle=oracle,
        first_index=first,
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
        "first_index": first,
        "per_sequence_seeds": "sequence i uses d3_core.seeds.step_seed(seed, i); this set holds "
        f"sequences {first}..{first + len(labels) - 1}",
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
