"""The MPRA SEDD variants: core's score models held to 200-bp sequences with three labels."""

from __future__ import annotations

from typing import Any

from d3_core.models import ConvScoreModel, DatasetVariant, TransformerScoreModel
from d3_mpra.plugin import PLUGIN

__all__ = ["MPRAConvScoreModel", "MPRATransformerScoreModel", "check_config_fits"]


class MPRATransformerScoreModel(DatasetVariant, TransformerScoreModel):
    """D3-Tran for MPRA (docs/models.md#dataset-variants): the DDiT transformer with a global
    three-label signal.

    The labels (B, 3), one activity per cell line, enter through
    ``vocab_embed.signal_embedding`` = Linear(3, H), added to every position's token embedding.
    At paper size (H 768, 12 blocks, 12 heads, C 128) it has 92,389,892 parameters. A config
    that is not a `TransformerConfig` of length 200, signal_dim 3 and label_mode "global"
    raises D3ConfigError.
    """

    dataset_plugin = PLUGIN
    dataset_title = "MPRA"


class MPRAConvScoreModel(DatasetVariant, ConvScoreModel):
    """D3-Conv for MPRA (docs/models.md#dataset-variants): the dilated CNN with a learned label
    channel.

    The labels (B, 3) are mapped by ``label_emb`` = Linear(3, 200) → SiLU → Linear(200, 200) to
    one signal value per position, the fifth input channel beside the one-hot sequence. At paper
    size (256 channels, 20 blocks, kernel 9, C 256) it has 13,378,860 parameters. A config that
    is not a `ConvConfig` of length 200, signal_dim 3 and label_mode "global" raises
    D3ConfigError.
    """

    dataset_plugin = PLUGIN
    dataset_title = "MPRA"


def check_config_fits(config: Any, model: type[DatasetVariant]) -> None:
    """Raises D3ConfigError unless a config describes MPRA data for ``model``
    (`d3_core.models.DatasetVariant.check_config`)."""
    model.check_config(config)
