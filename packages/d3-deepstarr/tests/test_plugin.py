"""Tests that the installed d3-deepstarr registers a conforming, honestly-placeholder plugin."""

from d3_core.testing import DatasetPluginConformance


class TestDeepSTARRPlugin(DatasetPluginConformance):
    name = "deepstarr"
    distribution = "d3-deepstarr"
    sequence_length = 249
    label_names = ("Dev", "Hk")
    label_mode = "global"
