"""Tests of `PromoterD3LightningModule`, the name users import to train Promoter models."""

from __future__ import annotations

import pytest

from d3_core.config import resolve_config
from d3_promoter.models import PromoterConvScoreModel, PromoterTransformerScoreModel

lightning = pytest.importorskip("d3_core.training.module")


def test_the_module_is_core_s_lightning_module():
    from d3_promoter.lightning import PromoterD3LightningModule

    assert issubclass(PromoterD3LightningModule, lightning.D3LightningModule)


@pytest.mark.parametrize(
    ("arch", "cls"),
    [("conv", PromoterConvScoreModel), ("transformer", PromoterTransformerScoreModel)],
)
def test_the_module_builds_the_promoter_variant_from_a_config_alone(arch, cls):
    from d3_promoter.lightning import PromoterD3LightningModule

    module = PromoterD3LightningModule(resolve_config("promoter", arch, preset="cpu"))
    assert any(isinstance(m, cls) for m in module.modules())
    assert module.dataset_name == "promoter"
