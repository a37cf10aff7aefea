"""Training runs: the run directory, the Lightning Trainer around `D3LightningModule`, resuming."""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig

from d3_core.config import resolve_precision, save_config
from d3_core.data.files import read_data_file
from d3_core.errors import D3ConfigError, D3InputError
from d3_core.registry import DatasetPlugin, arch_label, as_plugin
from d3_core.training.callbacks import (
    AtomicCheckpointIO,
    ContinuingCSVLogger,
    LastCheckpoint,
    SampleEvaluation,
    StepProgressBar,
)
from d3_core.training.resume import check_resume_fits, resume_state

__all__ = [
    "RunDir",
    "TrainResult",
    "build_trainer",
    "create_lightning_module",
    "prepare_run_dir",
    "train",
]

RUN_DIR_ENV = "D3_RUN_DIR"
"""Set by the rank-0 process of a run, so that the processes Lightning launches from it (which
inherit its environment) share its run directory instead of naming their own."""


@dataclass(frozen=True)
class RunDir:
    """The files of one run (DESIGN.md: run directory).

    Attributes:
        root: The directory.
        replaces: It holds an earlier run that ``--force`` replaces. `train` deletes that run's
            config, checkpoints and logs only once the new run has been checked and built, just
            before it starts: a bad data file or hardware it cannot start leaves the old run.
    """

    root: Path
    replaces: bool = False

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def last(self) -> Path:
        return self.checkpoints / "last.ckpt"

    @property
    def best(self) -> Path:
        return self.checkpoints / "best.ckpt"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def samples(self) -> Path:
        return self.root / "samples"


@dataclass(frozen=True)
class TrainResult:
    """What a finished run produced; `steps` counts the run's steps, `first_step` is where this
    invocation started (non-zero after ``--resume``)."""

    run_dir: Path
    last_checkpoint: Path
    best_checkpoint: Path | None
    steps: int
    val_loss: float | None
    seconds: float
    first_step: int = 0


def _rank() -> int:
    """This process's global rank from the launcher's environment (0 when not launched)."""
    for variable in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        if os.environ.get(variable, "").isdigit():
            return int(os.environ[variable])
    return 0


def prepare_run_dir(
    out: str | os.PathLike | None, *, dataset: str, arch: str, force: bool, resuming: bool
) -> RunDir:
    """Chooses and creates the run directory; refuses to overwrite a run without `force`.

    Args:
        out: The directory, or None for ``runs/<dataset>-<Arch>-<date>-<time>``.
        dataset: Dataset name, for the default name.
        arch: Architecture, for the default name.
        force: Replace an existing run: `train` deletes its config, checkpoints and logs
            once the new run is ready to start (`RunDir.replaces`).
        resuming: The run continues in `out`; its files are kept.

    Raises:
        D3InputError: `out` holds a run and neither `force` nor `resuming` is set, or a
            multi-process launch did not name `out`.
    """
    if _rank() > 0 and os.environ.get(RUN_DIR_ENV):
        return RunDir(Path(os.environ[RUN_DIR_ENV]))  # a process Lightning launched
    if out is None:
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise D3InputError(
                "a multi-process launch (torchrun, SLURM) needs the run directory named: "
                "pass --out DIR so that every process writes to the same place"
            )
        stamp = time.strftime("%Y%m%d-%H%M%S")
        out = Path("runs") / f"{dataset}-{arch_label(arch)}-{stamp}"
    run = RunDir(Path(out).resolve())
    holds_run = run.config.exists() or run.checkpoints.exists()
    if _rank() == 0 and holds_run and not resuming:
        if not force:
            raise D3InputError(
                f"{run.root} already holds a run; choose another --out, continue it with "
                f"--resume {run.last}, or pass --force to overwrite it"
            )
        run = RunDir(run.root, replaces=True)
    run.root.mkdir(parents=True, exist_ok=True)
    os.environ[RUN_DIR_ENV] = str(run.root)
    return run


def _remove_replaced_run(run: RunDir) -> None:
    """Deletes the run that ``--force`` replaces (its config, checkpoints, logs, summary)."""
    for path in (run.checkpoints, run.logs, run.root / "lightning_logs"):
        shutil.rmtree(path, ignore_errors=True)
    for path in (run.config, run.root / "train.json"):
        path.unlink(missing_ok=True)


class _RecordConfig(L.Callback):
    """Writes the run's ``config.yaml`` once training starts, after a resumed checkpoint has
    been restored: a resume that is refused leaves the run's config as it was."""

    def __init__(self, cfg: DictConfig, path: Path) -> None:
        self.cfg, self.path = cfg, path

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.global_rank == 0:
            save_config(self.cfg, self.path)


def _has_tensorboard() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ModuleNotFoundError:
        try:
            import tensorboardX  # noqa: F401
        except ModuleNotFoundError:
            return False
    return True


def build_trainer(
    cfg: DictConfig, run: RunDir, *, first_step: int = 0, progress: bool = True
) -> L.Trainer:
    """A Lightning Trainer for a resolved config, writing into `run`.

    Args:
        cfg: The resolved config.
        run: The run directory.
        first_step: The step training starts from (non-zero when resuming).
        progress: Show a progress bar.
    """
    tr, hw = cfg.training, cfg.trainer
    accelerator = hw.accelerator
    if accelerator == "auto":
        accelerator = "gpu" if torch.cuda.is_available() else "cpu"
    precision = resolve_precision(tr.precision, cfg.model.architecture, accelerator)
    best = ModelCheckpoint(
        dirpath=run.checkpoints,
        filename="best",
        monitor="val/loss",
        mode="min",
        save_top_k=1,
        auto_insert_metric_name=False,
        enable_version_counter=False,
    )
    loggers = [ContinuingCSVLogger(run.logs, first_step)]
    if _has_tensorboard():
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(save_dir=str(run.logs), name="tensorboard", version=""))
    return L.Trainer(
        accelerator=accelerator,
        devices=hw.devices,
        num_nodes=hw.num_nodes,
        strategy=hw.strategy,
        precision=precision,
        max_steps=tr.max_steps,
        max_epochs=-1,
        val_check_interval=tr.val_every_n_steps,
        check_val_every_n_epoch=None,
        limit_val_batches=tr.val_batches if tr.val_batches is not None else 1.0,
        num_sanity_val_steps=0,
        log_every_n_steps=min(tr.log_every_n_steps, max(1, tr.max_steps - first_step)),
        use_distributed_sampler=False,  # D3DataModule shards every step's batch itself
        callbacks=[
            _RecordConfig(cfg, run.config),
            LastCheckpoint(run.last, tr.checkpoint_every_n_steps),
            best,
        ]
        + (
            [SampleEvaluation(run.checkpoints / "best_sp_mse.ckpt", cfg)]
            if tr.sample_eval_every_n_steps
            else []
        )
        + ([StepProgressBar()] if progress else []),
        logger=loggers,
        plugins=[AtomicCheckpointIO()],
        default_root_dir=str(run.root),
        enable_progress_bar=progress,
        enable_model_summary=False,
    )


def create_lightning_module(
    cfg: DictConfig | dict, dataset_name: str | DatasetPlugin
) -> L.LightningModule:
    """The dataset's `D3LightningModule` subclass built from a config (the original factory).

    Imports only the dataset package asked for.

    Args:
        cfg: A resolved config or its plain-data form.
        dataset_name: Dataset name, any case, or its plugin.
    """
    plugin = as_plugin(dataset_name)
    module_class = plugin.load("lightning_module")
    return module_class(cfg)


def check_data_path(cfg: DictConfig) -> Path:
    """The config's data file, which must be named and exist.

    Raises:
        D3InputError: No file is named (the message says how to make one), or it is missing.
    """
    if not cfg.dataset.data:
        name = cfg.dataset.name
        raise D3InputError(
            f"no data file given for {name}: pass --data FILE, or make synthetic data "
            f"with `d3 make-data --dataset {name} --out FILE`"
        )
    path = Path(cfg.dataset.data)
    if not path.exists():
        raise D3InputError(f"data file {str(path)!r} does not exist")
    return path


def _data_module(cfg: DictConfig, plugin: DatasetPlugin):
    """The data module of a config: the plugin's loader on ``dataset.data``.

    Sets ``dataset.label_names`` to the names the data file gives its labels, unless the config
    renames them itself (`d3_core.data.loader.label_names_of`), so the run records them.
    """
    from d3_core.data.loader import D3DataModule, label_names_of

    path = check_data_path(cfg)
    splits = read_data_file(plugin, path)
    source, names = label_names_of(plugin, splits, cfg.dataset.label_names)
    if source == "data file":
        cfg.dataset.label_names = list(names)
    for split in ("train", "valid"):
        if split not in splits:
            raise D3InputError(
                f"{plugin.distribution}'s loader returned no {split!r} split for {path}"
            )
    return D3DataModule(
        splits["train"],
        splits["valid"],
        batch_size=cfg.training.batch_size,
        length=plugin.sequence_length,
        label_shape=plugin.label_shape,
        num_workers=cfg.training.num_workers,
        seed=cfg.training.seed,
    )


def train(
    cfg: DictConfig,
    run: RunDir,
    *,
    resume: Path | None = None,
    progress: bool = True,
    plugin: DatasetPlugin | None = None,
) -> TrainResult:
    """Trains a model as the config says, writing into `run`; resumes from `resume` if given.

    Args:
        cfg: The resolved config (its ``dataset.data`` names the data file).
        run: The prepared run directory.
        resume: A ``last.ckpt`` of an earlier run of the same config.
        progress: Show progress bars.
        plugin: The config's dataset plugin (`d3_core.config.resolve_run_config` returns it);
            looked up from ``cfg.dataset.name`` when not given.
    """
    plugin = as_plugin(plugin or cfg.dataset.name)
    state = resume_state(resume) if resume is not None else None
    first_step = int(state["global_step"]) if state is not None else 0
    if first_step >= cfg.training.max_steps:
        raise D3ConfigError(
            f"the checkpoint is already at step {first_step}, not before training.max_steps = "
            f"{cfg.training.max_steps}; raise it, e.g. training.max_steps={2 * first_step}"
        )
    data = _data_module(cfg, plugin)
    L.seed_everything(cfg.training.seed, verbose=False)  # reproducible initial weights
    module = create_lightning_module(cfg, plugin)
    if state is not None:
        check_resume_fits(module, state, resume)
        del state
    trainer = build_trainer(cfg, run, first_step=first_step, progress=progress)
    if run.replaces and trainer.global_rank == 0:
        _remove_replaced_run(run)  # everything checked and built: replace last
    started = time.perf_counter()
    trainer.fit(
        module, datamodule=data, ckpt_path=str(resume) if resume else None, weights_only=True
    )
    val = trainer.callback_metrics.get("val/loss")
    best = (
        Path(trainer.checkpoint_callback.best_model_path or "")
        if trainer.checkpoint_callback
        else None
    )
    return TrainResult(
        run_dir=run.root,
        last_checkpoint=run.last,
        best_checkpoint=best if best and best.is_file() else None,
        steps=trainer.global_step,
        val_loss=float(val) if val is not None else None,
        seconds=time.perf_counter() - started,
        first_step=first_step,
    )
