"""Tests of the lentiMPRA HDF5 loader: d3-core's conformance suite for d3-dna's layout, the MPRA
hint and the cell line a run records."""

from __future__ import annotations

import numpy as np
import pytest

from d3_core.data.splits import SPLITS
from d3_core.errors import D3InputError
from d3_core.testing.data_conformance import OneHotH5FileConformance
from d3_lentimpra.data import load_data


class TestLentiMPRAFile(OneHotH5FileConformance):
    name = "lentimpra"
    title = "lentiMPRA"
    keys = ("onehot_{split}", "y_{split}")
    layout = "NLC"  # (N, 230, 4), as d3-dna's data_MPRA_<cell>.h5 stores it
    file_format = (
        "a lentiMPRA file is HDF5 with onehot_train|onehot_valid|onehot_test (N, 230, 4) one-hot "
        "and y_train|y_valid|y_test (N, 1) or (N,) activities of one cell line"
    )


N = TestLentiMPRAFile.rows
_arrays, _write = TestLentiMPRAFile.arrays, TestLentiMPRAFile.write


def test_the_three_cell_line_mpra_benchmark_file_is_recognised(tmp_path):
    arrays = {f"x_{s}": np.zeros((N, 200, 4), dtype=np.float32) for s in SPLITS}
    path = _write(tmp_path / "mpra_data.h5", arrays)
    with pytest.raises(
        D3InputError, match=r"three-cell-line MPRA benchmark file .* --dataset mpra"
    ):
        load_data(path)


def test_a_hepg2_run_records_its_cell_line(tmp_path):
    from d3_core.checkpoints.load import load_checkpoint
    from d3_core.config import resolve_config
    from d3_core.training.run import RunDir, train

    arrays = {k: v[:, 0] if k.startswith("y_") else v for k, v in _arrays().items()}  # (N,)
    path = _write(tmp_path / "data_MPRA_HepG2.h5", arrays)
    cfg = resolve_config("lentimpra", "conv", overrides=[
        f"dataset.data={path}", "training.max_steps=1", "training.num_workers=0",
        "training.batch_size=4", "dataset.label_names=[HepG2]"])  # fmt: skip
    loaded = load_checkpoint(train(cfg, RunDir(tmp_path / "run"), progress=False).last_checkpoint)
    assert list(loaded.cfg.dataset.label_names) == ["HepG2"]
