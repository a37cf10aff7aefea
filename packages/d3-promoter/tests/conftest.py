"""Shared fixtures of d3-promoter's tests: a tiny synthetic NPZ file and a blank sequence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from d3_promoter.synthetic import write_synthetic


@pytest.fixture(scope="session")
def tiny_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic Promoter file of size "tiny" (64/16/16 sequences), seed 0; do not modify."""
    return write_synthetic(tmp_path_factory.mktemp("data") / "promoter_tiny.npz", size="tiny")


@pytest.fixture
def blank() -> np.ndarray:
    """One (1, 1024) int64 sequence of only C, in which no promoter element occurs."""
    return np.full((1, 1024), 1, dtype=np.int64)
