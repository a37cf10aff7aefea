"""Tests that the installed d3-deepstarr registers a conforming plugin that provides everything."""

from typing import ClassVar

from d3_core.testing.conformance import DatasetPluginConformance


class TestDeepSTARRPlugin(DatasetPluginConformance):
    name = "deepstarr"
    distribution = "d3-deepstarr"
    sequence_length = 249
    label_names = ("Dev", "Hk")
    label_mode = "global"
    research_label_classes = 5
    research_fourier_embed = ("transformer",)
    research_conv_label_width: ClassVar[dict[str, int | None]] = {"transformer": 2, "conv": 2}
    # docs/checkpoint-formats.md#research-checkpoints
    research_ema_lengths: ClassVar[dict[str, int]] = {"transformer": 266, "conv": 264}
    paper_parameters: ClassVar[dict[str, int]] = {"transformer": 92_389_124, "conv": 13_400_857}
    lightning_module_name = "DeepSTARRD3LightningModule"
    score_model_names: ClassVar[dict[str, str]] = {
        "transformer": "DeepSTARRTransformerScoreModel",
        "conv": "DeepSTARRConvScoreModel",
    }
