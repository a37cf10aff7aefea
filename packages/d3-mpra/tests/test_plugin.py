"""Tests that the installed d3-mpra registers a conforming, honestly-placeholder plugin."""

from d3_core.testing import DatasetPluginConformance


class TestMPRAPlugin(DatasetPluginConformance):
    name = "mpra"
    distribution = "d3-mpra"
    sequence_length = 200
    label_names = ("K562", "HepG2", "SK-N-SH")
    label_mode = "global"
