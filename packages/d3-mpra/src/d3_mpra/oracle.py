"""The MPRA oracle (docs/oracles.md): the published dilated-residual CNN predicting three cell
lines.

Layer names are those of the published Lightning checkpoint (``state_dict`` keys under
``model.``), so it loads strictly by name; the output width is read from the checkpoint's
``fc6``. Every layer is built with its size: nothing is lazily initialised.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from d3_core.oracles import OracleRecipe, OracleSpec

__all__ = ["ORACLE", "DilatedResidual", "MPRAOracle"]


class DilatedResidual(nn.Module):
    """``ReLU(block(x) + x)`` with ``block`` = [Conv(k, same, bias), BN, then per dilation d:
    ReLU, Dropout 0.1, Conv(k, dilation d, same, no bias), BN] (keys ``block.0``, ``block.1``,
    ``block.4``, ``block.5``, …)."""

    def __init__(self, channels: int, kernel: int, dilations: tuple[int, ...]) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv1d(channels, channels, kernel, padding="same"),
            nn.BatchNorm1d(channels),
        ]
        for d in dilations:
            layers += [
                nn.ReLU(),
                nn.Dropout(0.1),
                nn.Conv1d(channels, channels, kernel, dilation=d, padding="same", bias=False),
                nn.BatchNorm1d(channels),
            ]
        self.block = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(self.block(x) + x)


def _stage(conv: nn.Conv1d, channels: int, activation: nn.Module) -> nn.Sequential:
    return nn.Sequential(conv, nn.BatchNorm1d(channels), activation, nn.Dropout(0.1))


def _residual(channels: int, dilations: tuple[int, ...], pool: int) -> nn.Sequential:
    return nn.Sequential(DilatedResidual(channels, 3, dilations), nn.MaxPool1d(pool),
                         nn.Dropout(0.2))  # fmt: skip


class MPRAOracle(nn.Module):
    """MPRA CNN: one-hot (N, 4, 200) → (N, outputs) activities; 3,143,579 parameters at 3.

    ``conv1`` Conv(4→196, 15) + BN + ELU → ``res1`` (dilations 1, 2, 4, 8; pool 4) → ``conv2``
    Conv(196→256, 5) + BN + ReLU → ``res2`` (1, 2, 4; pool 4) → ``conv3`` Conv(256→256, 3) + BN +
    ReLU → ``res3`` (1; pool 2) → flatten 1536 → ``fc4`` 512 → ``fc5`` 256 (each BN, ReLU,
    Dropout 0.5) → ``fc6``. All convolutions keep the length ("same").

    Args:
        outputs: Output width; 3 (K562, HepG2, SK-N-SH) in the published checkpoint.
        length: Sequence length; 200 (the dense input is 256 × 6 there).
    """

    def __init__(self, outputs: int = 3, length: int = 200) -> None:
        super().__init__()
        self.conv1 = _stage(nn.Conv1d(4, 196, 15, padding="same"), 196, nn.ELU())
        self.res1 = _residual(196, (1, 2, 4, 8), 4)
        self.conv2 = _stage(nn.Conv1d(196, 256, 5, padding="same"), 256, nn.ReLU())
        self.res2 = _residual(256, (1, 2, 4), 4)
        self.conv3 = _stage(nn.Conv1d(256, 256, 3, padding="same"), 256, nn.ReLU())
        self.res3 = _residual(256, (1,), 2)
        self.fc4 = nn.Linear(256 * (length // 4 // 4 // 2), 512)
        self.batchnorm4 = nn.BatchNorm1d(512)
        self.fc5 = nn.Linear(512, 256)
        self.batchnorm5 = nn.BatchNorm1d(256)
        self.fc6 = nn.Linear(256, outputs)
        self.dropout = nn.Dropout(0.5)

    def forward(self, x: Tensor) -> Tensor:
        """Predict (N, outputs) from one-hot (N, 4, L) float sequences."""
        for stage in (self.conv1, self.res1, self.conv2, self.res2, self.conv3, self.res3):
            x = stage(x)
        x = x.flatten(1)  # (N, 256 * 6), channel-major
        x = self.dropout(torch.relu(self.batchnorm4(self.fc4(x))))
        x = self.dropout(torch.relu(self.batchnorm5(self.fc5(x))))
        return self.fc6(x)


def _sizes(weights: dict[str, Tensor]) -> dict[str, int]:
    """The output width of a checkpoint: its ``fc6`` rows."""
    head = weights.get("fc6.weight")
    return {"outputs": int(head.shape[0])} if head is not None and head.dim() == 2 else {}


ORACLE = OracleSpec(
    name="MPRA CNN (docs/oracles.md)",
    build=MPRAOracle,
    output_names=("K562", "HepG2", "SK-N-SH"),
    prefixes=("model.",),
    # docs/oracles.md gives no training recipe for this oracle: DeepSTARR's, with lr 1e-3 and a
    # shorter plateau.
    recipe=OracleRecipe(lr=1e-3, plateau_patience=5),
    published={"test_pearson": {"K562": 0.836, "HepG2": 0.836, "SK-N-SH": 0.831}},
    sizes_from_weights=_sizes,
)
"""The MPRA oracle declaration the plugin points to."""
