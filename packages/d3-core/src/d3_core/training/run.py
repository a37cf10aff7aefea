"""Training runs: the run directory, the Lightning Trainer around `D3LightningModule`, resuming."""

from __future__ import annotations

import csv
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.plugins import TorchCheckpointIO
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from omegaconf import DictConfig

from d3_core.config import resolve_precision, save_config
from d3_core.errors import CheckpointError, D3ConfigError, D3InputError
from d3_core.io import atomic_path
from d3_core.registry import arch_label, load_dataset_plugin

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
    """The files of one run (DESIGN.md: run directory)."""

    root: Path

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
    """What a finished run produced."""

    run_dir: Path
    last_checkpoint: Path
    best_checkpoint: Path | None
    steps: int
    val_loss: float | None
    seconds: float


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
        force: Delete an existing run's config, checkpoints and logs first.
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
        for path in (run.checkpoints, run.logs):
            shutil.rmtree(path, ignore_errors=True)
        run.config.unlink(missing_ok=True)
    run.root.mkdir(parents=True, exist_ok=True)
    os.environ[RUN_DIR_ENV] = str(run.root)
    return run


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint beside its target and renames it: a crash never leaves half."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None
    ) -> None:
        with atomic_path(path) as tmp:
            torch.save(checkpoint, tmp)


class LastCheckpoint(Callback):
    """Saves ``last.ckpt`` every `every_n_steps` optimizer steps and when training ends."""

    def __init__(self, path: Path, every_n_steps: int) -> None:
        self.path, self.every_n_steps = path, every_n_steps
        self._saved_at = -1

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if trainer.global_step % self.every_n_steps == 0:
            self._save(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._save(trainer)

    def _save(self, trainer: L.Trainer) -> None:
        if trainer.global_step != self._saved_at:
            trainer.save_checkpoint(self.path, weights_only=False)
            self._saved_at = trainer.global_step


class SampleEvaluation(Callback):
    """Designs sequences during training and keeps the checkpoint whose designs score best.

    Every `every_n_steps` optimizer steps it samples one sequence for each of the first
    `n_labels` validation labels (fixed seeds, the analytic predictor) with the EMA weights
    swapped in, scores them against the real validation sequences of those labels (SP-MSE by the
    dataset's oracle or planted rule), logs ``val/sp_mse`` and saves ``best_sp_mse.ckpt`` when it
    improves. The training weights are restored afterwards and the global random state is left
    as it was, so training continues exactly as without it; the best value is saved with the
    run, so a resumed run keeps comparing with it.
    """

    def __init__(self, path: Path, cfg: DictConfig) -> None:
        tr = cfg.training
        self.path, self.every = path, tr.sample_eval_every_n_steps
        self.n_labels, self.steps = tr.sample_eval_labels, tr.sample_eval_steps
        self.scorer, self.oracle = tr.sample_eval_scorer, tr.sample_eval_oracle
        self.best = float("inf")
        self._reference = None

    def _prepare(self, trainer: L.Trainer, pl_module: L.LightningModule) -> tuple:
        import numpy as np

        from d3_core.registry import load_dataset_plugin

        if self._reference is None:
            val = trainer.datamodule.val
            n = min(self.n_labels, len(val))
            tokens = np.stack([val[i][0].numpy() for i in range(n)])
            labels = np.stack([val[i][1].numpy() for i in range(n)]).astype(np.float32)
            plugin = load_dataset_plugin(pl_module.dataset_name)
            if self.scorer == "oracle":
                from d3_core.oracles.oracle import load_oracle

                oracle = load_oracle(self.oracle, plugin.load("oracle"))
                score = oracle.predict
            else:
                truth = plugin.load("ground_truth")
                score = lambda t: np.asarray(truth(t))  # noqa: E731
            self._reference = (labels, score, score(tokens))
        return self._reference

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args) -> None:
        from types import SimpleNamespace

        from d3_core.evaluation.metrics import sp_mse
        from d3_core.generation.sequences import sample_sequences

        step = trainer.global_step
        if step == 0 or step % self.every:
            return
        labels, score, f_real = self._prepare(trainer, pl_module)
        model = pl_module.score_model
        was_training = model.training
        with torch.random.fork_rng(devices=[]), pl_module.ema.average_parameters(model):
            model.eval()
            loaded = SimpleNamespace(model=model, graph=pl_module.graph, noise=pl_module.noise,
                                     cfg=pl_module.cfg)  # fmt: skip
            run = sample_sequences(loaded, labels, seed=0, steps=self.steps,
                                   predictor="analytic", progress=False)  # fmt: skip
        model.train(was_training)
        value = sp_mse(f_real, score(run.tokens))
        # Straight to the loggers, in the rows of the step just trained (as train/loss is).
        for logger in trainer.loggers:
            logger.log_metrics({"val/sp_mse": value}, step=step - 1)
        if value < self.best:
            self.best = value
            trainer.save_checkpoint(self.path, weights_only=False)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best = float(state_dict["best"])


class StepProgressBar(TQDMProgressBar):
    """Lightning's bar, counting optimizer steps of the whole run rather than epochs.

    A d3 run is one pass of a step-indexed loader, so "Epoch 0" would say nothing; a resumed
    run's bar starts at the step it resumes from.
    """

    def on_train_start(self, trainer: L.Trainer, *args: Any) -> None:
        super().on_train_start(trainer, *args)
        self._count_steps(trainer)

    def on_train_epoch_start(self, trainer: L.Trainer, *args: Any) -> None:
        super().on_train_epoch_start(trainer, *args)
        self._count_steps(trainer)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any
    ) -> None:
        bar = self.train_progress_bar
        if bar is not None and not bar.disable:
            bar.n = trainer.global_step
            bar.set_postfix(self.get_metrics(trainer, pl_module))

    def _count_steps(self, trainer: L.Trainer) -> None:
        bar = self.train_progress_bar
        bar.set_description("training")
        bar.unit = "step"
        bar.total = trainer.max_steps
        bar.initial = bar.n = trainer.global_step
        bar.refresh()


class _ContinuingWriter(ExperimentWriter):
    """A CSV writer that keeps the rows of earlier steps when a run resumes.

    Lightning's writer deletes ``metrics.csv`` when it starts; a resumed run instead keeps the
    rows logged before its first step and appends to them, so the curve continues.
    """

    first_step = 0

    def _check_log_dir_exists(self) -> None:
        path = Path(self.metrics_file_path)
        if not path.is_file():
            return
        with open(path, newline="") as file:
            reader = csv.DictReader(file)
            keys = list(reader.fieldnames or [])
            rows = [
                row
                for row in reader
                if row.get("step", "").isdigit() and int(row["step"]) < self.first_step
            ]
        with atomic_path(path) as tmp, open(tmp, "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=keys)
            writer.writeheader()
            writer.writerows(rows)
        self.metrics_keys = sorted(keys)


class ContinuingCSVLogger(CSVLogger):
    """`CSVLogger` writing ``logs/metrics.csv``; on resume, earlier steps' rows are kept."""

    def __init__(self, save_dir: Path, first_step: int) -> None:
        super().__init__(save_dir=str(save_dir), name="", version="")
        self._first_step = first_step

    @property
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            writer_class = type("Writer", (_ContinuingWriter,), {"first_step": self._first_step})
            self._experiment = writer_class(log_dir=self.log_dir)
        return self._experiment


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
        callbacks=[LastCheckpoint(run.last, tr.checkpoint_every_n_steps), best]
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


def create_lightning_module(cfg: DictConfig | dict, dataset_name: str) -> L.LightningModule:
    """The dataset's `D3LightningModule` subclass built from a config (the original factory).

    Imports only the dataset package asked for.

    Args:
        cfg: A resolved config or its plain-data form.
        dataset_name: Dataset name, any case.
    """
    plugin = load_dataset_plugin(dataset_name)
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


def _data_module(cfg: DictConfig):
    """The data module of a config: the plugin's loader on ``dataset.data``.

    Sets ``dataset.label_names`` to the names the data file gives its labels, unless the config
    renames them itself (`d3_core.data.loader.label_names_of`), so the run records them.
    """
    from d3_core.data.loader import D3DataModule, label_names_of

    plugin = load_dataset_plugin(cfg.dataset.name)
    path = check_data_path(cfg)
    splits = plugin.load("data_loader")(path)
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


def resume_step(checkpoint: Path) -> int:
    """The optimizer step stored in one of our checkpoints."""
    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:
        raise CheckpointError(f"cannot read checkpoint {str(checkpoint)!r}: {err}") from None
    if "d3" not in state or "global_step" not in state:
        raise CheckpointError(
            f"{checkpoint} was not written by `d3 train`, so training cannot resume from it"
        )
    origin = state["d3"].get("converted_from") if isinstance(state["d3"], dict) else None
    if "optimizer_states" not in state or origin:
        source = f"converted from a {origin.get('format')} checkpoint and " if origin else ""
        raise CheckpointError(
            f"{checkpoint} was {source}holds no optimizer state: it can be sampled and "
            f"evaluated, but training cannot resume from it"
        )
    return int(state["global_step"])


def train(
    cfg: DictConfig, run: RunDir, *, resume: Path | None = None, progress: bool = True
) -> TrainResult:
    """Trains a model as the config says, writing into `run`; resumes from `resume` if given.

    Args:
        cfg: The resolved config (its ``dataset.data`` names the data file).
        run: The prepared run directory.
        resume: A ``last.ckpt`` of an earlier run of the same config.
        progress: Show progress bars.
    """
    first_step = resume_step(resume) if resume is not None else 0
    if first_step >= cfg.training.max_steps:
        raise D3ConfigError(
            f"the checkpoint is already at step {first_step}, not before training.max_steps = "
            f"{cfg.training.max_steps}; raise it, e.g. training.max_steps={2 * first_step}"
        )
    data = _data_module(cfg)
    L.seed_everything(cfg.training.seed, verbose=False)  # reproducible initial weights
    module = create_lightning_module(cfg, cfg.dataset.name)
    trainer = build_trainer(cfg, run, first_step=first_step, progress=progress)
    if trainer.global_rank == 0:
        save_config(cfg, run.config)
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
    )
