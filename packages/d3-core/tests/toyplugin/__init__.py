"""A toy dataset plugin for d3-core's tests: 32 bp, one global label = copies of a motif.

File format: an NPZ with ``<split>_tokens`` (N, 32) uint8 and ``<split>_labels`` (N, 1)
float32 for the splits train, valid and test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from d3_core.data.loader import TokenDataset
from d3_core.data.synthetic import Motif, count_motifs, plant_motifs
from d3_core.errors import D3InputError
from d3_core.io import atomic_path
from d3_core.models import ConvScoreModel, TransformerScoreModel
from d3_core.oracles import OracleRecipe, OracleSpec
from d3_core.registry import DatasetPlugin
from d3_core.training.module import D3LightningModule

LENGTH = 32
MOTIF = Motif("toy", "ACGTAC")
SIZES = {"tiny": (256, 64, 64), "small": (2048, 256, 256)}


class ToyD3LightningModule(D3LightningModule):
    """The toy dataset's module."""

    def __init__(self, cfg) -> None:
        super().__init__(cfg, dataset_name="toy")


def ground_truth(tokens) -> np.ndarray:
    """Copies of the motif in each sequence, (N, 1) float32."""
    return count_motifs(np.asarray(tokens), (MOTIF,)).astype(np.float32)


def write_synthetic(path, *, seed: int = 0, size: str = "tiny") -> Path:
    """Writes the toy NPZ with 0-2 planted motif copies per sequence."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in zip(("train", "valid", "test"), SIZES[size], strict=True):
        # A/T-rich background (GC 0.2): learnable marginals, so the loss has room to fall.
        tokens, _ = plant_motifs(rng, n, LENGTH, (MOTIF,), max_copies=2, gc=0.2)
        arrays[f"{split}_tokens"] = tokens
        arrays[f"{split}_labels"] = ground_truth(tokens) + rng.normal(0, 0.05, (n, 1)).astype(
            np.float32
        )
    with atomic_path(path) as tmp, open(tmp, "wb") as out:
        np.savez(out, **arrays)
    return Path(path)


def load_data(path) -> dict[str, TokenDataset]:
    """Reads the toy NPZ."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {
                split: TokenDataset(
                    data[f"{split}_tokens"], data[f"{split}_labels"], source=f"{path}:{split}"
                )
                for split in ("train", "valid", "test")
            }
    except (OSError, KeyError, ValueError) as err:
        raise D3InputError(f"{path}: not a toy data file ({err})") from None


class ToyOracle(nn.Module):
    """A tiny CNN predicting the toy label: conv -> ReLU -> mean over positions -> linear."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(4, 16, 6)
        self.head = nn.Linear(16, 1)

    def forward(self, x):
        return self.head(torch.relu(self.conv(x)).mean(dim=2) * 27)


ORACLE = OracleSpec(
    name="toy CNN",
    build=ToyOracle,
    output_names=("copies",),
    prefixes=("model.", "module.model."),
    recipe=OracleRecipe(lr=1e-2, batch_size=64, max_epochs=8, early_stop_patience=3),
)


PLUGIN = DatasetPlugin(
    data_suffix=".npz",
    name="toy",
    distribution="d3-toy",
    sequence_length=LENGTH,
    label_names=("copies",),
    label_mode="global",
    version="0.0.1",
    description="Toy sequences whose label counts a planted motif.",
    lightning_module=ToyD3LightningModule,
    score_models={"transformer": TransformerScoreModel, "conv": ConvScoreModel},
    configs="toyplugin.configs",
    data_loader=load_data,
    synthetic_data=write_synthetic,
    ground_truth=ground_truth,
    oracle=ORACLE,
)
