"""The DeepSTARR LightningModule: d3-core's training module bound to the deepstarr dataset."""

from __future__ import annotations

from d3_core.training.module import D3LightningModule

__all__ = ["DeepSTARRD3LightningModule"]


class DeepSTARRD3LightningModule(D3LightningModule):
    """Trains and samples a DeepSTARR score model (Tran or Conv) from a resolved config alone:
    ``DeepSTARRD3LightningModule(resolve_config("deepstarr", arch))``. All the work is
    d3-core's `D3LightningModule`; this class only names the dataset."""

    dataset = "deepstarr"
