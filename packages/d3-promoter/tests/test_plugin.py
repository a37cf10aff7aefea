"""Tests that the installed d3-promoter registers a conforming, honestly-placeholder plugin."""

from d3_core.testing import DatasetPluginConformance


class TestPromoterPlugin(DatasetPluginConformance):
    name = "promoter"
    distribution = "d3-promoter"
    sequence_length = 1024
    label_names = ("CAGE",)
    label_mode = "per_position"
