"""The MPRA LightningModule: d3-core's training module bound to the mpra dataset."""

from __future__ import annotations

from d3_core.training.module import D3LightningModule

__all__ = ["MPRAD3LightningModule"]


class MPRAD3LightningModule(D3LightningModule):
    """Trains and samples an MPRA score model (Tran or Conv) from a resolved config alone:
    ``MPRAD3LightningModule(resolve_config("mpra", arch))``. All the work is d3-core's
    `D3LightningModule`; this class only names the dataset."""

    dataset = "mpra"
