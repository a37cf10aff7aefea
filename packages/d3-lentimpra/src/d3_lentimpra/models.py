"""The lentiMPRA SEDD variants: core's score models held to 230-bp sequences with one label."""

from __future__ import annotations

from typing import Any

from d3_core.models import ConvScoreModel, DatasetVariant, TransformerScoreModel
from d3_lentimpra.plugin import PLUGIN

__all__ = ["LentiMPRAConvScoreModel", "LentiMPRATransformerScoreModel", "check_config_fits"]


class LentiMPRATransformerScoreModel(DatasetVariant, TransformerScoreModel):
    """D3-Tran for lentiMPRA (docs/models.md#dataset-variants): the DDiT transformer with a
    global one-label signal.

    The label (B, 1), the cell line's activity, enters through ``vocab_embed.signal_embedding``
    = Linear(1, H), added to every position's token embedding. At paper size (H 768, 12 blocks,
    12 heads, C 128, as d3-dna's K562 and HepG2 examples) it has 92,388,356 parameters. A config
    that is not a `TransformerConfig` of length 230, signal_dim 1 and label_mode "global" raises
    D3ConfigError.
    """

    dataset_plugin = PLUGIN
    dataset_title = "lentiMPRA"


class LentiMPRAConvScoreModel(DatasetVariant, ConvScoreModel):
    """D3-Conv for lentiMPRA (docs/models.md#dataset-variants): the dilated CNN with a learned
    label channel.

    The label (B, 1) is mapped by ``label_emb`` = Linear(1, 230) → SiLU → Linear(230, 230) to one
    signal value per position, the fifth input channel beside the one-hot sequence. At paper size
    (256 channels, 20 blocks, kernel 9, C 128, as d3-dna's examples) it has 12,653,914
    parameters. A config that is not a `ConvConfig` of length 230, signal_dim 1 and label_mode
    "global" raises D3ConfigError.
    """

    dataset_plugin = PLUGIN
    dataset_title = "lentiMPRA"


def check_config_fits(config: Any, model: type[DatasetVariant]) -> None:
    """Raises D3ConfigError unless a config describes lentiMPRA data for ``model``
    (`d3_core.models.DatasetVariant.check_config`)."""
    model.check_config(config)
