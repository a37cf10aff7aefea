"""Tests that the installed d3-promoter registers a conforming plugin whose components import."""

import subprocess
import sys
from typing import ClassVar

from d3_core.registry import load_dataset_plugin
from d3_core.testing.conformance import DatasetPluginConformance


class TestPromoterPlugin(DatasetPluginConformance):
    name = "promoter"
    distribution = "d3-promoter"
    sequence_length = 1024
    label_names = ("CAGE",)
    label_mode = "per_position"
    research_label_classes = 5
    research_conv_label_width: ClassVar[dict[str, int | None]] = {"transformer": None, "conv": None}
    research_ema_lengths: ClassVar[dict[str, int]] = {"transformer": 260, "conv": 260}  # SPEC §10 A
    paper_parameters: ClassVar[dict[str, int]] = {"transformer": 92_388_356, "conv": 13_337_860}
    paper_step_batch = 1  # 1024 bp: one sequence keeps the transformer's step within a few GB


def test_listing_the_plugin_imports_neither_torch_nor_its_components():
    code = (
        "import sys, d3_promoter.plugin; "
        "loaded = [m for m in ('torch', 'd3_promoter.models', 'd3_promoter.data') "
        "if m in sys.modules]; print(loaded)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_every_component_imports_to_the_promised_object():
    from d3_promoter import data, lightning, models, synthetic

    plugin = load_dataset_plugin("promoter")
    assert plugin.load("lightning_module") is lightning.PromoterD3LightningModule
    assert plugin.load("data_loader") is data.load_data
    assert plugin.load("synthetic_data") is synthetic.write_synthetic
    assert plugin.load("ground_truth") is synthetic.ground_truth
    assert plugin.score_model_class("Tran") is models.PromoterTransformerScoreModel
    assert plugin.score_model_class("Conv") is models.PromoterConvScoreModel
