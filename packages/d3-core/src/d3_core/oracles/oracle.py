"""Oracles: the activity predictors that score designed sequences (SPEC §12).

A dataset package declares its oracle as an `OracleSpec` (the network, its output names, the
key prefixes of published checkpoints, the published training recipe). d3-core loads published
checkpoints strictly by name (`load_oracle`), trains an oracle on a data file with the recipe
(`train_oracle`, ``d3 oracle train``), and runs one in batches on token arrays (`Oracle`).

An oracle takes one-hot float (N, 4, L) sequences (SPEC §1) and returns (N, F) predictions.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from d3_core.errors import CheckpointError, D3ConfigError, D3InputError

__all__ = [
    "Oracle",
    "OracleRecipe",
    "OracleSpec",
    "OracleTraining",
    "Rescaled",
    "load_oracle",
    "tokens_to_input",
    "train_oracle",
]

ORACLE_FORMAT = 1
"""Version of the ``d3_oracle`` block that `train_oracle` writes into its checkpoint."""


@dataclass(frozen=True)
class OracleRecipe:
    """How an oracle is trained (MSE regression); defaults are DeepSTARR's published recipe.

    Attributes:
        lr: Adam learning rate.
        weight_decay: Adam weight decay (L2, as ``torch.optim.Adam`` applies it).
        batch_size: Sequences per step.
        plateau_factor: ReduceLROnPlateau factor on the validation loss.
        plateau_patience: Epochs without improvement before the learning rate drops.
        early_stop_patience: Epochs without improvement before training stops.
        max_epochs: Upper bound on epochs.
        seed: Seeds initialisation and batch order.
        standardise_targets: Train on targets standardised with the training split's mean and
            standard deviation (stored in the checkpoint's ``d3_oracle`` block and undone when
            `load_oracle` reads it, so predictions keep the targets' units). Helps a target
            far from zero relative to its spread, which Adam otherwise spends many steps
            reaching. The published recipes do not.
    """

    lr: float = 2e-3
    weight_decay: float = 1e-6
    batch_size: int = 128
    plateau_factor: float = 0.1
    plateau_patience: int = 10
    early_stop_patience: int = 10
    max_epochs: int = 100
    seed: int = 0
    standardise_targets: bool = False

    def __post_init__(self) -> None:
        for name in ("batch_size", "max_epochs"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise D3ConfigError(f"oracle {name} must be a positive integer; got {value!r}")
        if not self.lr > 0:
            raise D3ConfigError(f"oracle lr must be positive; got {self.lr!r}")


@dataclass(frozen=True)
class OracleSpec:
    """What a dataset package declares about its oracle.

    Attributes:
        name: What the oracle is, for reports, e.g. ``"DeepSTARR CNN (de Almeida et al. 2022)"``.
        build: ``build(**sizes) -> nn.Module`` mapping one-hot (N, 4, L) float to (N, F);
            ``build()`` gives the published network.
        output_names: One name per output, e.g. ``("Dev", "Hk")``.
        prefixes: Key prefixes of the published checkpoints' ``state_dict``, tried in order.
        recipe: The published training recipe.
        published: Published test metrics, for reports (e.g. ``{"pearson": [0.68, 0.74]}``).
        sizes_from_weights: ``f(state_dict) -> build kwargs`` for sizes a checkpoint decides
            (e.g. the output width); None when every size is fixed.
        targets: ``f(labels) -> (N, F)`` when the oracle predicts something other than the
            labels themselves (e.g. a summary of a per-position label); used to train it and
            to compare its predictions with requested labels. None: the labels are the targets.
        predict_batch: Sequences per forward pass when scoring; a large network needs fewer.
        detect: ``f(path) -> bool``, whether a file is this oracle's checkpoint; used for the
            `alternatives` of another spec.
        loader: ``f(path, spec=, device=, trusted=, names=) -> Oracle``, for checkpoints that
            need more than a strict ``state_dict`` load (e.g. an output-names file).
        alternatives: Other oracles of the dataset a user may bring (e.g. a published network
            besides the small one d3 trains); `load_oracle` uses the first whose ``detect``
            accepts the file.
    """

    name: str
    build: Callable[[], nn.Module]
    output_names: tuple[str, ...]
    prefixes: tuple[str, ...] = ("model.",)
    recipe: OracleRecipe = field(default_factory=OracleRecipe)
    published: dict[str, Any] = field(default_factory=dict)
    sizes_from_weights: Callable[[dict[str, Tensor]], dict[str, Any]] | None = None
    targets: Callable[[Tensor], Tensor] | None = None
    predict_batch: int = 512
    detect: Callable[[Path], bool] | None = None
    loader: Callable[..., Oracle] | None = None
    alternatives: tuple[OracleSpec, ...] = ()

    def targets_of(self, labels: Any) -> np.ndarray:
        """The oracle's targets for labels (N, S) or (N, L, S): `targets` applied, or the labels."""
        labels = torch.as_tensor(np.asarray(labels, dtype=np.float32))
        return (self.targets(labels) if self.targets else labels).numpy()


def tokens_to_input(tokens: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """One-hot oracle input (N, 4, L) from tokens (N, L) in 0..3."""
    states = torch.arange(4, device=tokens.device)
    return (tokens.long()[:, None, :] == states[None, :, None]).to(dtype)


class Rescaled(nn.Module):
    """``model(x) * sd + mean``: the predictions of an oracle trained on standardised targets,
    in the targets' units.

    Args:
        model: The network.
        mean: (F,) target means of the training split.
        sd: (F,) target standard deviations of the training split.
    """

    def __init__(self, model: nn.Module, mean: Sequence[float], sd: Sequence[float]) -> None:
        super().__init__()
        self.network = model
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32), False)
        self.register_buffer("sd", torch.tensor(list(sd), dtype=torch.float32), False)

    def forward(self, x: Tensor) -> Tensor:
        return self.network(x) * self.sd + self.mean


class Oracle:
    """A loaded oracle: the network in eval mode and where it came from.

    Args:
        spec: The dataset's oracle declaration.
        model: The network, weights loaded.
        source: The checkpoint it was read from (None for a fresh network).
        sha256: The checkpoint's SHA-256.
        notes: How the checkpoint was read.
        output_names: One name per output; default ``spec.output_names`` (an oracle trained by
            d3 records the names of the labels it learned).
    """

    def __init__(
        self,
        spec: OracleSpec,
        model: nn.Module,
        *,
        source: Path | None = None,
        sha256: str | None = None,
        notes: Sequence[str] = (),
        output_names: Sequence[str] | None = None,
    ) -> None:
        self.spec = spec
        self.model = model.eval()
        self.source = source
        self.sha256 = sha256
        self.notes = tuple(notes)
        self.output_names = tuple(output_names or spec.output_names)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def describe(self) -> dict[str, Any]:
        """What a report says about the oracle."""
        return {
            "name": self.spec.name,
            "outputs": list(self.output_names),
            "checkpoint": str(self.source) if self.source else None,
            "checkpoint_sha256": self.sha256,
            "notes": list(self.notes),
        }

    @torch.no_grad()
    def predict(
        self, tokens: np.ndarray | Tensor, *, batch_size: int = 256, progress: bool = False
    ) -> np.ndarray:
        """Predictions for token sequences, computed in batches.

        Args:
            tokens: (N, L) integers in 0..3.
            batch_size: Sequences per forward pass; memory grows with it, results do not change.
            progress: Show a progress bar.

        Returns:
            (N, F) float32 predictions.
        """
        tokens = torch.as_tensor(np.asarray(tokens)).long()
        if tokens.dim() != 2:
            raise D3InputError(f"oracle input must be (N, L) tokens; got {tuple(tokens.shape)}")
        if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) > 3):
            raise D3InputError("oracle input tokens must lie in 0..3 (A, C, G, T)")
        batches = range(0, len(tokens), batch_size)
        if progress and len(batches) > 4:  # a bar for a moment's work is noise
            from tqdm.auto import tqdm

            batches = tqdm(batches, desc="oracle", unit="batch", leave=False)
        out = []
        device = self.device
        for start in batches:
            x = tokens_to_input(tokens[start : start + batch_size].to(device))
            out.append(self.model(x).float().cpu())
        if not out:
            return np.zeros((0, len(self.output_names)), dtype=np.float32)
        return torch.cat(out).numpy()


# -- loading ------------------------------------------------------------------------------------


def _split_prefix(
    weights: dict[str, Tensor], expected: set[str], prefixes: Sequence[str], source: Path
) -> tuple[dict[str, Tensor], str]:
    """The weights under the prefix that matches the network best; the prefix used."""
    best, best_prefix, best_hits = {}, "", -1
    for prefix in prefixes:
        under = {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}
        hits = len(set(under) & expected)
        if hits > best_hits:
            best, best_prefix, best_hits = under, prefix, hits
    if best_hits <= 0:
        starts = sorted({k.split(".", 1)[0] + "." for k in weights})[:8]
        raise CheckpointError(
            f"{source}: no weights carry the oracle's key prefix "
            f"({' or '.join(repr(p) for p in prefixes)}); its keys start with "
            f"{', '.join(repr(s) for s in starts) or 'nothing'}"
        )
    return best, best_prefix


def load_oracle(
    path: str | os.PathLike,
    spec: OracleSpec,
    *,
    device: Any = "cpu",
    trusted: bool = False,
    names: str | os.PathLike | None = None,
) -> Oracle:
    """Loads an oracle checkpoint strictly by name.

    Accepts the published Lightning checkpoints (``state_dict`` under one of ``spec.prefixes``)
    and those `train_oracle` writes. The network is built with explicit sizes, so there is no
    lazy layer to initialise first.

    Args:
        path: The checkpoint file.
        spec: The dataset's oracle declaration.
        device: Where to put the network.
        trusted: Allow a full unpickle for files that need one.
        names: An output-names file, for oracles that read one (e.g. Sei's
            ``target.sei.names``; by default found beside the checkpoint).

    A file that one of ``spec.alternatives`` detects as its own is loaded as that oracle.

    Raises:
        CheckpointError: Unreadable file, no weights under the prefix, or missing, unexpected
            or mis-shaped keys (listed).
    """
    from d3_core.checkpoints.load import file_sha256, load_payload, weight_mismatches

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"oracle checkpoint {str(path)!r} does not exist")
    for other in spec.alternatives:
        if other.detect is not None and other.detect(path):
            return load_oracle(path, other, device=device, trusted=trusted, names=names)
    if spec.loader is not None:
        return spec.loader(path, spec=spec, device=device, trusted=trusted, names=names)
    payload = load_payload(path, trusted=trusted)
    weights = payload.get("state_dict", payload) if isinstance(payload, dict) else None
    if not isinstance(weights, dict) or not all(isinstance(v, Tensor) for v in weights.values()):
        raise CheckpointError(
            f"{path} holds no state_dict of tensors; it is not an oracle checkpoint"
        )
    model = spec.build()
    expected = model.state_dict()
    weights, prefix = _split_prefix(weights, set(expected), spec.prefixes, path)
    sizes = spec.sizes_from_weights(weights) if spec.sizes_from_weights is not None else {}
    if sizes:
        model = spec.build(**sizes)
        expected = model.state_dict()
    missing, unexpected, mismatched = weight_mismatches(expected, weights)
    if missing or unexpected or mismatched:
        raise CheckpointError(
            f"{path}: the weights do not match the {spec.name}: missing {missing or 'none'}; "
            f"unexpected {unexpected or 'none'}; shape mismatches {mismatched or 'none'}"
        )
    model.load_state_dict(weights, strict=True)
    notes = [f"weights under the prefix {prefix!r}"]
    block = payload.get("d3_oracle") if isinstance(payload, dict) else None
    names = None
    if isinstance(block, dict) and "target_mean" in block:
        mean, sd = block["target_mean"], block["target_sd"]
        model = Rescaled(model, mean, sd)
        notes.append(f"trained on standardised targets: predictions × {sd} + {mean}")
    if isinstance(block, dict):
        if "test_pearson" in block:
            notes.append(f"trained by d3; test Pearson {block['test_pearson']}")
        outputs = block.get("outputs")
        if isinstance(outputs, list) and len(outputs) == sizes.get(
            "outputs", len(spec.output_names)
        ):
            names = [str(n) for n in outputs]
    return Oracle(spec, model.to(device), source=path, sha256=file_sha256(path), notes=notes,
                  output_names=names)  # fmt: skip


# -- training -----------------------------------------------------------------------------------


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
    from d3_core.training.run import AtomicCheckpointIO

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
    from d3_core.io import atomic_path

    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    state["d3_oracle"]["test_pearson"] = test_pearson
    with atomic_path(checkpoint) as tmp:
        torch.save(state, tmp)


def recipe_with(recipe: OracleRecipe, **changes: Any) -> OracleRecipe:
    """The recipe with the non-None `changes` applied."""
    return replace(recipe, **{k: v for k, v in changes.items() if v is not None})
