"""The MPRA LightningModule: d3-core's training module bound to the mpra dataset."""

from __future__ import annotations

from typing import Any

from d3_core.training.module import D3LightningModule

__all__ = ["MPRAD3LightningModule"]


class MPRAD3LightningModule(D3LightningModule):
    """Trains and samples an MPRA score model (Tran or Conv) from a resolved config.

    All the work is d3-core's; this class fixes the dataset, so that a run's config and
    checkpoints name ``mpra`` and build the MPRA score-model variants.

    Args:
        cfg: A resolved config of the mpra dataset (`d3_core.config.resolve_config("mpra", arch)`).
    """

    def __init__(self, cfg: Any) -> None:
        super().__init__(cfg, dataset_name="mpra")
