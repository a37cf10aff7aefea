"""Tests of the MPRA HDF5 loader: d3-core's conformance suite for the benchmark's layout, the
lentiMPRA hint and the label names a run records."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from d3_core.data.splits import SPLITS
from d3_core.errors import D3InputError
from d3_core.testing.data_conformance import OneHotH5FileConformance
from d3_mpra.data import load_data


class TestMPRAFile(OneHotH5FileConformance):
    name = "mpra"
    title = "MPRA"
    keys = ("x_{split}", "y_{split}")
    layout = "NLC"  # (N, 200, 4), as the benchmark's mpra_data.h5 stores it
    file_format = (
        "an MPRA file is HDF5 with x_train|x_valid|x_test (N, 200, 4) one-hot and "
        "y_train|y_valid|y_test (N, 3) labels (K562, HepG2, SK-N-SH)"
    )


N = TestMPRAFile.rows
_arrays, _write = TestMPRAFile.arrays, TestMPRAFile.write


def test_a_single_cell_line_lentimpra_file_is_recognised(tmp_path):
    arrays = {f"onehot_{s}": np.zeros((N, 230, 4), dtype=np.float32) for s in SPLITS}
    path = _write(tmp_path / "data_MPRA_K562.h5", arrays)
    with pytest.raises(D3InputError, match=r"single-cell-line lentiMPRA file \(onehot_<split>"):
        load_data(path)


def test_a_run_records_the_label_names_of_its_data_file(tmp_path):
    from d3_core.checkpoints.load import load_checkpoint
    from d3_core.config import resolve_config
    from d3_core.training.run import RunDir, train

    names = ["K562 (rep 2)", "HepG2 (rep 2)", "SK-N-SH (rep 2)"]
    path = _write(tmp_path / "named.h5", _arrays())
    with h5py.File(path, "a") as out:
        out.attrs["label_names"] = names
    cfg = resolve_config("mpra", "conv", overrides=[
        f"dataset.data={path}", "training.max_steps=1", "training.num_workers=0",
        "training.batch_size=4"])  # fmt: skip
    loaded = load_checkpoint(train(cfg, RunDir(tmp_path / "run"), progress=False).last_checkpoint)
    assert list(loaded.cfg.dataset.label_names) == names
    # A config that renames the labels itself wins over the file.
    cfg = resolve_config("mpra", "conv", overrides=[
        f"dataset.data={path}", "training.max_steps=1", "training.num_workers=0",
        "training.batch_size=4", "dataset.label_names=[a,b,c]"])  # fmt: skip
    loaded = load_checkpoint(train(cfg, RunDir(tmp_path / "run2"), progress=False).last_checkpoint)
    assert list(loaded.cfg.dataset.label_names) == ["a", "b", "c"]
