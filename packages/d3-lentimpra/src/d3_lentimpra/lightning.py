"""The lentiMPRA LightningModule: d3-core's training module bound to the lentimpra dataset."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from d3_core.training.module import D3LightningModule
from d3_lentimpra.plugin import check_cell

__all__ = ["LentiMPRAD3LightningModule"]


class LentiMPRAD3LightningModule(D3LightningModule):
    """Trains and samples a lentiMPRA score model (Tran or Conv) from a resolved config alone:
    ``LentiMPRAD3LightningModule(resolve_config("lentimpra", arch))``. All the work is d3-core's
    `D3LightningModule`; this class names the dataset and checks that the one label names a cell
    line (`d3_lentimpra.plugin.check_cell`: K562 or HepG2).

    Raises:
        D3ConfigError: As `D3LightningModule`, or ``dataset.label_names`` names no cell line.
    """

    dataset = "lentimpra"

    def __init__(self, cfg: Any, *args: Any, **kwargs: Any) -> None:
        dataset = cfg.get("dataset") if isinstance(cfg, Mapping) else None
        if isinstance(dataset, Mapping) and dataset.get("label_names") is not None:
            check_cell(dataset["label_names"])  # a config without it is core's error to report
        super().__init__(cfg, *args, **kwargs)
