"""What ``d3 train``, ``d3 sample`` and ``d3 make-data`` do once their arguments are parsed."""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

from d3_core.errors import D3ConfigError, D3InputError
from d3_core.io import atomic_write

__all__ = [
    "run_convert",
    "run_evaluate",
    "run_make_data",
    "run_oracle_train",
    "run_sample",
    "run_train",
]


def _say(message: str) -> None:
    print(message, flush=True)


def _warn(message: str) -> None:
    print(f"d3: warning: {message}", file=sys.stderr, flush=True)


def quiet_lightning() -> None:
    """Hides Lightning's advertising and known-harmless deprecation noise; d3 prints a summary."""
    import logging
    import warnings

    logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    warnings.filterwarnings(
        "ignore", message=r".*Checkpoint directory .* exists and is not empty.*"
    )


def train_overrides(args: argparse.Namespace) -> list[str]:
    """The ``key=value`` overrides that the named train options stand for, then the free ones."""
    overrides = []
    if args.data is not None:
        overrides.append(f"dataset.data={Path(args.data).resolve()}")
    if args.max_steps is not None:
        overrides.append(f"training.max_steps={args.max_steps}")
    if args.gpus is not None:
        overrides += ["trainer.accelerator=gpu", f"trainer.devices={args.gpus}"]
    if args.num_nodes is not None:
        overrides.append(f"trainer.num_nodes={args.num_nodes}")
    if args.strategy is not None:
        overrides.append(f"trainer.strategy={args.strategy}")
    return overrides + list(args.overrides)


def _resume_config(args: argparse.Namespace, overrides: list[str]):
    """(config, checkpoint, run directory) of ``d3 train --resume``."""
    from d3_core.checkpoints.load import read_checkpoint
    from d3_core.config import apply_layers, config_from_plain
    from d3_core.registry import canonical_arch, load_dataset_plugin

    checkpoint = Path(args.resume)
    if checkpoint.is_dir():
        checkpoint = checkpoint / "checkpoints" / "last.ckpt"
    state = read_checkpoint(checkpoint)
    stored = state["hyper_parameters"]["cfg"]
    dataset, arch = stored["dataset"]["name"], stored["model"]["architecture"]
    if args.dataset and args.dataset.lower() != dataset:
        raise D3InputError(
            f"--resume {checkpoint} is a {dataset} checkpoint, but --dataset {args.dataset} was "
            f"given; drop --dataset or resume a {args.dataset} run"
        )
    if args.arch and canonical_arch(args.arch) != arch:
        raise D3InputError(
            f"--resume {checkpoint} is a {arch} checkpoint, but --arch {args.arch} was given"
        )
    plugin = load_dataset_plugin(dataset)
    cfg = apply_layers(
        config_from_plain(stored, plugin), plugin, config_files=args.config, overrides=overrides
    )
    in_run = checkpoint.parent.name == "checkpoints"
    out = args.out or (checkpoint.parent.parent if in_run else None)
    return cfg, checkpoint.resolve(), out


def run_train(args: argparse.Namespace) -> int:
    """``d3 train``: resolve the config, prepare the run directory, train, summarise."""
    from d3_core.config import resolve_config
    from d3_core.training.run import check_data_path, prepare_run_dir, train

    quiet_lightning()
    overrides = train_overrides(args)
    if args.resume:
        cfg, checkpoint, out = _resume_config(args, overrides)
    else:
        if not args.dataset or not args.arch:
            raise D3ConfigError("d3 train needs --dataset and --arch (or --resume CHECKPOINT)")
        cfg = resolve_config(
            args.dataset, args.arch, preset=args.preset, config_files=args.config,
            overrides=overrides,
        )  # fmt: skip
        checkpoint, out = None, args.out
    check_data_path(cfg)  # before the run directory is made: a typo leaves nothing behind
    run = prepare_run_dir(
        out, dataset=cfg.dataset.name, arch=cfg.model.architecture, force=args.force,
        resuming=checkpoint is not None,
    )  # fmt: skip
    _say(f"run directory: {run.root}")
    result = train(cfg, run, resume=checkpoint, progress=not args.no_progress)
    summary = {
        "run_dir": str(result.run_dir),
        "last_checkpoint": str(result.last_checkpoint),
        "best_checkpoint": str(result.best_checkpoint) if result.best_checkpoint else None,
        "steps": result.steps,
        "resumed_from": str(checkpoint) if checkpoint else None,
        "val_loss": result.val_loss,
        "seconds": round(result.seconds, 2),
    }
    with atomic_write(run.root / "train.json") as file:
        json.dump(summary, file, indent=2)
        file.write("\n")
    val = f"{result.val_loss:.4f}" if result.val_loss is not None else "not measured"
    _say(
        f"trained {result.steps} steps in {result.seconds:.0f} s; validation loss {val}\n"
        f"checkpoint: {result.last_checkpoint}\nlogs: {run.logs / 'metrics.csv'}"
    )
    return 0


def _test_labels(loaded, data: str | None, count: int | None):
    """Labels of the first `count` sequences of the test split of the model's data file."""
    import numpy as np

    from d3_core.registry import load_dataset_plugin

    path = data or loaded.cfg.dataset.data
    if not path:
        raise D3InputError(
            "--from-test-set needs the data file: pass --data FILE (the checkpoint names none)"
        )
    if not Path(path).exists():
        raise D3InputError(f"data file {str(path)!r} does not exist; pass --data FILE")
    plugin = load_dataset_plugin(loaded.dataset)
    test = plugin.load("data_loader")(path)["test"]
    n = len(test) if count is None else min(count, len(test))
    if count is not None and count > len(test):
        _warn(f"the test split has {len(test)} sequences; sampling {n}, not {count}")
    labels = np.stack([test[i][1].numpy() for i in range(n)]).astype(np.float32)
    return labels, f"test split of {Path(path).resolve()}"


def _choose_labels(args: argparse.Namespace, loaded) -> tuple[Any, str]:
    """The labels to sample for, and where they came from."""
    import numpy as np

    from d3_core.generation.sequences import read_labels
    from d3_core.registry import load_dataset_plugin

    if args.from_test_set:
        return _test_labels(loaded, args.data, args.num_samples)
    plugin = load_dataset_plugin(loaded.dataset)
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


def run_sample(args: argparse.Namespace) -> int:
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
        _say(f"read a {loaded.format} checkpoint: {'; '.join(loaded.notes)}")
    if loaded.precision != "32-true":
        _warn(f"the model was trained under {loaded.precision}; it samples in float32")
    labels, source = _choose_labels(args, loaded)
    sampling = loaded.cfg.sampling
    steps = args.steps or sampling.steps
    predictor = args.predictor or sampling.predictor
    batch_size = args.batch_size or sampling.batch_size
    oracle = load_guiding_oracle(args.oracle, loaded.dataset, device=device,
                                 trusted=args.trust_checkpoint, names=args.oracle_names)  # fmt: skip
    if oracle is not None:
        _say(f"guiding oracle: {oracle.spec.name} ({'; '.join(oracle.notes)})")
    guidance, notes = resolve_guidance(
        loaded.model, sampling, cfg=args.guidance, oracle=args.oracle_guidance,
        oracle_form=args.oracle_guidance_form, has_oracle=oracle is not None,
    )  # fmt: skip
    for note in notes:
        _say(note)
    _say(
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
    _say(f"wrote {len(labels)} sequences in {run.seconds:.1f} s ({rate:.2f} seq/s):")
    for path in written:
        _say(f"  {path}")
    return 0


def _converted_name(source: Path) -> str:
    return f"{source.stem.removesuffix('.d3')}.d3.ckpt"


def _convert_one(
    source: Path, out: Path, args: argparse.Namespace, *, single: bool
) -> dict[str, Any]:
    """Converts one file; returns its report record (never raises a d3 error)."""
    from d3_core.checkpoints.load import read_contents, write_checkpoint
    from d3_core.errors import CheckpointError, D3Error

    record: dict[str, Any] = {"source": str(source)}
    try:
        contents = read_contents(
            source, trusted=args.trust_checkpoint, dataset=args.dataset, arch=args.arch
        )
    except CheckpointError as err:
        not_ours = "is not a checkpoint d3 reads" in str(err)
        return record | {"status": "skipped" if not_ours else "failed", "reason": str(err)}
    except D3Error as err:
        return record | {"status": "failed", "reason": str(err)}
    record |= {
        "format": contents.format,
        "dataset": contents.plugin.name,
        "architecture": contents.architecture,
        "step": contents.step,
        "notes": contents.notes,
    }
    if contents.format == "d3":
        return record | {"status": "skipped", "reason": "already in d3's format"}
    if out.exists() and not args.force:
        # Converting a directory again skips what is done; one file asked for is an error.
        status = "failed" if single else "skipped"
        return record | {"status": status, "reason": f"{out} exists; pass --force to overwrite it"}
    write_checkpoint(contents, out)
    return record | {"status": "converted", "out": str(out)}


def run_convert(args: argparse.Namespace) -> int:
    """``d3 convert``: d3's format from one checkpoint, or from every one under a directory."""
    from d3_core.checkpoints.load import find_checkpoints

    source = Path(args.source)
    if not source.exists():
        raise D3InputError(f"{source} does not exist")
    if source.is_file():
        out = Path(args.out) if args.out else source.with_name(_converted_name(source))
        records = [_convert_one(source, out, args, single=True)]
    else:
        found = find_checkpoints(source)
        if not found:
            raise D3InputError(f"no PyTorch files under {source}; nothing to convert")
        base = Path(args.out) if args.out else None
        records = []
        for path in found:
            folder = base / path.parent.relative_to(source) if base else path.parent
            records.append(_convert_one(path, folder / _converted_name(path), args, single=False))
    if args.json:
        print(json.dumps(records, indent=2))
    else:
        for record in records:
            status = record["status"]
            detail = record.get("out") or record.get("reason")
            what = (
                f" ({record['format']}, {record['dataset']}, "
                f"{record['architecture']}, step {record['step']})"
                if "format" in record
                else ""
            )
            _say(f"{status:9} {record['source']}{what}: {detail}")
    counts = {s: sum(r["status"] == s for r in records) for s in ("converted", "skipped", "failed")}
    if not args.json:
        _say(", ".join(f"{n} {s}" for s, n in counts.items()))
    if len(records) == 1 and counts["failed"]:
        raise D3InputError(records[0]["reason"])
    return 1 if counts["failed"] else 0


def run_make_data(args: argparse.Namespace) -> int:
    """``d3 make-data``: write a dataset's synthetic data in its real file format."""
    from d3_core.registry import load_dataset_plugin

    plugin = load_dataset_plugin(args.dataset)
    out = Path(args.out)
    if out.exists() and not args.force:
        raise D3InputError(f"{out} already exists; choose another --out or pass --force")
    writer = plugin.load("synthetic_data")
    started = time.perf_counter()
    writer(out, seed=args.seed, size=args.size)
    megabytes = out.stat().st_size / 2**20
    _say(
        f"wrote synthetic {plugin.name} data ({args.size}, seed {args.seed}) to {out.resolve()} "
        f"({megabytes:.1f} MiB, {time.perf_counter() - started:.1f} s)"
    )
    return 0


def run_oracle_train(args: argparse.Namespace) -> int:
    """``d3 oracle train``: the dataset's oracle, trained on a data file with its recipe."""
    from d3_core.oracles.oracle import recipe_with, train_oracle
    from d3_core.registry import load_dataset_plugin

    plugin = load_dataset_plugin(args.dataset)
    spec = plugin.load("oracle")
    out = Path(args.out)
    if (out / "oracle.ckpt").exists() and not args.force:
        raise D3InputError(f"{out} already holds oracle.ckpt; choose another --out or pass --force")
    splits = plugin.load("data_loader")(args.data)
    recipe = recipe_with(
        spec.recipe, max_epochs=args.max_epochs, batch_size=args.batch_size, seed=args.seed
    )
    quiet_lightning()
    _say(
        f"training the {spec.name} on {args.data} ({len(splits['train'])} training sequences; "
        f"Adam lr {recipe.lr}, batch {recipe.batch_size}, up to {recipe.max_epochs} epochs, "
        f"early stop after {recipe.early_stop_patience} without improvement)"
    )
    result = train_oracle(
        spec, splits, out, dataset=plugin.name, recipe=recipe, progress=not args.no_progress,
        accelerator="gpu" if args.gpus else "auto",
    )  # fmt: skip
    pearson = ", ".join(f"{name} {r:.3f}" for name, r in result.test_pearson.items())
    _say(
        f"trained {result.epochs} epochs in {result.seconds:.0f} s; best validation MSE "
        f"{result.val_loss:.4f}; test Pearson r: {pearson}\ncheckpoint: {result.checkpoint}\n"
        f"report: {result.report}"
    )
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    """``d3 evaluate``: designed sequences for the test labels, scored against the real ones."""
    from d3_core.evaluation.run import evaluate_run

    report = evaluate_run(
        dataset=args.dataset, arch=args.arch, model_path=args.model_path, data=args.data,
        oracle_path=args.oracle, oracle_names=args.oracle_names, samples=args.samples, ground_truth=args.ground_truth,
        num_samples=args.num_samples, replicates=args.replicates, paired_repeat=args.paired_repeat, kmer=args.kmer,
        discriminator=not args.no_discriminator, plots=not args.no_plots, steps=args.steps, predictor=args.predictor,
        seed=args.seed, batch_size=args.batch_size, device=args.device,
        trusted=args.trust_checkpoint, out=Path(args.out), force=args.force,
        progress=not args.no_progress, say=_say, warn=_warn, guidance=args.guidance,
        oracle_guidance=args.oracle_guidance, oracle_guidance_form=args.oracle_guidance_form,
        guide_oracle=args.guide_oracle, guidance_sweep=args.guidance_sweep,
    )  # fmt: skip
    _say(report["markdown"])
    return 0
