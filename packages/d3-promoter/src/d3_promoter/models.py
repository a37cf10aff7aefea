"""The Promoter variants of d3-core's score models: a per-position CAGE track as the label."""

from __future__ import annotations

from typing import Any

from d3_core.errors import D3ConfigError
from d3_core.models import ConvConfig, ConvScoreModel, TransformerConfig, TransformerScoreModel
from d3_promoter.plugin import PLUGIN

__all__ = ["PromoterConvScoreModel", "PromoterTransformerScoreModel", "check_promoter_config"]


def check_promoter_config(config: Any, model: str) -> None:
    """Checks that a score-model config describes Promoter data.

    Args:
        config: A `TransformerConfig` or `ConvConfig`.
        model: The model's name for the message, e.g. ``"PromoterConvScoreModel"``.

    Raises:
        D3ConfigError: ``length`` is not 1024, ``signal_dim`` not 1 or ``label_mode`` not
            ``"per_position"``; the message names the field, the value and the expected one.
    """
    expected = {
        "length": (PLUGIN.sequence_length, "every Promoter sequence is 1024 bp"),
        "signal_dim": (PLUGIN.label_width, "one label channel, the CAGE signal"),
        "label_mode": (PLUGIN.label_mode, "the CAGE label is a (L, 1) track per sequence"),
    }
    for name, (value, reason) in expected.items():
        got = getattr(config, name)
        if got != value:
            raise D3ConfigError(
                f"{model} needs {name}={value!r} ({reason}); got {name}={got!r}. Use the "
                f"Promoter configs (`d3_core.config.resolve_config('promoter', ...)`)"
            )


class PromoterTransformerScoreModel(TransformerScoreModel):
    """D3-Tran for Promoter (docs/models.md#transformer, docs/models.md#dataset-variants): the CAGE
    track is embedded position by position.

    The label (B, 1024, 1) goes through ``vocab_embed.signal_embedding`` = Linear(1, H) at every
    position and is added to the token embedding there, rather than a global (B, S) label
    broadcast over positions as for DeepSTARR and MPRA. At paper size (H 768, 12 blocks, 12 heads,
    C 128) it has 92,388,356 parameters. Call as ``model(tokens (B, 1024) int64, labels
    (B, 1024, 1) float, sigma (B,))`` → log-scores (B, 1024, 4) float32.

    Args:
        config: Transformer sizes with ``length=1024``, ``signal_dim=1`` and
            ``label_mode="per_position"``.

    Raises:
        D3ConfigError: The config describes other data.
    """

    def __init__(self, config: TransformerConfig) -> None:
        check_promoter_config(config, type(self).__name__)
        super().__init__(config)


class PromoterConvScoreModel(ConvScoreModel):
    """D3-Conv for Promoter (docs/models.md#convolutional, docs/models.md#dataset-variants): the
    CAGE track is the input's fifth channel itself.

    The input is one-hot A, C, G, T (channels 0–3) with the label (B, 1024, 1) as channel 4, with
    no ``label_emb`` (DeepSTARR and MPRA map their global labels through one to make that
    channel). At paper size (256 channels, 20 blocks, kernel 9, C 256) it has 13,337,860
    parameters. Call as ``model(tokens (B, 1024) int64, labels (B, 1024, 1) float, sigma (B,))``
    → log-scores (B, 1024, 4) float32.

    Args:
        config: Conv sizes with ``length=1024``, ``signal_dim=1`` and
            ``label_mode="per_position"``.

    Raises:
        D3ConfigError: The config describes other data.
    """

    def __init__(self, config: ConvConfig) -> None:
        check_promoter_config(config, type(self).__name__)
        super().__init__(config)
