"""Tests of the DeepSTARR HDF5 loader: round trip and one test per rejected file."""

from __future__ import annotations

import re
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from d3_core.data.loader import TokenDataset, check_example
from d3_core.errors import D3InputError
from d3_deepstarr.data import SPLITS, load_data

N = 10  # sequences per split of the hand-made files


def _arrays(seed: int = 0) -> dict[str, np.ndarray]:
    """A valid file's arrays: X_* (N, 4, 249) float32 one-hot and Y_* (N, 2) float32."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split in SPLITS:
        tokens = rng.integers(0, 4, size=(N, 249))
        arrays[f"X_{split}"] = np.eye(4, dtype=np.float32)[tokens].transpose(0, 2, 1)
        arrays[f"Y_{split}"] = rng.normal(size=(N, 2)).astype(np.float32)
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
        check_example(dataset[0], length=249, label_shape=(2,))


def test_tokens_and_labels_equal_what_the_file_holds(tiny_file):
    data = load_data(tiny_file)
    with h5py.File(tiny_file, "r") as f:
        for split in SPLITS:
            onehot = f[f"X_{split}"][...]  # (N, 4, L)
            np.testing.assert_array_equal(data[split].tokens.numpy(), onehot.argmax(axis=1))
            np.testing.assert_array_equal(data[split].labels.numpy(), f[f"Y_{split}"][...])


def test_a_file_in_the_length_last_layout_reads_the_same(tmp_path):
    arrays = _arrays()
    ncl = load_data(_write(tmp_path / "ncl.h5", arrays))
    nlc = {k: v.transpose(0, 2, 1) if k.startswith("X_") else v for k, v in arrays.items()}
    transposed = load_data(_write(tmp_path / "nlc.h5", nlc))
    for split in SPLITS:
        assert torch.equal(ncl[split].tokens, transposed[split].tokens)


def test_labels_of_any_float_or_integer_dtype_load_as_float32(tmp_path):
    data = load_data(_bad_file(tmp_path, Y_test=np.arange(2 * N).reshape(N, 2)))
    assert data["test"].labels.dtype == torch.float32
    assert data["test"][3][1].tolist() == [6.0, 7.0]


def test_a_missing_file_is_named(tmp_path):
    path = tmp_path / "nowhere.h5"
    with pytest.raises(D3InputError, match=f"^DeepSTARR data file '{re.escape(str(path))}' does"):
        load_data(path)


def test_a_file_that_is_not_hdf5_is_named(tmp_path):
    path = tmp_path / "data.npz"
    path.write_bytes(b"not an HDF5 file at all")
    with pytest.raises(D3InputError, match=r"'.*data\.npz' is not an HDF5 file; a DeepSTARR"):
        load_data(path)


def test_missing_keys_are_listed_with_the_keys_found(tmp_path):
    path = _bad_file(tmp_path, Y_valid=None, X_test=None)
    message = (
        r"lacks the dataset key\(s\) Y_valid, X_test \(keys found: X_train, X_valid, Y_test, "
        r"Y_train\); a DeepSTARR file is HDF5 with X_train\|X_valid\|X_test \(N, 4, 249\)"
    )
    with pytest.raises(D3InputError, match=message):
        load_data(path)


def test_sequences_of_the_wrong_length_are_rejected(tmp_path):
    path = _bad_file(tmp_path, X_valid=np.zeros((N, 4, 200), dtype=np.float32))
    message = (
        r"bad\.h5:X_valid: an array of shape \(10, 4, 200\) holds 200-bp sequences but "
        r"deepstarr sequences are 249 bp; expected \(N, 4, 249\) one-hot \(or \(N, 249, 4\)\)"
    )
    with pytest.raises(D3InputError, match=message):
        load_data(path)


def test_an_array_that_is_not_one_hot_shaped_is_rejected(tmp_path):
    path = _bad_file(tmp_path, X_train=np.zeros((N, 249), dtype=np.float32))
    with pytest.raises(
        D3InputError, match=r"X_train: an array of shape \(10, 249\) is not one-hot"
    ):
        load_data(path)


def test_labels_of_the_wrong_width_are_rejected(tmp_path):
    path = _bad_file(tmp_path, Y_train=np.zeros((N, 3), dtype=np.float32))
    message = (
        r"Y_train: labels of width 3 but deepstarr has 2 labels \(Dev, Hk\); "
        r"expected shape \(N, 2\)"
    )
    with pytest.raises(D3InputError, match=message):
        load_data(path)


def test_labels_without_a_column_per_label_are_rejected(tmp_path):
    path = _bad_file(tmp_path, Y_test=np.zeros(N, dtype=np.float32))
    with pytest.raises(D3InputError, match=r"Y_test: labels of shape \(10,\); expected \(N, 2\)"):
        load_data(path)


def test_sequence_and_label_counts_must_agree(tmp_path):
    path = _bad_file(tmp_path, Y_train=np.zeros((N - 1, 2), dtype=np.float32))
    message = r"Y_train: 9 label rows but X_train holds 10 sequences"
    with pytest.raises(D3InputError, match=message):
        load_data(path)


def test_non_finite_labels_are_rejected(tmp_path):
    labels = np.zeros((N, 2), dtype=np.float32)
    labels[3, 1] = np.nan
    path = _bad_file(tmp_path, Y_valid=labels)
    with pytest.raises(D3InputError, match=r"Y_valid: labels of sequence 3 are not finite"):
        load_data(path)


def test_labels_that_are_not_numbers_are_rejected(tmp_path):
    path = _bad_file(tmp_path, Y_train=np.full((N, 2), b"high"))
    with pytest.raises(D3InputError, match=r"Y_train: labels of dtype \|S4 cannot be read"):
        load_data(path)


def test_positions_that_are_not_one_base_are_rejected(tmp_path):
    onehot = _arrays()["X_test"]
    onehot[2, :, 5] = 0.25  # an N base
    path = _bad_file(tmp_path, X_test=onehot)
    with pytest.raises(D3InputError, match=r"X_test: sequence 2, position 5 is not one-hot"):
        load_data(path)
