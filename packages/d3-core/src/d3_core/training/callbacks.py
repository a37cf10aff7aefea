"""The Lightning callbacks and plugins of a ``d3 train`` run (`d3_core.training.run`).

Atomic checkpoint writes, ``last.ckpt`` on a step schedule, sample-based evaluation that keeps
the best designing checkpoint, a progress bar in optimizer steps, and a CSV logger that continues
a resumed run's ``metrics.csv``. A run killed at any point (even ``kill -9`` inside a checkpoint
write) leaves a ``last.ckpt`` that loads and resumes bit for bit.
"""

from __future__ import annotations

import csv
import os
import signal
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.plugins import TorchCheckpointIO
from lightning.pytorch.callbacks import Callback, TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from omegaconf import DictConfig

from d3_core.io import atomic_path, torch_save

__all__ = [
    "KILL_ENV",
    "AtomicCheckpointIO",
    "ContinuingCSVLogger",
    "LastCheckpoint",
    "SampleEvaluation",
    "StepProgressBar",
]


KILL_ENV = "D3_TEST_SIGKILL"
"""Test hook, read only from this environment variable (d3's kill-and-resume tests set it; a
run never needs it): ``checkpoint-write:N`` makes the process SIGKILL itself inside the write of
a checkpoint of optimizer step N, after its temporary file is complete and before the rename;
``step:N`` when optimizer step N ends, before that step's ``last.ckpt`` is saved. Unset or any
other value: nothing happens."""

TEMPORARY_GLOB = ".*.ckpt.*.tmp"
"""The names `d3_core.io.atomic_path` gives a checkpoint being written (``.last.ckpt.x1y2.tmp``)."""


def _kill_point(where: str, step: int) -> None:
    """SIGKILLs this process when `KILL_ENV` names this point (tests only)."""
    if os.environ.get(KILL_ENV) == f"{where}:{step}":
        os.kill(os.getpid(), signal.SIGKILL)


def remove_temporary_checkpoints(folder: Path) -> list[Path]:
    """Deletes the temporary files of checkpoint writes that a killed process left in `folder`.

    The rename is the only step that replaces a checkpoint, so such a file is never the newest
    state of anything; `LastCheckpoint` calls this when a run starts, before it writes.

    Returns:
        The files deleted.
    """
    stray = sorted(Path(folder).glob(TEMPORARY_GLOB)) if Path(folder).is_dir() else []
    for path in stray:
        path.unlink(missing_ok=True)
    return stray


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint beside its target and renames it: a crash never leaves half."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None
    ) -> None:
        with atomic_path(path) as tmp:
            torch_save(checkpoint, tmp, target=path)
            _kill_point("checkpoint-write", int(checkpoint.get("global_step", -1)))


class LastCheckpoint(Callback):
    """Saves ``last.ckpt`` every `every_n_steps` optimizer steps and when training ends."""

    def __init__(self, path: Path, every_n_steps: int) -> None:
        self.path, self.every_n_steps = path, every_n_steps
        self._saved_at = -1

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if trainer.is_global_zero:  # the one writer of the run's checkpoints
            remove_temporary_checkpoints(self.path.parent)

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        _kill_point("step", trainer.global_step)
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

        if self._reference is None:
            val = trainer.datamodule.val
            n = min(self.n_labels, len(val))
            tokens = np.stack([val[i][0].numpy() for i in range(n)])
            labels = np.stack([val[i][1].numpy() for i in range(n)]).astype(np.float32)
            plugin = pl_module.plugin
            if self.scorer == "oracle":
                from d3_core.oracles.model import load_oracle

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
    rows logged before its first step and appends to them, so the curve continues. When a new
    column appears, Lightning rewrites the whole file in place; here the rewrite goes to a file
    beside it that replaces it whole, so a kill or a full disk mid-rewrite keeps every row.
    """

    first_step = 0

    def _check_log_dir_exists(self) -> None:
        path = Path(self.metrics_file_path)
        # A rewrite a killed process left half-done (`atomic_path`'s temporary file).
        for stray in path.parent.glob(f".{path.name}.*.tmp") if path.parent.is_dir() else []:
            stray.unlink(missing_ok=True)
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

    def save(self) -> None:
        keys = list(self.metrics_keys)
        try:
            super().save()
        except BaseException:
            # Lightning records new columns before writing them: a failed save must not leave
            # them recorded, or the next save appends rows under the old header.
            self.metrics_keys = keys
            raise

    def _rewrite_with_new_header(self, fieldnames: list[str]) -> None:
        path = Path(self.metrics_file_path)
        with open(path, newline="") as file:
            rows = list(csv.DictReader(file))
        with atomic_path(path) as tmp, open(tmp, "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=fieldnames)
            writer.writeheader()
            writer.writerows(rows)


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
