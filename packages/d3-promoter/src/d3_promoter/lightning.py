"""`PromoterD3LightningModule`: d3-core's LightningModule bound to the Promoter dataset."""

from __future__ import annotations

from d3_core.training.module import D3LightningModule

__all__ = ["PromoterD3LightningModule"]


class PromoterD3LightningModule(D3LightningModule):
    """Trains a Promoter score model (Tran or Conv, as the config's ``model.architecture`` says)
    from a resolved config alone: ``PromoterD3LightningModule(resolve_config("promoter", arch))``.

    Everything is d3-core's `D3LightningModule`; this class only names the dataset. Batches are
    (tokens (B, 1024) int64, CAGE labels (B, 1024, 1) float32).
    """

    dataset = "promoter"
