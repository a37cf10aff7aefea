"""How a dataset package declares its oracle: `OracleSpec` (network, outputs, checkpoint key
prefixes) and `OracleRecipe` (the published training recipe), docs/oracles.md."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from d3_core.errors import D3ConfigError

__all__ = ["ORACLE_FORMAT", "OracleRecipe", "OracleSpec", "recipe_with"]

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
    loader: Callable[..., Any] | None = None  # returns a d3_core.oracles.model.Oracle
    alternatives: tuple[OracleSpec, ...] = ()

    def targets_of(self, labels: Any) -> np.ndarray:
        """The oracle's targets for labels (N, S) or (N, L, S): `targets` applied, or the labels."""
        labels = torch.as_tensor(np.asarray(labels, dtype=np.float32))
        return (self.targets(labels) if self.targets else labels).numpy()


def recipe_with(recipe: OracleRecipe, **changes: Any) -> OracleRecipe:
    """The recipe with the non-None `changes` applied."""
    return replace(recipe, **{k: v for k, v in changes.items() if v is not None})
