"""The MPRA SEDD variants: core's score models held to 200-bp sequences with three labels."""

from __future__ import annotations

from typing import Any

from d3_core.models import ConvScoreModel, TransformerScoreModel
from d3_core.models.layers import check_dataset_config
from d3_mpra.plugin import PLUGIN

__all__ = ["MPRAConvScoreModel", "MPRATransformerScoreModel", "check_config_fits"]


def check_config_fits(config: Any, model: type) -> None:
    """Checks that a score-model config describes MPRA data.

    Args:
        config: The model's config dataclass (`TransformerConfig` or `ConvConfig`).
        model: The variant being built, whose ``config_class`` the config must be.

    Raises:
        D3ConfigError: The config is of another class, or its length, label width or label mode
            is not MPRA's (200, 3, "global"); the message names the value and the
            expected one.
    """
    check_dataset_config(config, model, dataset="MPRA", plugin=PLUGIN)


class MPRATransformerScoreModel(TransformerScoreModel):
    """D3-Tran for MPRA (SPEC §8): the DDiT transformer with a global three-label signal.

    The labels (B, 3), one activity per cell line, enter through
    ``vocab_embed.signal_embedding`` = Linear(3, H), added to every position's token embedding.
    At paper size (H 768, 12 blocks, 12 heads, C 128) it has 92,389,892 parameters.

    Args:
        config: A `TransformerConfig` with length 200, signal_dim 3 and label_mode "global".

    Raises:
        D3ConfigError: The config does not describe MPRA data.
    """

    def __init__(self, config: Any) -> None:
        check_config_fits(config, type(self))
        super().__init__(config)


class MPRAConvScoreModel(ConvScoreModel):
    """D3-Conv for MPRA (SPEC §8): the dilated CNN with a learned label channel.

    The labels (B, 3) are mapped by ``label_emb`` = Linear(3, 200) → SiLU → Linear(200, 200) to
    one signal value per position, the fifth input channel beside the one-hot sequence. At paper
    size (256 channels, 20 blocks, kernel 9, C 256) it has 13,378,860 parameters.

    Args:
        config: A `ConvConfig` with length 200, signal_dim 3 and label_mode "global".

    Raises:
        D3ConfigError: The config does not describe MPRA data.
    """

    def __init__(self, config: Any) -> None:
        check_config_fits(config, type(self))
        super().__init__(config)
