"""Tests of the synthetic DeepSTARR data: layout, determinism and the planted rule."""

from __future__ import annotations

import d3_deepstarr.synthetic as synthetic
from d3_core.testing.planted_conformance import PlantedMotifConformance


class TestDeepSTARRSyntheticData(PlantedMotifConformance):
    name = "deepstarr"
    keys = ("X_{split}", "Y_{split}")
    layout = "NCL"
    synthetic = synthetic
    full_sizes = (402_296, 40_570, 41_186)  # the published DeepSTARR splits
    baseline = (-1.0, -1.0)
    motif_gains = {  # noqa: RUF012 (a declaration, read only)
        "GATA": (1.0, 0.0),
        "AP-1": (0.8, 0.0),
        "Twist": (0.6, 0.0),
        "GAGA": (0.5, 0.3),
        "Dref": (0.0, 1.0),
        "Ohler1": (0.0, 0.8),
        "Ohler6": (0.0, 0.6),
        "ETS": (0.0, 0.6),
    }
    interaction_gains = {  # noqa: RUF012
        ("GATA", "AP-1"): (1.0 + 0.8 + 0.4, 0.0),
        ("Dref", "Ohler1"): (0.0, 1.0 + 0.8 + 0.3),
    }
