"""Tests that the installed d3-promoter registers a conforming, honestly-placeholder plugin."""

import re

import pytest

from d3_core.errors import PluginError
from d3_core.registry import load_dataset_plugin, require_ready
from d3_core.testing import DatasetPluginConformance
from d3_promoter import __version__
from d3_promoter.plugin import PLUGIN


class TestPromoterPlugin(DatasetPluginConformance):
    name = "promoter"
    distribution = "d3-promoter"
    sequence_length = 1024
    label_names = ("CAGE",)
    label_mode = "per_position"


def test_entry_point_leads_to_the_module_level_plugin():
    assert load_dataset_plugin("promoter") is PLUGIN


def test_require_ready_says_the_package_is_an_empty_placeholder():
    message = (
        f"d3-promoter {__version__} is installed but is an empty placeholder: its data loader, "
        "models and oracle arrive in a later release"
    )
    with pytest.raises(PluginError, match=f"^{re.escape(message)}$"):
        require_ready(PLUGIN)
