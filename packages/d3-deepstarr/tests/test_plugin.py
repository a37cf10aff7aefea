"""Tests that the installed d3-deepstarr registers a conforming plugin that provides everything."""

import subprocess
import sys
from typing import ClassVar

import pytest

from d3_core.registry import ARCHITECTURES, COMPONENTS, load_dataset_plugin
from d3_core.testing.conformance import DatasetPluginConformance
from d3_deepstarr.models import DeepSTARRConvScoreModel, DeepSTARRTransformerScoreModel


class TestDeepSTARRPlugin(DatasetPluginConformance):
    name = "deepstarr"
    distribution = "d3-deepstarr"
    sequence_length = 249
    label_names = ("Dev", "Hk")
    label_mode = "global"
    research_label_classes = 5
    research_fourier_embed = ("transformer",)
    research_conv_label_width: ClassVar[dict[str, int | None]] = {"transformer": 2, "conv": 2}
    research_ema_lengths: ClassVar[dict[str, int]] = {"transformer": 266, "conv": 264}  # SPEC §10 A
    paper_parameters: ClassVar[dict[str, int]] = {"transformer": 92_389_124, "conv": 13_400_857}


def test_the_plugin_declares_every_component():
    plugin = load_dataset_plugin("deepstarr")
    assert all(plugin.provides(component) for component in COMPONENTS)
    assert plugin.ready


@pytest.mark.parametrize("component", ["data_loader", "synthetic_data", "ground_truth"])
def test_each_declared_function_imports(component):
    assert callable(load_dataset_plugin("deepstarr").load(component))


def test_the_score_models_are_the_deepstarr_variants():
    plugin = load_dataset_plugin("deepstarr")
    assert set(plugin.score_models) == set(ARCHITECTURES)
    assert plugin.score_model_class("Tran") is DeepSTARRTransformerScoreModel
    assert plugin.score_model_class("conv") is DeepSTARRConvScoreModel


def test_loading_the_plugin_imports_neither_torch_nor_h5py():
    code = (
        "import sys; import d3_deepstarr.plugin; "
        "print(sorted(m for m in ('torch', 'h5py') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
