"""Tests of the DeepSTARR LightningModule, the name users import."""

from d3_core.config import resolve_config
from d3_core.registry import load_dataset_plugin
from d3_core.training.module import D3LightningModule
from d3_deepstarr.lightning import DeepSTARRD3LightningModule


def test_the_lightning_module_is_d3_cores_module_under_its_promised_name():
    assert issubclass(DeepSTARRD3LightningModule, D3LightningModule)
    assert load_dataset_plugin("deepstarr").load("lightning_module") is DeepSTARRD3LightningModule


def test_the_lightning_module_is_bound_to_deepstarr():
    module = DeepSTARRD3LightningModule(resolve_config("deepstarr", "conv", preset="cpu"))
    assert module.dataset_name == "deepstarr"
