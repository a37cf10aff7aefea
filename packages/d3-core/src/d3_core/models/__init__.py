"""Score networks: the transformer (DDiT) and the dilated convolutional model."""

from torch import nn

from d3_core.models.base import DatasetVariant, ScoreModel
from d3_core.models.conv import ConvConfig, ConvScoreModel
from d3_core.models.transformer import TransformerConfig, TransformerScoreModel

__all__ = [
    "ConvConfig",
    "ConvScoreModel",
    "DatasetVariant",
    "ScoreModel",
    "TransformerConfig",
    "TransformerScoreModel",
    "count_parameters",
]


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements of model (buffers excluded).

    Works on models built on the ``meta`` device. Every parameter of our score models is used by
    the forward pass, so this equals the published "parameters used by the forward pass".

    Args:
        model: Any module.
        trainable_only: Count only parameters with ``requires_grad``.
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
