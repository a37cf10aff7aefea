"""Tests of the synthetic lentiMPRA data: layout, determinism and the planted rule."""

from __future__ import annotations

import d3_lentimpra.synthetic as synthetic
from d3_core.testing.planted_conformance import PlantedMotifConformance


class TestLentiMPRASyntheticData(PlantedMotifConformance):
    name = "lentimpra"
    keys = ("onehot_{split}", "y_{split}")
    layout = "NLC"
    synthetic = synthetic
    full_sizes = (200_000, 25_000, 25_000)
    baseline = (-0.5,)
    motif_gains = {"GATA1": (1.0,), "AP-1": (0.7,), "CEBP": (0.3,), "REST": (-0.6,)}  # noqa: RUF012
    interaction_gains = {("GATA1", "AP-1"): (1.0 + 0.7 + 0.3,)}  # noqa: RUF012
