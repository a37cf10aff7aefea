"""Shared fixtures of d3-lentimpra's tests: a tiny synthetic lentiMPRA file."""

from __future__ import annotations

from pathlib import Path

import pytest

from d3_lentimpra.synthetic import write_synthetic


@pytest.fixture(scope="session")
def tiny_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic lentiMPRA file of size "tiny" (256/64/64 sequences), seed 0; do not modify."""
    return write_synthetic(tmp_path_factory.mktemp("data") / "tiny.h5", seed=0, size="tiny")
