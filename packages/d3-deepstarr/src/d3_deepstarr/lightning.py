"""The DeepSTARR LightningModule: d3-core's training module bound to the deepstarr dataset."""

from __future__ import annotations

from typing import Any

from d3_core.training.module import D3LightningModule

__all__ = ["DeepSTARRD3LightningModule"]


class DeepSTARRD3LightningModule(D3LightningModule):
    """Trains and samples a DeepSTARR score model (Tran or Conv) from a resolved config.

    All the work is d3-core's; this class fixes the dataset, so that a run's config and
    checkpoints name ``deepstarr`` and build the DeepSTARR score-model variants.

    Args:
        cfg: A resolved config of the deepstarr dataset
            (`d3_core.config.resolve_config("deepstarr", arch)`).
    """

    def __init__(self, cfg: Any) -> None:
        super().__init__(cfg, dataset_name="deepstarr")
