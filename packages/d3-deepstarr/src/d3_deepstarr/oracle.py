"""The DeepSTARR oracle (docs/oracles.md): the published CNN that predicts Dev and Hk enhancer
activity.

Layer names are those of the published checkpoint (a Lightning checkpoint whose ``state_dict``
keys carry the prefix ``model.``), so it loads strictly by name. Every layer is built with its
size, so nothing is lazily initialised.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from d3_core.oracles import OracleRecipe, OracleSpec

__all__ = ["ORACLE", "DeepSTARROracle"]

# (filters, input channels, kernel) of the four convolution stages.
_CONV_STAGES = ((256, 4, 7), (60, 256, 3), (60, 60, 5), (120, 60, 3))


class DeepSTARROracle(nn.Module):
    """DeepSTARR CNN: one-hot (N, 4, 249) → (N, 2) predicted (Dev, Hk); 622,226 parameters.

    Four bias-free "same" convolutions (filters stored as raw parameters ``conv<i>_filters``),
    each → BatchNorm → ReLU → MaxPool(2); then 1800 → 256 → 256 → 2 with BatchNorm, ReLU and
    Dropout 0.4 after each hidden layer.

    Args:
        length: Sequence length; 249 as published (the dense input is 120 × 15 = 1800 there).
        outputs: Number of outputs; 2 (Dev, Hk).
        dropout: Dropout after the two hidden dense layers.
    """

    def __init__(self, length: int = 249, outputs: int = 2, dropout: float = 0.4) -> None:
        super().__init__()
        for i, (filters, channels, kernel) in enumerate(_CONV_STAGES, start=1):
            self.register_parameter(
                f"conv{i}_filters", nn.Parameter(torch.empty(filters, channels, kernel))
            )
            nn.init.kaiming_uniform_(getattr(self, f"conv{i}_filters"), a=5**0.5)
        self.batchnorm1 = nn.BatchNorm1d(256)
        self.batchnorm2 = nn.BatchNorm1d(60)
        self.batchnorm3 = nn.BatchNorm1d(60)
        self.batchnorm4 = nn.BatchNorm1d(120)
        pooled = length
        for _ in _CONV_STAGES:
            pooled //= 2
        self.fc5 = nn.Linear(120 * pooled, 256)
        self.batchnorm5 = nn.BatchNorm1d(256)
        self.fc6 = nn.Linear(256, 256)
        self.batchnorm6 = nn.BatchNorm1d(256)
        self.fc7 = nn.Linear(256, outputs)
        self.dropout = dropout

    def forward(self, x: Tensor) -> Tensor:
        """Predict (N, 2) activities from one-hot (N, 4, L) float sequences."""
        for i, (_, _, kernel) in enumerate(_CONV_STAGES, start=1):
            filters = getattr(self, f"conv{i}_filters")
            x = F.conv1d(x, filters, padding=kernel // 2)
            x = F.max_pool1d(F.relu(getattr(self, f"batchnorm{i}")(x)), 2)
        x = x.flatten(1)  # (N, 120 * 15), channel-major
        x = F.dropout(F.relu(self.batchnorm5(self.fc5(x))), self.dropout, self.training)
        x = F.dropout(F.relu(self.batchnorm6(self.fc6(x))), self.dropout, self.training)
        return self.fc7(x)


ORACLE = OracleSpec(
    name="DeepSTARR CNN (docs/oracles.md)",
    build=DeepSTARROracle,
    output_names=("Dev", "Hk"),
    prefixes=("model.",),
    recipe=OracleRecipe(),  # docs/oracles.md: MSE, Adam 2e-3, wd 1e-6, batch 128, plateau 0.1/10
)
"""The DeepSTARR oracle declaration the plugin points to."""
