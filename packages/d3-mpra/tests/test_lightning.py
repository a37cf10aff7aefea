"""Tests of the MPRA LightningModule, the name users import."""

from d3_core.config import resolve_config
from d3_core.registry import load_dataset_plugin
from d3_core.training.module import D3LightningModule
from d3_mpra.lightning import MPRAD3LightningModule


def test_the_lightning_module_is_d3_cores_module_under_its_promised_name():
    assert issubclass(MPRAD3LightningModule, D3LightningModule)
    assert load_dataset_plugin("mpra").load("lightning_module") is MPRAD3LightningModule


def test_the_lightning_module_is_bound_to_mpra():
    module = MPRAD3LightningModule(resolve_config("mpra", "conv", preset="cpu"))
    assert module.dataset_name == "mpra"
