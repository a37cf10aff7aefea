"""`PromoterD3LightningModule`: d3-core's LightningModule bound to the Promoter dataset."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig

from d3_core.training.module import D3LightningModule

__all__ = ["PromoterD3LightningModule"]


class PromoterD3LightningModule(D3LightningModule):
    """Trains a Promoter score model (Tran or Conv, as the config's ``model.architecture`` says).

    Everything is d3-core's `D3LightningModule`; this subclass only fixes the dataset, so that a
    checkpoint rebuilds it from its config alone (``PromoterD3LightningModule(cfg)``). Batches are
    (tokens (B, 1024) int64, CAGE labels (B, 1024, 1) float32).

    Args:
        cfg: A resolved Promoter config (`d3_core.config.resolve_config("promoter", arch)`) or
            its plain-data form.

    Raises:
        D3ConfigError: The config describes another dataset or does not fit the schema.
    """

    def __init__(self, cfg: DictConfig | Mapping[str, Any]) -> None:
        super().__init__(cfg, dataset_name="promoter")
