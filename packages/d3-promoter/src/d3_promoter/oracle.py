"""The Promoter oracles: Sei, brought by the user (docs/oracles.md), and a small CNN that d3 trains.

The literature scores designed promoters with Sei's mean H3K4me3 prediction (docs/oracles.md,
docs/metrics.md#published-numbers). Sei's weights carry an academic licence and are not distributed,
so the plugin also declares a small CNN that ``d3 oracle train --dataset promoter`` fits to any
Promoter file in minutes. It predicts one number per sequence, the promoter's activity: log(1 + the
CAGE signal summed over the central 256 bp, positions 384-639, where the windows' start sites lie).
``d3 evaluate --oracle F`` loads F as Sei when its keys are Sei's and as the small CNN otherwise;
the report names which.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from d3_core.oracles.oracle import Oracle, OracleRecipe, OracleSpec
from d3_promoter.sei import SEI_PREFIXES, Sei, load_sei, pad_for_sei

__all__ = ["ACTIVITY_WINDOW", "ORACLE", "SEI", "PromoterCNN", "SeiReadout", "activity"]

ACTIVITY_WINDOW = (384, 640)
"""Positions [start, stop) whose CAGE signal makes a window's activity: the central 256 bp."""


def activity(labels: Tensor) -> Tensor:
    """The small oracle's target: log(1 + CAGE summed over `ACTIVITY_WINDOW`).

    Args:
        labels: (N, L, 1) CAGE tracks (negative values count as 0).

    Returns:
        (N, 1) float32.
    """
    start, stop = ACTIVITY_WINDOW
    window = labels[:, start:stop, 0].float().clamp_min(0)
    return torch.log1p(window.sum(dim=1, keepdim=True))


class PromoterCNN(nn.Module):
    """A small CNN: one-hot (N, 4, 1024) → (N, 1) promoter activity; 143,809 parameters.

    Three stages of [Conv1d (same), BatchNorm, ReLU, MaxPool 4] with 64 channels (kernels 15, 9,
    9) take 1024 positions to 16; flatten (1,024) → ``fc1`` 64 → ReLU → Dropout 0.2 → ``fc2``.
    Position is kept through the flatten, so where an element sits can matter.

    Args:
        outputs: Output width.
        length: Sequence length, a multiple of 64.
        channels: Filters per convolution.
    """

    def __init__(self, outputs: int = 1, length: int = 1024, channels: int = 64) -> None:
        super().__init__()
        stages = []
        for c_in, kernel in ((4, 15), (channels, 9), (channels, 9)):
            stages += [
                nn.Conv1d(c_in, channels, kernel, padding="same"),
                nn.BatchNorm1d(channels),
                nn.ReLU(),
                nn.MaxPool1d(4),
            ]
        self.features = nn.Sequential(*stages)
        self.fc1 = nn.Linear(channels * (length // 64), 64)
        self.dropout = nn.Dropout(0.2)
        self.fc2 = nn.Linear(64, outputs)

    def forward(self, x: Tensor) -> Tensor:
        """Predict (N, outputs) from one-hot (N, 4, L) float sequences."""
        x = self.features(x).flatten(1)
        return self.fc2(self.dropout(torch.relu(self.fc1(x))))


ORACLE_RECIPE = OracleRecipe(
    lr=2e-3,
    weight_decay=1e-6,
    batch_size=64,
    plateau_factor=0.1,
    plateau_patience=3,
    early_stop_patience=5,
    max_epochs=40,
    # The activity sits near 3 with a spread of 0.2 on synthetic data: standardised, the network
    # learns its variation instead of spending its first hundreds of steps on the offset.
    standardise_targets=True,
)
"""How `PromoterCNN` is trained (d3's recipe; the model is not a published one)."""


# -- Sei --------------------------------------------------------------------------------------


class SeiReadout(nn.Module):
    """Sei as an oracle: one-hot (N, 4, 1024) → (N, 1) mean H3K4me3 prediction.

    Pads each sequence to Sei's 4096 positions (0.25 flanks), runs both strands and averages,
    then takes the mean of the H3K4me3 outputs.

    Args:
        sei: The loaded Sei (`d3_promoter.sei.load_sei`).
    """

    def __init__(self, sei: Any) -> None:
        super().__init__()
        self.network = sei.model  # StrandAveraged: registers Sei's parameters with this module
        self.register_buffer(
            "readout", torch.as_tensor(sei.readout_indices, dtype=torch.long), persistent=False
        )

    def forward(self, x: Tensor) -> Tensor:
        inputs = pad_for_sei(x, self.network.model.sequence_length)
        predicted = self.network(inputs.to(self.readout.device))  # (N, outputs)
        return predicted.index_select(1, self.readout).mean(dim=1, keepdim=True)


SEI_BATCH = 8
"""Sequences per Sei forward pass: a sequence's first layers hold 4096 positions × 480 channels,
7.9 MB per activation in float32, so 8 sequences need about 63 MB per layer beside the 3.6 GB of
weights."""


def is_sei_checkpoint(path: Path) -> bool:
    """Whether a file's weights are Sei's (``state_dict`` keys ``[module.]model.lconv1.*``).

    The file is memory-mapped, so looking costs little even for the 7.1 GB published file.
    """
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # not ours to judge: the default loader reports what is wrong
        return False
    weights = payload.get("state_dict") if isinstance(payload, dict) else None
    return isinstance(weights, dict) and any(
        key.startswith(f"{prefix}lconv1.") for key in weights for prefix in SEI_PREFIXES
    )


def load_sei_oracle(
    path: Path, *, spec: OracleSpec, device: Any = "cpu", trusted: bool = False, names: Any = None
) -> Oracle:
    """Loads Sei strictly (`d3_promoter.sei.load_sei`) as a d3 `Oracle` with one output."""
    from d3_core.checkpoints.load import file_sha256

    sei = load_sei(path, names, device=device, trusted=trusted)
    described = sei.describe()
    size = described["n_parameters"] * torch.finfo(getattr(torch, described["dtype"])).bits / 8
    notes = [*sei.notes, f"readout: {described['readout']}", f"names: {described['names']}",
             f"{described['n_parameters']:,} parameters ({size / 2**30:.1f} GiB of "
             f"{described['dtype']} weights, memory-mapped); scored {SEI_BATCH} sequences at a "
             f"time"]  # fmt: skip
    return Oracle(spec, SeiReadout(sei), source=Path(path), sha256=file_sha256(path), notes=notes)


SEI = OracleSpec(
    name="Sei (Chen et al. 2022), mean H3K4me3 readout",
    build=Sei,
    output_names=("H3K4me3",),
    prefixes=SEI_PREFIXES,
    published={"readout": "mean of the 2,350 H3K4me3 outputs of target.sei.names"},
    predict_batch=SEI_BATCH,
    detect=is_sei_checkpoint,
    loader=load_sei_oracle,
)
"""Sei, loaded from ``best.sei.model.pth.tar`` with ``target.sei.names`` beside it."""

ORACLE = OracleSpec(
    name="Promoter CNN (d3; activity = log1p of the central 256 bp's CAGE)",
    build=PromoterCNN,
    output_names=("activity",),
    prefixes=("model.",),
    recipe=ORACLE_RECIPE,
    targets=activity,
    alternatives=(SEI,),
)
"""The plugin's oracle: the small CNN, or Sei when the file given is Sei's."""
