"""Tests that the installed d3-mpra registers a conforming plugin that provides everything."""

from typing import ClassVar

from d3_core.testing.conformance import DatasetPluginConformance


class TestMPRAPlugin(DatasetPluginConformance):
    name = "mpra"
    distribution = "d3-mpra"
    sequence_length = 200
    label_names = ("K562", "HepG2", "SK-N-SH")
    label_mode = "global"
    research_label_classes = 4
    research_conv_label_width: ClassVar[dict[str, int | None]] = {
        "transformer": 2,
        "conv": 3,
    }  # docs/checkpoint-formats.md#research-checkpoints: 2 in MPRA-Tran files
    # docs/checkpoint-formats.md#research-checkpoints
    research_ema_lengths: ClassVar[dict[str, int]] = {"transformer": 264, "conv": 264}
    paper_parameters: ClassVar[dict[str, int]] = {"transformer": 92_389_892, "conv": 13_378_860}
    lightning_module_name = "MPRAD3LightningModule"
    score_model_names: ClassVar[dict[str, str]] = {
        "transformer": "MPRATransformerScoreModel",
        "conv": "MPRAConvScoreModel",
    }
