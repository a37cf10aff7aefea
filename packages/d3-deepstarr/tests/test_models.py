"""Tests of the DeepSTARR score-model variants: they accept only DeepSTARR-shaped configs."""

from __future__ import annotations

import pytest
import torch

from d3_core.config import model_sizes, resolve_config
from d3_core.errors import D3ConfigError
from d3_core.models import (
    ConvConfig,
    ConvScoreModel,
    TransformerConfig,
    TransformerScoreModel,
    count_parameters,
)
from d3_core.registry import load_dataset_plugin
from d3_deepstarr.models import DeepSTARRConvScoreModel, DeepSTARRTransformerScoreModel

SMALL_TRAN = {"hidden_size": 32, "n_blocks": 1, "n_heads": 2, "cond_dim": 16}
SMALL_CONV = {"channels": 16, "n_blocks": 2, "cond_dim": 16}
VARIANTS = [
    (DeepSTARRTransformerScoreModel, TransformerConfig, SMALL_TRAN),
    (DeepSTARRConvScoreModel, ConvConfig, SMALL_CONV),
]


def _config(config_class, sizes, **changes):
    fields = {"length": 249, "signal_dim": 2, "label_mode": "global", **sizes, **changes}
    return config_class(**fields)


@pytest.mark.parametrize(("arch", "expected"), [("transformer", 92_389_124), ("conv", 13_400_857)])
def test_the_paper_config_builds_the_research_model(arch, expected):
    plugin = load_dataset_plugin("deepstarr")
    cfg = resolve_config("deepstarr", arch, preset="paper")
    with torch.device("meta"):
        model = plugin.score_model_class(arch)(model_sizes(cfg, plugin))
    assert count_parameters(model) == expected  # SPEC §6 and §7


@pytest.mark.parametrize(("variant", "config_class", "sizes"), VARIANTS)
def test_a_variant_is_cores_model_with_cores_config_class(variant, config_class, sizes):
    assert issubclass(variant, (TransformerScoreModel, ConvScoreModel))
    assert variant.config_class is config_class
    model = variant(_config(config_class, sizes))
    tokens = torch.randint(0, 4, (3, 249))
    out = model(tokens, torch.randn(3, 2), torch.rand(3))
    assert out.shape == (3, 249, 4)


@pytest.mark.parametrize(("variant", "config_class", "sizes"), VARIANTS)
def test_a_variant_rejects_another_sequence_length(variant, config_class, sizes):
    message = (
        rf"^{variant.__name__} models DeepSTARR data \(249-bp sequences, 2 global labels "
        r"Dev, Hk\): config length=200, expected 249$"
    )
    with pytest.raises(D3ConfigError, match=message):
        variant(_config(config_class, sizes, length=200))


@pytest.mark.parametrize(("variant", "config_class", "sizes"), VARIANTS)
def test_a_variant_rejects_another_label_width(variant, config_class, sizes):
    with pytest.raises(D3ConfigError, match=r"config signal_dim=3, expected 2$"):
        variant(_config(config_class, sizes, signal_dim=3))


def test_a_variant_rejects_per_position_labels():
    config = _config(TransformerConfig, SMALL_TRAN, label_mode="per_position")
    with pytest.raises(D3ConfigError, match=r"config label_mode='per_position', expected 'global'"):
        DeepSTARRTransformerScoreModel(config)


def test_a_variant_rejects_the_other_architectures_config():
    with pytest.raises(
        D3ConfigError, match=r"^DeepSTARRConvScoreModel takes a ConvConfig, got TransformerConfig$"
    ):
        DeepSTARRConvScoreModel(_config(TransformerConfig, SMALL_TRAN))
