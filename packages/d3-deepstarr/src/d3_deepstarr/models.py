"""The DeepSTARR SEDD variants: core's score models held to 249-bp sequences with labels Dev, Hk."""

from __future__ import annotations

from typing import Any

from d3_core.models import ConvScoreModel, TransformerScoreModel
from d3_core.models.layers import check_dataset_config
from d3_deepstarr.plugin import PLUGIN

__all__ = ["DeepSTARRConvScoreModel", "DeepSTARRTransformerScoreModel", "check_config_fits"]


def check_config_fits(config: Any, model: type) -> None:
    """Checks that a score-model config describes DeepSTARR data.

    Args:
        config: The model's config dataclass (`TransformerConfig` or `ConvConfig`).
        model: The variant being built, whose ``config_class`` the config must be.

    Raises:
        D3ConfigError: The config is of another class, or its length, label width or label mode
            is not DeepSTARR's (249, 2, "global"); the message names the value and the
            expected one.
    """
    check_dataset_config(config, model, dataset="DeepSTARR", plugin=PLUGIN)


class DeepSTARRTransformerScoreModel(TransformerScoreModel):
    """D3-Tran for DeepSTARR (SPEC §8): the DDiT transformer with a global two-label signal.

    The labels (B, 2) = (Dev, Hk) enter through ``vocab_embed.signal_embedding`` = Linear(2, H),
    added to every position's token embedding. At paper size (H 768, 12 blocks, 12 heads,
    C 128) it has 92,389,124 parameters.

    Args:
        config: A `TransformerConfig` with length 249, signal_dim 2 and label_mode "global".

    Raises:
        D3ConfigError: The config does not describe DeepSTARR data.
    """

    def __init__(self, config: Any) -> None:
        check_config_fits(config, type(self))
        super().__init__(config)


class DeepSTARRConvScoreModel(ConvScoreModel):
    """D3-Conv for DeepSTARR (SPEC §8): the dilated CNN with a learned label channel.

    The labels (B, 2) = (Dev, Hk) are mapped by ``label_emb`` = Linear(2, 249) → SiLU →
    Linear(249, 249) to one signal value per position, the fifth input channel beside the
    one-hot sequence. At paper size (256 channels, 20 blocks, kernel 9, C 256) it has
    13,400,857 parameters.

    Args:
        config: A `ConvConfig` with length 249, signal_dim 2 and label_mode "global".

    Raises:
        D3ConfigError: The config does not describe DeepSTARR data.
    """

    def __init__(self, config: Any) -> None:
        check_config_fits(config, type(self))
        super().__init__(config)
