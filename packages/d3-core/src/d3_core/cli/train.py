"""``d3 train``: options → resolved config and plugin → run directory → `d3_core.training.run`."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
from pathlib import Path

from d3_core.cli.options import positive, quiet_lightning, say
from d3_core.errors import D3ConfigError, D3InputError, TrainingDiverged

__all__ = ["add_parser", "run", "train_overrides", "train_values"]


def add_parser(commands) -> argparse.ArgumentParser:
    """Registers ``d3 train``."""
    train = commands.add_parser(
        "train",
        help="train a D3 model on a dataset",
        description="Train a D3 score model. Config: the dataset package's preset, then each "
        "--config file, then the key=value overrides (e.g. training.lr=1e-4).",
    )
    train.add_argument("--dataset", help="dataset plugin name, e.g. deepstarr")
    train.add_argument("--arch", help="Tran (transformer) or Conv (conv), any case")
    train.add_argument("--data", help="data file in the dataset's format (sets dataset.data)")
    train.add_argument(
        "--preset", choices=("cpu", "paper"), default="cpu", help="packaged config (default: cpu)"
    )
    train.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="FILE",
        help="YAML config merged over the preset; repeatable",
    )
    train.add_argument(
        "--max-steps", type=positive, help="optimizer steps (sets training.max_steps)"
    )
    train.add_argument(
        "--gpus",
        type=positive,
        help="GPUs per node (sets trainer.accelerator=gpu, trainer.devices)",
    )
    train.add_argument("--num-nodes", type=positive, help="nodes (sets trainer.num_nodes)")
    train.add_argument("--strategy", help="Lightning strategy, e.g. ddp (sets trainer.strategy)")
    train.add_argument("--out", help="run directory (default: runs/<dataset>-<Arch>-<date>-<time>)")
    train.add_argument(
        "--resume", metavar="CHECKPOINT", help="continue from a last.ckpt or run directory"
    )
    train.add_argument("--force", action="store_true", help="overwrite the run in --out")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    return train


def train_overrides(args: argparse.Namespace) -> list[str]:
    """The ``key=value`` overrides that the named train options stand for, then the free ones."""
    overrides = []
    if args.max_steps is not None:
        overrides.append(f"training.max_steps={args.max_steps}")
    if args.gpus is not None:
        overrides += ["trainer.accelerator=gpu", f"trainer.devices={args.gpus}"]
    if args.num_nodes is not None:
        overrides.append(f"trainer.num_nodes={args.num_nodes}")
    if args.strategy is not None:
        overrides.append(f"trainer.strategy={args.strategy}")
    return overrides + list(args.overrides)


def train_values(args: argparse.Namespace) -> dict[str, tuple[str, str]]:
    """The config values the train options set as they are: paths, never parsed as YAML."""
    if args.data is None:
        return {}
    return {"dataset.data": (str(Path(args.data).resolve()), f"--data {args.data!r}")}


def _resume_config(args: argparse.Namespace, overrides: list[str]):
    """(run config, checkpoint, run directory) of ``d3 train --resume``."""
    from d3_core.checkpoints.load import read_checkpoint
    from d3_core.config import RunConfig, apply_layers, config_from_plain
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
        config_from_plain(stored, plugin), plugin, config_files=args.config, overrides=overrides,
        values=train_values(args),
    )  # fmt: skip
    in_run = checkpoint.parent.name == "checkpoints"
    out = args.out or (checkpoint.parent.parent if in_run else None)
    return RunConfig(cfg, plugin), checkpoint.resolve(), out


def run(args: argparse.Namespace) -> int:
    """``d3 train``: resolve the config, prepare the run directory, train, summarise."""
    from d3_core.config import resolve_run_config
    from d3_core.outputs import claim_output_dir
    from d3_core.training.run import _rank, check_data_path, prepare_run_dir, train

    quiet_lightning()
    overrides = train_overrides(args)
    if args.resume:
        resolved, checkpoint, out = _resume_config(args, overrides)
    else:
        if not args.dataset or not args.arch:
            raise D3ConfigError("d3 train needs --dataset and --arch (or --resume CHECKPOINT)")
        resolved = resolve_run_config(
            args.dataset, args.arch, preset=args.preset, config_files=args.config,
            overrides=overrides, values=train_values(args),
        )  # fmt: skip
        checkpoint, out = None, args.out
    cfg, plugin = resolved
    check_data_path(cfg)  # before the run directory is made: a typo leaves nothing behind
    check_hardware(cfg, gpus=args.gpus, num_nodes=args.num_nodes)
    if out is not None:
        claimed = claim_output_dir(
            out, owned=RUN_ENTRIES, what="a run", lock=_rank() == 0,
            keep_on_error=lambda path: (path / "checkpoints" / "last.ckpt").exists(),
        )  # fmt: skip
    else:
        claimed = contextlib.nullcontext()
    with claimed:
        run_dir = prepare_run_dir(
            out, dataset=plugin.name, arch=cfg.model.architecture, force=args.force,
            resuming=checkpoint is not None,
        )  # fmt: skip
        say(f"run directory: {run_dir.root}")
        try:
            result = train(
                cfg, run_dir, resume=checkpoint, progress=not args.no_progress, plugin=plugin
            )
        except TrainingDiverged as err:
            raise TrainingDiverged(f"{err}; {_last_good(run_dir)}") from None
        _write_summary(run_dir, result, checkpoint)
    return 0


RUN_ENTRIES = ("config.yaml", "checkpoints", "logs", "samples", "train.json", "lightning_logs")
"""What a run directory holds; any other entry in --out makes it someone else's directory."""

ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")
"""The trainer.accelerator values d3 runs on."""


LAUNCHER_VARIABLES = ("WORLD_SIZE", "NODE_RANK", "SLURM_NTASKS", "LSB_JOBID",
                      "OMPI_COMM_WORLD_SIZE", "PMI_SIZE")  # fmt: skip
"""Set by the launchers that start one process per node (torchrun, SLURM, LSF, MPI); without
one, a run of several nodes waits for ever for nodes that never come."""


def check_hardware(cfg, *, gpus: int | None = None, num_nodes: int | None = None) -> None:
    """Refuses hardware d3 cannot start on, before anything is written.

    An accelerator or strategy Lightning does not know, a GPU run where torch has no CUDA GPU,
    and several nodes without a launcher that starts one process per node.

    Args:
        cfg: The resolved config.
        gpus: ``--gpus``, when given, for the messages.
        num_nodes: ``--num-nodes``, when given, for the messages.
    """
    from lightning.pytorch.strategies import StrategyRegistry

    from d3_core.devices import require_cuda

    accelerator = cfg.trainer.accelerator
    if accelerator not in ACCELERATORS:
        raise D3ConfigError(
            f"trainer.accelerator = {accelerator!r} is not supported; use one of "
            f"{', '.join(ACCELERATORS)}"
        )
    if accelerator in ("gpu", "cuda"):
        require_cuda(
            f"--gpus {gpus}" if gpus is not None else f"trainer.accelerator = {accelerator}"
        )
    nodes = int(cfg.trainer.num_nodes)
    if nodes > 1 and not any(os.environ.get(name) for name in LAUNCHER_VARIABLES):
        given = (
            f"--num-nodes {num_nodes} (trainer.num_nodes = {nodes})"
            if num_nodes
            else (f"trainer.num_nodes = {nodes}")
        )
        raise D3ConfigError(
            f"{given} needs a multi-node launcher that starts one d3 train per node (srun "
            f"under SLURM, or torchrun --nnodes {nodes}); none is set here "
            f"({', '.join(LAUNCHER_VARIABLES)}), so the run would wait for ever for the other "
            f"nodes; on one machine use --gpus N"
        )
    strategy = cfg.trainer.strategy
    known = sorted(StrategyRegistry.available_strategies())
    if isinstance(strategy, str) and strategy != "auto" and strategy not in known:
        raise D3ConfigError(
            f"trainer.strategy = {strategy!r} is not a Lightning strategy; use auto, ddp or "
            f"another of: {', '.join(known)}"
        )


def _last_good(run_dir) -> str:
    """Where a failed run stands: its last checkpoint and step, or that it wrote none."""
    from d3_core.training.resume import resume_step

    if not run_dir.last.exists():
        return "no checkpoint was written"
    return (
        f"last good checkpoint: {run_dir.last} (step {resume_step(run_dir.last)}); continue it "
        f"with --resume {run_dir.last} and the fix as an override"
    )


def _finite(value) -> bool:
    return value is not None and math.isfinite(value)


def _write_summary(run_dir, result, checkpoint) -> None:
    from d3_core.io import atomic_write

    summary = {
        "run_dir": str(result.run_dir),
        "last_checkpoint": str(result.last_checkpoint),
        "best_checkpoint": str(result.best_checkpoint) if result.best_checkpoint else None,
        "steps": result.steps,
        "first_step": result.first_step,
        "resumed_from": str(checkpoint) if checkpoint else None,
        # Strict JSON: a non-finite loss is written as null, never as a bare NaN.
        "val_loss": result.val_loss if _finite(result.val_loss) else None,
        "seconds": round(result.seconds, 2),
    }
    with atomic_write(run_dir.root / "train.json") as file:
        json.dump(summary, file, indent=2, allow_nan=False)
        file.write("\n")
    val = f"{result.val_loss:.4f}" if result.val_loss is not None else "not measured"
    done = result.steps - result.first_step
    span = f" (steps {result.first_step} → {result.steps} of the run)" if result.first_step else ""
    say(
        f"trained {done} steps{span} in {result.seconds:.0f} s; validation loss {val}\n"
        f"checkpoint: {result.last_checkpoint}\nlogs: {run_dir.logs / 'metrics.csv'}"
    )
