"""Tests of the MPRA HDF5 loader: round trip and one test per rejected file."""

from __future__ import annotations

import re
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from d3_core.data.loader import TokenDataset, check_example
from d3_core.errors import D3InputError
from d3_mpra.data import SPLITS, load_data

N = 10  # sequences per split of the hand-made files


def _arrays(seed: int = 0) -> dict[str, np.ndarray]:
    """A valid file's arrays: x_* (N, 200, 4) float32 one-hot and y_* (N, 3) float32."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split in SPLITS:
        tokens = rng.integers(0, 4, size=(N, 200))
        arrays[f"x_{split}"] = np.eye(4, dtype=np.float32)[tokens]
        arrays[f"y_{split}"] = rng.normal(size=(N, 3)).astype(np.float32)
    return arrays


def _write(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    with h5py.File(path, "w") as out:
        for key, value in arrays.items():
            out.create_dataset(key, data=value)
    return path


def _bad_file(tmp_path: Path, **changes) -> Path:
    """A valid file with some arrays replaced; a value of None drops the key."""
    arrays = {**_arrays(), **changes}
    return _write(tmp_path / "bad.h5", {k: v for k, v in arrays.items() if v is not None})


def test_loading_returns_the_three_splits_as_token_datasets(tiny_file):
    data = load_data(tiny_file)
    assert list(data) == ["train", "valid", "test"]
    assert [len(data[s]) for s in SPLITS] == [256, 64, 64]
    for dataset in data.values():
        assert isinstance(dataset, TokenDataset)
        check_example(dataset[0], length=200, label_shape=(3,))


def test_tokens_and_labels_equal_what_the_file_holds(tiny_file):
    data = load_data(tiny_file)
    with h5py.File(tiny_file, "r") as f:
        for split in SPLITS:
            onehot = f[f"x_{split}"][...]  # (N, L, 4)
            np.testing.assert_array_equal(data[split].tokens.numpy(), onehot.argmax(axis=2))
            np.testing.assert_array_equal(data[split].labels.numpy(), f[f"y_{split}"][...])


def test_a_file_in_the_channels_first_layout_reads_the_same(tmp_path):
    arrays = _arrays()
    nlc = load_data(_write(tmp_path / "nlc.h5", arrays))
    ncl = {k: v.transpose(0, 2, 1) if k.startswith("x_") else v for k, v in arrays.items()}
    transposed = load_data(_write(tmp_path / "ncl.h5", ncl))
    for split in SPLITS:
        assert torch.equal(nlc[split].tokens, transposed[split].tokens)


def test_labels_of_any_float_or_integer_dtype_load_as_float32(tmp_path):
    data = load_data(_bad_file(tmp_path, y_test=np.arange(3 * N).reshape(N, 3)))
    assert data["test"].labels.dtype == torch.float32
    assert data["test"][2][1].tolist() == [6.0, 7.0, 8.0]


def test_a_missing_file_is_named(tmp_path):
    path = tmp_path / "nowhere.h5"
    with pytest.raises(D3InputError, match=f"^MPRA data file '{re.escape(str(path))}' does not"):
        load_data(path)


def test_a_file_that_is_not_hdf5_is_named(tmp_path):
    path = tmp_path / "data.npz"
    path.write_bytes(b"not an HDF5 file at all")
    with pytest.raises(D3InputError, match=r"'.*data\.npz' is not an HDF5 file; an MPRA file"):
        load_data(path)


def test_missing_keys_are_listed_with_the_keys_found(tmp_path):
    path = _bad_file(tmp_path, y_valid=None, x_test=None)
    message = (
        r"lacks the dataset key\(s\) y_valid, x_test \(keys found: x_train, x_valid, y_test, "
        r"y_train\); an MPRA file is HDF5 with x_train\|x_valid\|x_test \(N, 200, 4\) one-hot "
        r"and y_train\|y_valid\|y_test \(N, 3\) labels \(K562, HepG2, SK-N-SH\)$"
    )
    with pytest.raises(D3InputError, match=message):
        load_data(path)


def test_a_single_cell_line_lentimpra_file_is_recognised(tmp_path):
    arrays = {f"onehot_{s}": np.zeros((N, 230, 4), dtype=np.float32) for s in SPLITS}
    path = _write(tmp_path / "data_MPRA_K562.h5", arrays)
    with pytest.raises(D3InputError, match=r"single-cell-line lentiMPRA file \(onehot_<split>"):
        load_data(path)


def test_sequences_of_the_wrong_length_are_rejected(tmp_path):
    path = _bad_file(tmp_path, x_valid=np.zeros((N, 230, 4), dtype=np.float32))
    message = (
        r"bad\.h5:x_valid: an array of shape \(10, 230, 4\) holds 230-bp sequences but "
        r"mpra sequences are 200 bp; expected \(N, 200, 4\) one-hot \(or \(N, 4, 200\)\)"
    )
    with pytest.raises(D3InputError, match=message):
        load_data(path)


def test_an_array_that_is_not_one_hot_shaped_is_rejected(tmp_path):
    path = _bad_file(tmp_path, x_train=np.zeros((N, 200), dtype=np.float32))
    with pytest.raises(
        D3InputError, match=r"x_train: an array of shape \(10, 200\) is not one-hot"
    ):
        load_data(path)


def test_labels_of_the_wrong_width_are_rejected(tmp_path):
    path = _bad_file(tmp_path, y_train=np.zeros((N, 2), dtype=np.float32))
    message = (
        r"y_train: labels of width 2 but mpra has 3 labels \(K562, HepG2, SK-N-SH\); "
        r"expected shape \(N, 3\)"
    )
    with pytest.raises(D3InputError, match=message):
        load_data(path)


def test_labels_without_a_column_per_label_are_rejected(tmp_path):
    path = _bad_file(tmp_path, y_test=np.zeros(N, dtype=np.float32))
    with pytest.raises(D3InputError, match=r"y_test: labels of shape \(10,\); expected \(N, 3\)"):
        load_data(path)


def test_sequence_and_label_counts_must_agree(tmp_path):
    path = _bad_file(tmp_path, y_train=np.zeros((N + 1, 3), dtype=np.float32))
    message = r"y_train: 11 label rows but x_train holds 10 sequences"
    with pytest.raises(D3InputError, match=message):
        load_data(path)


def test_non_finite_labels_are_rejected(tmp_path):
    labels = np.zeros((N, 3), dtype=np.float32)
    labels[4, 2] = np.inf
    path = _bad_file(tmp_path, y_valid=labels)
    with pytest.raises(D3InputError, match=r"y_valid: labels of sequence 4 are not finite"):
        load_data(path)


def test_labels_that_are_not_numbers_are_rejected(tmp_path):
    path = _bad_file(tmp_path, y_train=np.full((N, 3), b"high"))
    with pytest.raises(D3InputError, match=r"y_train: labels of dtype \|S4 cannot be read"):
        load_data(path)


def test_positions_that_are_not_one_base_are_rejected(tmp_path):
    onehot = _arrays()["x_test"]
    onehot[2, 5] = 0.0  # a gap: no base at all
    path = _bad_file(tmp_path, x_test=onehot)
    with pytest.raises(D3InputError, match=r"x_test: sequence 2, position 5 is not one-hot"):
        load_data(path)


def test_label_names_come_from_the_file_when_it_names_them(tiny_file, tmp_path):
    assert load_data(tiny_file)["train"].label_names == ("K562", "HepG2", "SK-N-SH")
    assert load_data(_write(tmp_path / "unnamed.h5", _arrays()))["test"].label_names is None
    path = _write(tmp_path / "named.h5", _arrays())
    with h5py.File(path, "a") as out:
        out.attrs["label_names"] = ["K562 (rep 2)", "HepG2 (rep 2)", "SK-N-SH (rep 2)"]
    assert load_data(path)["valid"].label_names == ("K562 (rep 2)", "HepG2 (rep 2)",
                                                     "SK-N-SH (rep 2)")  # fmt: skip


def test_a_file_naming_another_number_of_labels_is_rejected(tmp_path):
    path = _write(tmp_path / "named.h5", _arrays())
    with h5py.File(path, "a") as out:
        out.attrs["label_names"] = ["K562", "HepG2"]
    message = (
        f"{path}: attribute label_names: label names ['K562', 'HepG2'] are not 3 distinct "
        "non-empty names, one per label column"
    )
    with pytest.raises(D3InputError, match=f"^{re.escape(message)}$"):
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
