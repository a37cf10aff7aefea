"""Training an oracle on a data file with its published recipe (``d3 oracle train``)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from d3_core.checkpoints.digest import ORACLE_COVERED, add_content_digest, verify_content_digest
from d3_core.errors import D3InputError
from d3_core.oracles.model import load_oracle, tokens_to_input
from d3_core.oracles.spec import ORACLE_FORMAT, OracleRecipe, OracleSpec, recipe_with

__all__ = ["OracleTraining", "recipe_with", "train_oracle"]


@dataclass(frozen=True)
class OracleTraining:
    """What `train_oracle` did.

    Attributes:
        checkpoint: The best checkpoint (lowest validation loss).
        report: Path of ``oracle.json``.
        epochs: Epochs trained.
        val_loss: Best validation MSE.
        test_pearson: Pearson r per output on the test split, by output name.
        seconds: Wall time.
    """

    checkpoint: Path
    report: Path
    epochs: int
    val_loss: float
    test_pearson: dict[str, float]
    seconds: float


def _lightning_module(
    spec: OracleSpec,
    recipe: OracleRecipe,
    dataset: str,
    names: tuple[str, ...],
    scale: tuple[np.ndarray, np.ndarray] | None = None,
):
    import lightning as L

    class OracleModule(L.LightningModule):
        """MSE regression of the labels from one-hot sequences, as the published oracles were."""

        def __init__(self) -> None:
            super().__init__()
            self.model = spec.build()  # state_dict keys "model.*", the published layout

        def forward(self, x: Tensor) -> Tensor:
            return self.model(x)

        def _loss(self, batch: tuple[Tensor, Tensor]) -> Tensor:
            tokens, labels = batch
            prediction = self.model(tokens_to_input(tokens))
            target = (spec.targets(labels) if spec.targets else labels).float()
            if scale is not None:
                target = (target - target.new_tensor(scale[0])) / target.new_tensor(scale[1])
            return nn.functional.mse_loss(prediction.float(), target)

        def training_step(self, batch, batch_idx):
            loss = self._loss(batch)
            self.log("train/loss", loss, prog_bar=True, batch_size=len(batch[0]))
            return loss

        def validation_step(self, batch, batch_idx):
            self.log("val/loss", self._loss(batch), prog_bar=True, batch_size=len(batch[0]))

        def configure_optimizers(self):
            optimizer = torch.optim.Adam(
                self.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay
            )
            plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer, factor=recipe.plateau_factor, patience=recipe.plateau_patience
            )
            schedule = {"scheduler": plateau, "monitor": "val/loss", "interval": "epoch"}
            return {"optimizer": optimizer, "lr_scheduler": schedule}

        def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
            checkpoint["hyper_parameters"] = {"recipe": asdict(recipe), "dataset": dataset}
            checkpoint["d3_oracle"] = {
                "format_version": ORACLE_FORMAT,
                "oracle": spec.name,
                "dataset": dataset,
                "outputs": list(names),
            }
            if scale is not None:
                checkpoint["d3_oracle"]["target_mean"] = [float(v) for v in scale[0]]
                checkpoint["d3_oracle"]["target_sd"] = [float(v) for v in scale[1]]
            add_content_digest(checkpoint, block="d3_oracle", covered=ORACLE_COVERED)

    return OracleModule()


def train_oracle(
    spec: OracleSpec,
    splits: dict[str, Any],
    out: str | os.PathLike,
    *,
    dataset: str,
    output_names: Sequence[str] | None = None,
    recipe: OracleRecipe | None = None,
    progress: bool = True,
    accelerator: str = "auto",
    max_seconds: float | None = None,
) -> OracleTraining:
    """Trains an oracle with its recipe and writes ``oracle.ckpt`` and ``oracle.json`` to `out`.

    Early stopping and the learning-rate plateau watch the validation MSE; the checkpoint kept is
    the best epoch's, in the published layout (``state_dict`` keys ``model.*``), so `load_oracle`
    reads it like a published one.

    Args:
        spec: The dataset's oracle declaration.
        splits: ``{"train", "valid", "test"}`` datasets of (tokens, labels), from the dataset's
            loader.
        out: Output directory.
        dataset: Dataset name, recorded in the checkpoint.
        output_names: The names of the labels learned, recorded in the checkpoint and used as
            the keys of ``test_pearson``; default the names the data file gives them (a split's
            ``label_names``), else ``spec.output_names``.
        recipe: The recipe; default ``spec.recipe``.
        progress: Show Lightning's progress bar.
        accelerator: Lightning accelerator.
        max_seconds: Stop at the end of the first epoch that ends after this much training time
            (the demo's budget); None: the recipe's epochs and early stopping alone.
    """
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
    from torch.utils.data import DataLoader

    from d3_core.evaluation.metrics import pearson
    from d3_core.io import atomic_write
    from d3_core.training.callbacks import AtomicCheckpointIO

    recipe = recipe or spec.recipe
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    L.seed_everything(recipe.seed, verbose=False)
    from_file = None if spec.targets else getattr(splits["train"], "label_names", None)
    names = tuple(output_names or from_file or spec.output_names)
    width = spec.targets_of(splits["train"].labels[:1]).shape[-1]
    if len(names) != width:
        raise D3InputError(f"{len(names)} output names {list(names)} for targets of width {width}")
    scale = None
    if recipe.standardise_targets:
        targets = spec.targets_of(splits["train"].labels).astype(np.float64)
        scale = (targets.mean(axis=0), np.maximum(targets.std(axis=0), 1e-8))
    module = _lightning_module(spec, recipe, dataset, names, scale)
    generator = torch.Generator().manual_seed(recipe.seed)
    train_loader = DataLoader(
        splits["train"], batch_size=recipe.batch_size, shuffle=True, generator=generator
    )
    valid_loader = DataLoader(splits["valid"], batch_size=max(recipe.batch_size, 256))
    best = ModelCheckpoint(
        dirpath=out, filename="oracle", monitor="val/loss", mode="min", save_top_k=1,
        enable_version_counter=False,
    )  # fmt: skip
    stop = EarlyStopping(monitor="val/loss", mode="min", patience=recipe.early_stop_patience)
    callbacks: list[Any] = [best, stop]
    if max_seconds is not None:
        from datetime import timedelta

        from lightning.pytorch.callbacks import Timer

        # Checked at epoch ends only, so at least one epoch is validated and saved.
        callbacks.append(Timer(duration=timedelta(seconds=max_seconds), interval="epoch"))
    trainer = L.Trainer(
        max_epochs=recipe.max_epochs, accelerator=accelerator, devices=1, logger=False,
        callbacks=callbacks, plugins=[AtomicCheckpointIO()], enable_progress_bar=progress,
        enable_model_summary=False, deterministic=False,
    )  # fmt: skip
    trainer.fit(module, train_loader, valid_loader)
    checkpoint = Path(best.best_model_path)
    oracle = load_oracle(checkpoint, spec)
    test = splits["test"]
    predictions = oracle.predict(test.tokens, batch_size=spec.predict_batch)
    r = pearson(spec.targets_of(test.labels).astype(np.float64), predictions)
    test_pearson = {n: round(float(v), 4) for n, v in zip(oracle.output_names, r, strict=True)}
    _record_test_pearson(checkpoint, test_pearson)
    result = OracleTraining(
        checkpoint=checkpoint,
        report=out / "oracle.json",
        epochs=int(trainer.current_epoch),
        val_loss=float(best.best_model_score),
        test_pearson=test_pearson,
        seconds=round(time.perf_counter() - started, 1),
    )
    report = {
        "oracle": spec.name,
        "dataset": dataset,
        "checkpoint": str(checkpoint.resolve()),
        "recipe": asdict(recipe),
        "epochs": result.epochs,
        "best_val_mse": result.val_loss,
        "test_pearson": test_pearson,
        "test_sequences": len(test),
        "published": spec.published,
        "seconds": result.seconds,
    }
    with atomic_write(result.report) as file:
        json.dump(report, file, indent=2)
        file.write("\n")
    return result


def _record_test_pearson(checkpoint: Path, test_pearson: dict[str, float]) -> None:
    """Adds the test metrics to the checkpoint's ``d3_oracle`` block (rewritten atomically)."""
    from d3_core.checkpoints.safe_load import safe_load
    from d3_core.io import atomic_path, torch_save

    state = safe_load(checkpoint, what="oracle checkpoint")
    verify_content_digest(state, checkpoint, block="d3_oracle", covered=ORACLE_COVERED)
    state["d3_oracle"]["test_pearson"] = test_pearson
    add_content_digest(state, block="d3_oracle", covered=ORACLE_COVERED)
    with atomic_path(checkpoint) as tmp:
        torch_save(state, tmp, target=checkpoint)
