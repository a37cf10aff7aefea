"""Tests of the Promoter score-model variants: config checks and the paper sizes."""

from __future__ import annotations

import re

import pytest
import torch

from d3_core.config import model_sizes, resolve_config
from d3_core.errors import D3ConfigError
from d3_core.models import ConvScoreModel, TransformerScoreModel, count_parameters
from d3_core.registry import load_dataset_plugin
from d3_promoter.models import PromoterConvScoreModel, PromoterTransformerScoreModel

VARIANTS = [
    pytest.param(PromoterTransformerScoreModel, TransformerScoreModel, id="transformer"),
    pytest.param(PromoterConvScoreModel, ConvScoreModel, id="conv"),
]
SMALL = {
    PromoterTransformerScoreModel: {"hidden_size": 32, "n_blocks": 1, "n_heads": 2, "cond_dim": 16},
    PromoterConvScoreModel: {"channels": 8, "n_blocks": 2, "cond_dim": 16},
}


def _config(cls, **changes):
    fields = {"length": 1024, "signal_dim": 1, "label_mode": "per_position", **SMALL[cls]}
    return cls.config_class(**{**fields, **changes})


@pytest.mark.parametrize(("cls", "base"), VARIANTS)
def test_a_variant_is_the_core_model_with_its_config_class(cls, base):
    assert issubclass(cls, base)
    assert cls.config_class is base.config_class


@pytest.mark.parametrize(("cls", "base"), VARIANTS)
def test_a_small_variant_maps_tokens_and_a_cage_track_to_log_scores(cls, base):
    torch.manual_seed(0)
    model = cls(_config(cls)).eval()
    tokens = torch.randint(0, 4, (2, 1024))
    out = model(tokens, torch.rand(2, 1024, 1), torch.tensor([0.5, 2.0]))
    assert out.shape == (2, 1024, 4) and out.dtype == torch.float32
    assert (out.gather(-1, tokens[..., None]) == 0).all()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"length": 249},
            "needs length=1024 (every Promoter sequence is 1024 bp); got length=249",
        ),
        (
            {"signal_dim": 2, "label_mode": "global"},
            "needs signal_dim=1 (one label channel, the CAGE signal); got signal_dim=2",
        ),
        (
            {"label_mode": "global"},
            "needs label_mode='per_position' (the CAGE label is a (L, 1) track per sequence); "
            "got label_mode='global'",
        ),
    ],
)
@pytest.mark.parametrize(("cls", "base"), VARIANTS)
def test_a_config_for_other_data_is_rejected_naming_the_value(cls, base, changes, message):
    with pytest.raises(D3ConfigError, match=f"^{cls.__name__} {re.escape(message)}"):
        cls(_config(cls, **changes))


def test_the_transformer_also_rejects_two_per_position_channels():
    cls = PromoterTransformerScoreModel
    with pytest.raises(D3ConfigError, match=r"got signal_dim=2\. Use the Promoter configs"):
        cls(_config(cls, signal_dim=2))


@pytest.mark.parametrize(
    ("arch", "cls", "parameters"),
    [
        # docs/models.md#transformer (S = 1) and #convolutional (Promoter)
        ("transformer", PromoterTransformerScoreModel, 92_388_356),
        ("conv", PromoterConvScoreModel, 13_337_860),
    ],
)
def test_the_paper_preset_builds_the_spec_parameter_count(arch, cls, parameters):
    plugin = load_dataset_plugin("promoter")
    cfg = resolve_config("promoter", arch, preset="paper")
    assert plugin.score_model_class(arch) is cls
    with torch.device("meta"):
        model = cls(model_sizes(cfg, plugin))
    assert count_parameters(model) == parameters
