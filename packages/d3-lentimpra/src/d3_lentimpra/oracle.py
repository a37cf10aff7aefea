"""The lentiMPRA oracle (docs/oracles.md#lentimpra-oracle-legnet): LegNet, one activity per
230-bp sequence, loaded strictly by name from the published ``Oracle_MPRA_K562.ckpt`` /
``Oracle_MPRA_HepG2.ckpt``.

Module and layer names follow the published Lightning checkpoint (``state_dict`` keys under
``model.``). Every width, kernel and the output count are read from the checkpoint's weights, so
a smaller or larger LegNet loads as strictly as the published one; only the pooling (2 after
each block) cannot be read from weights and is the published one.

The one output is named after the cell line: a file d3 trained records its label's name; a
published file is named by its file name (``Oracle_MPRA_HepG2.ckpt`` predicts HepG2), and any
other file gets the plugin's default, K562.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from d3_core.errors import CheckpointError
from d3_core.oracles import OracleRecipe, OracleSpec, load_oracle
from d3_lentimpra.plugin import CELLS, PLUGIN

__all__ = ["ORACLE", "LegNetOracle", "legnet_sizes", "load_legnet"]

PUBLISHED_BLOCKS = (80, 96, 112, 128)
"""Output channels of the published network's four blocks."""


class SqueezeExcite(nn.Module):
    """Scales each channel by a gate computed from the channel means (keys ``fc.0``, ``fc.2``)."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.fc = nn.Sequential(
            nn.Linear(channels, hidden), nn.SiLU(), nn.Linear(hidden, channels), nn.Sigmoid()
        )

    def forward(self, x: Tensor) -> Tensor:
        gate = self.fc(x.mean(dim=-1))  # (N, C)
        return x * gate.unsqueeze(-1)


class ConvBlock(nn.Module):
    """``block`` = [Conv(k, same, no bias), BN, SiLU]."""

    def __init__(self, c_in: int, c_out: int, kernel: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv1d(c_in, c_out, kernel, padding="same", bias=False),
            nn.BatchNorm1d(c_out),
            nn.SiLU(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.block(x)


class InvertedBottleneck(nn.Module):
    """``block`` = expand 1×1 → BN → SiLU → depthwise k → BN → SiLU → squeeze-excite → project
    1×1 → BN → SiLU; the channel count is kept (keys ``block.{0, 1, 3, 4, 6, 7, 8}``)."""

    def __init__(self, channels: int, kernel: int, expansion: int) -> None:
        super().__init__()
        inner = channels * expansion
        self.block = nn.Sequential(
            nn.Conv1d(channels, inner, 1, bias=False),
            nn.BatchNorm1d(inner),
            nn.SiLU(),
            nn.Conv1d(inner, inner, kernel, groups=inner, padding="same", bias=False),
            nn.BatchNorm1d(inner),
            nn.SiLU(),
            SqueezeExcite(inner, inner // expansion),
            nn.Conv1d(inner, channels, 1, bias=False),
            nn.BatchNorm1d(channels),
            nn.SiLU(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.block(x)


class ConcatSkip(nn.Module):
    """``cat([fn(x), x])`` along channels: the skip doubles the width."""

    def __init__(self, fn: nn.Module) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.fn(x), x], dim=1)


class Mapper(nn.Module):
    """``block`` = [BN, Conv 1×1 with bias], doubling the channels."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.block = nn.Sequential(nn.BatchNorm1d(channels), nn.Conv1d(channels, 2 * channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.block(x)


class LegNetOracle(nn.Module):
    """LegNet: one-hot (N, 4, L) → (N, outputs) activities; 1,322,465 parameters as published.

    ``stem`` Conv(4→64, 11) + BN + SiLU; ``main.i`` for each block width c_i = [``0``:
    ConcatSkip(InvertedBottleneck(c_{i-1}, k 9, ×4)), ``1``: ConvBlock(2·c_{i-1} → c_i, 9),
    MaxPool 2]; ``mapper`` BN + Conv 1×1 (c → 2c); mean over positions; ``head`` = [Linear(2c,
    2c), BN, SiLU, Linear(2c, outputs)]. The mean makes it accept any length; 230 bp as
    published (14 positions reach the mapper).

    Args:
        outputs: Output width; 1 in the published checkpoints.
        stem_channels: Stem filters (64).
        stem_kernel: Stem kernel (11).
        kernel: Kernel of the depthwise and block convolutions (9).
        block_channels: Output channels of each block (80, 96, 112, 128).
        expansion: Inner width factor of the bottleneck, also its squeeze-excite reduction (4).
        reverse_channel: The network was trained with a fifth, reverse-complement indicator
            input channel; it is fed zeros (the forward strand), as at evaluation.
    """

    def __init__(
        self,
        outputs: int = 1,
        stem_channels: int = 64,
        stem_kernel: int = 11,
        kernel: int = 9,
        block_channels: tuple[int, ...] = PUBLISHED_BLOCKS,
        expansion: int = 4,
        reverse_channel: bool = False,
    ) -> None:
        super().__init__()
        self.reverse_channel = reverse_channel
        self.stem = ConvBlock(4 + int(reverse_channel), stem_channels, stem_kernel)
        blocks, width = [], stem_channels
        for out in block_channels:
            blocks.append(nn.Sequential(
                ConcatSkip(InvertedBottleneck(width, kernel, expansion)),
                ConvBlock(2 * width, out, kernel),
                nn.MaxPool1d(2),
            ))  # fmt: skip
            width = out
        self.main = nn.Sequential(*blocks)
        self.mapper = Mapper(width)
        self.head = nn.Sequential(
            nn.Linear(2 * width, 2 * width),
            nn.BatchNorm1d(2 * width),
            nn.SiLU(),
            nn.Linear(2 * width, outputs),
        )

    def forward(self, x: Tensor) -> Tensor:
        """Predict (N, outputs) from one-hot (N, 4, L) float sequences."""
        if self.reverse_channel:
            x = torch.cat([x, x.new_zeros(len(x), 1, x.shape[-1])], dim=1)  # (N, 5, L)
        x = self.mapper(self.main(self.stem(x)))  # (N, 2c, L / 2^blocks)
        return self.head(x.mean(dim=-1))  # (N, outputs)


def _dim(weights: dict[str, Tensor], key: str, axis: int) -> int | None:
    """``weights[key].shape[axis]``, or None when the key is absent or too small."""
    value = weights.get(key)
    return int(value.shape[axis]) if value is not None and value.dim() > axis else None


def legnet_sizes(weights: dict[str, Tensor]) -> dict[str, object]:
    """The `LegNetOracle` sizes a checkpoint's weights decide (any not readable keep the
    published value, so the strict comparison then names the key at fault).

    Args:
        weights: The state dict, prefix stripped.

    Returns:
        Keyword arguments of `LegNetOracle`.

    Raises:
        CheckpointError: The stem takes neither 4 nor 5 input channels.
    """
    sizes: dict[str, object] = {}
    for name, key, axis in (("stem_channels", "stem.block.0.weight", 0),
                            ("stem_kernel", "stem.block.0.weight", 2),
                            ("kernel", "main.0.1.block.0.weight", 2),
                            ("outputs", "head.3.weight", 0)):  # fmt: skip
        found = _dim(weights, key, axis)
        if found is not None:
            sizes[name] = found
    in_channels = _dim(weights, "stem.block.0.weight", 1)
    if in_channels not in (None, 4, 5):
        raise CheckpointError(
            f"the LegNet checkpoint's stem takes {in_channels} input channels (stem.block.0."
            f"weight); only 4 (one-hot) or 5 (one-hot and a reverse-strand flag) are supported"
        )
    sizes["reverse_channel"] = in_channels == 5
    inner = _dim(weights, "main.0.0.fn.block.0.weight", 0)
    stem = sizes.get("stem_channels", 64)
    if inner is not None and inner % stem == 0:
        sizes["expansion"] = inner // stem
    count = len({k.split(".")[1] for k in weights if k.startswith("main.") and k.count(".") > 1})
    if count:
        sizes["block_channels"] = tuple(
            _dim(weights, f"main.{i}.1.block.0.weight", 0)
            or (PUBLISHED_BLOCKS[i] if i < len(PUBLISHED_BLOCKS) else PUBLISHED_BLOCKS[-1])
            for i in range(count)
        )
    return sizes


def _published_cell(path: Path) -> str | None:
    """The cell of a published file's name, ``Oracle_MPRA_<cell>.ckpt``; None for other names."""
    found = re.fullmatch(r"oracle_mpra_(\w+)\.ckpt", path.name.lower())
    return next((c for c in CELLS if found and c.lower() == found.group(1)), None)


def load_legnet(path: Path, *, spec: OracleSpec, device: Any, trusted: bool, names: Any) -> Any:
    """`d3_core.oracles.load_oracle` for LegNet (strict, by name), the output named after the
    cell of a published file's name.

    Returns:
        The loaded `d3_core.oracles.model.Oracle`.
    """
    oracle = load_oracle(path, replace(spec, loader=None), device=device, trusted=trusted,
                         names=names)  # fmt: skip
    cell = _published_cell(Path(path))
    if cell is not None and oracle.output_names == spec.output_names:
        oracle.output_names = (cell,)
        oracle.notes = (*oracle.notes, f"the output is {cell}, from the published file's name")
    return oracle


ORACLE = OracleSpec(
    name="LegNet (docs/oracles.md#lentimpra-oracle-legnet)",
    build=LegNetOracle,
    output_names=PLUGIN.label_names,
    prefixes=("model.",),
    # LegNet's own recipe (AdamW, one-cycle lr 0.01, weight decay 0.1, shift and reverse
    # augmentation) is not the trainer's; d3's choice, docs/oracles.md#lentimpra-oracle-legnet.
    recipe=OracleRecipe(
        lr=2e-3,
        weight_decay=1e-6,
        batch_size=128,
        plateau_patience=3,
        early_stop_patience=5,
        max_epochs=40,
        standardise_targets=True,
    ),
    sizes_from_weights=legnet_sizes,
    loader=load_legnet,
)
"""The lentiMPRA oracle declaration the plugin points to."""
