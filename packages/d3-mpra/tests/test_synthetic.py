"""Tests of the synthetic MPRA data: layout, determinism and the planted rule."""

from __future__ import annotations

import numpy as np

import d3_mpra.synthetic as synthetic
from d3_core.testing.planted_conformance import PlantedMotifConformance


class TestMPRASyntheticData(PlantedMotifConformance):
    name = "mpra"
    keys = ("x_{split}", "y_{split}")
    layout = "NLC"
    synthetic = synthetic
    full_sizes = (224_000, 32_000, 64_000)  # the benchmark's 7:1:2 with a 64k test set
    baseline = (-0.5, -0.5, -0.5)
    motif_gains = {  # noqa: RUF012 (a declaration, read only)
        "GATA1": (1.0, 0.0, 0.0),
        "HNF4A": (0.0, 1.0, 0.0),
        "CEBP": (0.3, 0.6, 0.0),
        "SOX": (0.0, 0.0, 1.0),
        "AP-1": (0.7, 0.7, 0.7),
        "REST": (-0.4, -0.4, 0.0),
    }
    interaction_gains = {  # noqa: RUF012
        ("GATA1", "AP-1"): (1.0 + 0.7 + 0.3, 0.7, 0.7),  # in K562
        ("HNF4A", "CEBP"): (0.3, 1.0 + 0.6 + 0.3, 0.0),  # in HepG2
    }


def test_the_three_cell_lines_correlate_through_shared_motifs(tiny_file):
    labels = TestMPRASyntheticData.read(tiny_file)["y_train"]
    r = np.corrcoef(labels.T)  # (3, 3)
    assert (r[np.triu_indices(3, k=1)] > 0.1).all(), r
