"""The DeepSTARR SEDD variants: core's score models held to 249-bp sequences with labels Dev, Hk."""

from __future__ import annotations

from typing import Any

from d3_core.models import ConvScoreModel, DatasetVariant, TransformerScoreModel
from d3_deepstarr.plugin import PLUGIN

__all__ = ["DeepSTARRConvScoreModel", "DeepSTARRTransformerScoreModel", "check_config_fits"]


class DeepSTARRTransformerScoreModel(DatasetVariant, TransformerScoreModel):
    """D3-Tran for DeepSTARR (docs/models.md#dataset-variants): the DDiT transformer with a global
    two-label signal.

    The labels (B, 2) = (Dev, Hk) enter through ``vocab_embed.signal_embedding`` = Linear(2, H),
    added to every position's token embedding. At paper size (H 768, 12 blocks, 12 heads,
    C 128) it has 92,389,124 parameters. A config that is not a `TransformerConfig` of length
    249, signal_dim 2 and label_mode "global" raises D3ConfigError.
    """

    dataset_plugin = PLUGIN
    dataset_title = "DeepSTARR"


class DeepSTARRConvScoreModel(DatasetVariant, ConvScoreModel):
    """D3-Conv for DeepSTARR (docs/models.md#dataset-variants): the dilated CNN with a learned label
    channel.

    The labels (B, 2) = (Dev, Hk) are mapped by ``label_emb`` = Linear(2, 249) → SiLU →
    Linear(249, 249) to one signal value per position, the fifth input channel beside the
    one-hot sequence. At paper size (256 channels, 20 blocks, kernel 9, C 256) it has
    13,400,857 parameters. A config that is not a `ConvConfig` of length 249, signal_dim 2 and
    label_mode "global" raises D3ConfigError.
    """

    dataset_plugin = PLUGIN
    dataset_title = "DeepSTARR"


def check_config_fits(config: Any, model: type[DatasetVariant]) -> None:
    """Raises D3ConfigError unless a config describes DeepSTARR data for ``model``
    (`d3_core.models.DatasetVariant.check_config`)."""
    model.check_config(config)
