"""Tests that the installed d3-promoter registers a conforming plugin that provides everything."""

from typing import ClassVar

from d3_core.testing.conformance import DatasetPluginConformance


class TestPromoterPlugin(DatasetPluginConformance):
    name = "promoter"
    distribution = "d3-promoter"
    sequence_length = 1024
    label_names = ("CAGE",)
    label_mode = "per_position"
    research_label_classes = 5
    research_conv_label_width: ClassVar[dict[str, int | None]] = {"transformer": None, "conv": None}
    # docs/checkpoint-formats.md#research-checkpoints
    research_ema_lengths: ClassVar[dict[str, int]] = {"transformer": 260, "conv": 260}
    paper_parameters: ClassVar[dict[str, int]] = {"transformer": 92_388_356, "conv": 13_337_860}
    paper_step_batch = 1  # 1024 bp: one sequence keeps the transformer's step within a few GB
    lightning_module_name = "PromoterD3LightningModule"
    score_model_names: ClassVar[dict[str, str]] = {
        "transformer": "PromoterTransformerScoreModel",
        "conv": "PromoterConvScoreModel",
    }
