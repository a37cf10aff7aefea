"""Tests that the installed d3-mpra registers a conforming, honestly-placeholder plugin."""

import re

import pytest

from d3_core.errors import PluginError
from d3_core.registry import load_dataset_plugin, require_ready
from d3_core.testing import DatasetPluginConformance
from d3_mpra import __version__
from d3_mpra.plugin import PLUGIN


class TestMPRAPlugin(DatasetPluginConformance):
    name = "mpra"
    distribution = "d3-mpra"
    sequence_length = 200
    label_names = ("K562", "HepG2", "SK-N-SH")
    label_mode = "global"


def test_entry_point_leads_to_the_module_level_plugin():
    assert load_dataset_plugin("mpra") is PLUGIN


def test_require_ready_says_the_package_is_an_empty_placeholder():
    message = (
        f"d3-mpra {__version__} is installed but is an empty placeholder: its data loader, "
        "models and oracle arrive in a later release"
    )
    with pytest.raises(PluginError, match=f"^{re.escape(message)}$"):
        require_ready(PLUGIN)
