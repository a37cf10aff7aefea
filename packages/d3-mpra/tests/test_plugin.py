"""Tests that the installed d3-mpra registers a conforming plugin that provides everything."""

import subprocess
import sys
from typing import ClassVar

import pytest

from d3_core.registry import ARCHITECTURES, COMPONENTS, load_dataset_plugin
from d3_core.testing.conformance import DatasetPluginConformance
from d3_mpra.models import MPRAConvScoreModel, MPRATransformerScoreModel


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
    }  # SPEC §10 A: 2 in MPRA-Tran files
    research_ema_lengths: ClassVar[dict[str, int]] = {"transformer": 264, "conv": 264}  # SPEC §10 A
    paper_parameters: ClassVar[dict[str, int]] = {"transformer": 92_389_892, "conv": 13_378_860}


def test_the_plugin_declares_every_component():
    plugin = load_dataset_plugin("mpra")
    assert all(plugin.provides(component) for component in COMPONENTS)
    assert plugin.ready


@pytest.mark.parametrize("component", ["data_loader", "synthetic_data", "ground_truth"])
def test_each_declared_function_imports(component):
    assert callable(load_dataset_plugin("mpra").load(component))


def test_the_score_models_are_the_mpra_variants():
    plugin = load_dataset_plugin("mpra")
    assert set(plugin.score_models) == set(ARCHITECTURES)
    assert plugin.score_model_class("Tran") is MPRATransformerScoreModel
    assert plugin.score_model_class("conv") is MPRAConvScoreModel


def test_loading_the_plugin_imports_neither_torch_nor_h5py():
    code = (
        "import sys; import d3_mpra.plugin; "
        "print(sorted(m for m in ('torch', 'h5py') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
