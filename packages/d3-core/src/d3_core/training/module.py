"""`D3LightningModule`: a thin Lightning adapter around the plain-torch engine.

Steps are a few lines that call `d3_core.training.step.train_step` and `d3_core.diffusion.loss`; data, trainer
construction and run-directory handling live in `d3_core.data.loader` and `d3_core.training.run`.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import ExitStack
from typing import Any, ClassVar

import lightning as L
import torch
from omegaconf import DictConfig

from d3_core.checkpoints.load import CHECKPOINT_FORMAT
from d3_core.config import config_from_plain, model_sizes, to_plain
from d3_core.diffusion.graph import UniformGraph
from d3_core.diffusion.loss import score_entropy_loss
from d3_core.diffusion.noise import build_noise
from d3_core.errors import CheckpointError, D3ConfigError, TrainingDiverged
from d3_core.registry import DatasetPlugin, as_plugin, canonical_arch
from d3_core.seeds import step_seed
from d3_core.training.ema import ExponentialMovingAverage
from d3_core.training.step import train_step

__all__ = ["D3LightningModule", "LinearWarmup"]


class LinearWarmup:
    """Learning-rate factor min(1, (step + 1) / warmup_steps) for `LambdaLR`.

    The first step already trains (the research code's factor step / warmup made it a no-op).
    A class rather than a lambda so the scheduler's state is plain data in the checkpoint.
    """

    def __init__(self, warmup_steps: int) -> None:
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step: int) -> float:
        if self.warmup_steps <= 0:
            return 1.0
        return min(1.0, (step + 1) / self.warmup_steps)


class D3LightningModule(L.LightningModule):
    """Trains a D3 score model on one dataset (docs/method.md#score-entropy-loss,
    docs/models.md#dataset-variants, docs/method.md#ema).

    Manual optimisation: each training step runs `train_step` (loss → backward through
    Lightning → gradient clipping → AdamW → EMA), then steps the warm-up schedule. Randomness of
    a step (times, noised tokens, dropout) is seeded from (run seed, step, rank), so a resumed
    run continues exactly as an uninterrupted one would. Validation runs with the EMA weights and
    fixed noise per batch, so successive validation losses are comparable.

    Args:
        cfg: A resolved config (`d3_core.config.resolve_config`) or its plain-data form.
        dataset_name: The dataset the config describes (its name or plugin). A dataset
            package's subclass declares it as the class attribute `dataset` instead, so that
            it is built from a config alone (``DeepSTARRD3LightningModule(cfg)``).

    Raises:
        D3ConfigError: The config describes another dataset or does not fit the schema, or
            no dataset is named.
    """

    dataset: ClassVar[str | None] = None
    """The dataset a subclass is bound to; None for this generic module."""

    def __init__(
        self, cfg: DictConfig | Mapping[str, Any], dataset_name: str | DatasetPlugin | None = None
    ) -> None:
        super().__init__()
        dataset_name = dataset_name if dataset_name is not None else type(self).dataset
        if dataset_name is None:
            raise D3ConfigError(
                f"{type(self).__name__} needs the dataset its config describes: pass "
                f"dataset_name (e.g. 'deepstarr'), or build the dataset package's module"
            )
        plugin = as_plugin(dataset_name)
        cfg = config_from_plain(to_plain(cfg), plugin)
        if cfg.dataset.name != plugin.name:
            raise D3ConfigError(
                f"the config describes dataset {cfg.dataset.name!r} but the module is for "
                f"{plugin.name!r}"
            )
        self.cfg = cfg
        self.plugin = plugin
        self.dataset_name = plugin.name
        self.architecture = canonical_arch(cfg.model.architecture)
        self.versions = {"d3-core": _core_version(), plugin.distribution: plugin.version}
        self.automatic_optimization = False
        model_class = plugin.score_model_class(self.architecture)
        self.score_model = model_class(model_sizes(cfg, plugin))
        self.graph = UniformGraph(4)
        noise = {k: v for k, v in to_plain(cfg.noise).items() if k != "type"}
        self.noise = build_noise(cfg.noise.type, **noise)
        self.ema = ExponentialMovingAverage(self.score_model, cfg.training.ema_decay)
        self._ema_weights = ExitStack()

    def forward(self, tokens: torch.Tensor, labels: torch.Tensor, sigma: torch.Tensor):
        """Log-scores (B, L, 4) of the score model (current weights, not the EMA)."""
        return self.score_model(tokens, labels, sigma)

    # -- training ---------------------------------------------------------------------------

    def configure_optimizers(self) -> dict[str, Any]:
        tr = self.cfg.training
        optimizer = torch.optim.AdamW(
            self.score_model.parameters(),
            lr=tr.lr,
            betas=tuple(tr.betas),
            eps=tr.adam_eps,
            weight_decay=tr.weight_decay,
        )
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, LinearWarmup(tr.warmup_steps))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def on_fit_start(self) -> None:
        self.ema.to(self.device)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int):
        tokens, labels = batch  # (b, L) int64, (b, S) or (b, L, S)
        tr = self.cfg.training
        # Step-indexed randomness: a resumed run draws what the uninterrupted run would have.
        torch.manual_seed(step_seed(tr.seed, self.global_step, self.global_rank))
        schedule = self.lr_schedulers()
        try:
            loss = train_step(
                self.score_model,
                self.optimizers(),
                self.ema,
                tokens,
                labels,
                graph=self.graph,
                noise=self.noise,
                micro_batch=tr.micro_batch,
                grad_clip=tr.grad_clip,
                eps=tr.time_eps,
                label_dropout=tr.label_dropout,
                backward=self.manual_backward,
            )
        except TrainingDiverged as err:
            raise TrainingDiverged(
                f"training diverged at step {self.global_step}: {err}, so the step was not "
                f"taken; lower training.lr (now {schedule.get_last_lr()[0]:.3g}) or raise "
                f"training.warmup_steps, and check the data's labels for extreme values"
            ) from None
        schedule.step()
        self.log("train/loss", loss, prog_bar=True, batch_size=len(tokens))
        self.log("train/lr", schedule.get_last_lr()[0], batch_size=len(tokens))
        return loss

    # -- validation with the EMA weights ----------------------------------------------------

    def on_validation_epoch_start(self) -> None:
        self.ema.to(self.device)
        self._ema_weights.enter_context(self.ema.average_parameters(self.score_model))

    def on_validation_epoch_end(self) -> None:
        self._ema_weights.close()

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int):
        tokens, labels = batch
        generator = torch.Generator(self.device)
        generator.manual_seed(step_seed(self.cfg.training.seed, 1, batch_idx, self.global_rank))
        losses = score_entropy_loss(
            self.score_model,
            tokens,
            labels,
            graph=self.graph,
            noise=self.noise,
            eps=self.cfg.training.time_eps,
            generator=generator,
        )
        loss = losses.mean()
        self.log("val/loss", loss, prog_bar=True, sync_dist=True, batch_size=len(tokens))
        return loss

    # -- checkpoints ------------------------------------------------------------------------

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Adds the EMA (by parameter name), the config and what the run was, as plain data."""
        dataset = self.cfg.dataset
        checkpoint["ema"] = self.ema.state_dict()
        checkpoint["hyper_parameters"] = {
            "cfg": to_plain(self.cfg),
            "dataset_name": self.dataset_name,
        }
        checkpoint["d3"] = {
            "format_version": CHECKPOINT_FORMAT,
            "dataset": self.dataset_name,
            "architecture": self.architecture,
            "sequence_length": int(dataset.sequence_length),
            "label_names": list(dataset.label_names),
            "label_mode": str(dataset.label_mode),
            "precision": str(self.trainer.precision) if self._trainer else "32-true",
            "versions": {
                **self.versions,
                "torch": str(torch.__version__),
                "lightning": L.__version__,
            },
        }
        from d3_core.checkpoints.digest import add_content_digest

        add_content_digest(checkpoint)  # docs/checkpoint-formats.md#content-digest

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Checks the content digest, then restores the EMA saved by `on_save_checkpoint`."""
        from d3_core.checkpoints.digest import verify_content_digest

        if "d3" in checkpoint:
            source = getattr(self._trainer, "ckpt_path", None) or "the checkpoint being resumed"
            verify_content_digest(checkpoint, source)
        if "ema" not in checkpoint:
            raise CheckpointError(
                "the checkpoint has no 'ema' entry, so it was not written by d3's trainer; "
                "convert it first with `d3 convert`"
            )
        self.ema.load_state_dict(checkpoint["ema"])


def _core_version() -> str:
    from d3_core import __version__

    return __version__
