"""Tests of the MPRA score-model variants: they accept only MPRA-shaped configs."""

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
from d3_mpra.models import MPRAConvScoreModel, MPRATransformerScoreModel

SMALL_TRAN = {"hidden_size": 32, "n_blocks": 1, "n_heads": 2, "cond_dim": 16}
SMALL_CONV = {"channels": 16, "n_blocks": 2, "cond_dim": 16}
VARIANTS = [
    (MPRATransformerScoreModel, TransformerConfig, SMALL_TRAN),
    (MPRAConvScoreModel, ConvConfig, SMALL_CONV),
]


def _config(config_class, sizes, **changes):
    fields = {"length": 200, "signal_dim": 3, "label_mode": "global", **sizes, **changes}
    return config_class(**fields)


@pytest.mark.parametrize(("arch", "expected"), [("transformer", 92_389_892), ("conv", 13_378_860)])
def test_the_paper_config_builds_the_research_model(arch, expected):
    plugin = load_dataset_plugin("mpra")
    cfg = resolve_config("mpra", arch, preset="paper")
    with torch.device("meta"):
        model = plugin.score_model_class(arch)(model_sizes(cfg, plugin))
    assert count_parameters(model) == expected  # SPEC §6 and §7


@pytest.mark.parametrize(("variant", "config_class", "sizes"), VARIANTS)
def test_a_variant_is_cores_model_with_cores_config_class(variant, config_class, sizes):
    assert issubclass(variant, (TransformerScoreModel, ConvScoreModel))
    assert variant.config_class is config_class
    model = variant(_config(config_class, sizes))
    tokens = torch.randint(0, 4, (3, 200))
    out = model(tokens, torch.randn(3, 3), torch.rand(3))
    assert out.shape == (3, 200, 4)


@pytest.mark.parametrize(("variant", "config_class", "sizes"), VARIANTS)
def test_a_variant_rejects_another_sequence_length(variant, config_class, sizes):
    message = (
        rf"^{variant.__name__} models MPRA data \(200-bp sequences, 3 global labels "
        r"K562, HepG2, SK-N-SH\): config length=249, expected 200$"
    )
    with pytest.raises(D3ConfigError, match=message):
        variant(_config(config_class, sizes, length=249))


@pytest.mark.parametrize(("variant", "config_class", "sizes"), VARIANTS)
def test_a_variant_rejects_another_label_width(variant, config_class, sizes):
    with pytest.raises(D3ConfigError, match=r"config signal_dim=2, expected 3$"):
        variant(_config(config_class, sizes, signal_dim=2))


def test_a_variant_rejects_per_position_labels():
    config = _config(TransformerConfig, SMALL_TRAN, label_mode="per_position")
    with pytest.raises(D3ConfigError, match=r"config label_mode='per_position', expected 'global'"):
        MPRATransformerScoreModel(config)


def test_a_variant_rejects_the_other_architectures_config():
    with pytest.raises(
        D3ConfigError,
        match=r"^MPRATransformerScoreModel takes a TransformerConfig, got ConvConfig$",
    ):
        MPRATransformerScoreModel(_config(ConvConfig, SMALL_CONV))
