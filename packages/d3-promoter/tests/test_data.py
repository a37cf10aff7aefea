"""Tests of the Promoter NPZ loader: a round trip and one test per error message."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from d3_core.data import TokenDataset
from d3_core.errors import D3InputError
from d3_promoter.data import load_data


def _rows(n: int = 4, length: int = 1024, channels: int = 6, seed: int = 0) -> np.ndarray:
    """(n, length, channels) float32 rows of valid one-hot DNA and a non-negative CAGE signal."""
    rng = np.random.default_rng(seed)
    rows = np.zeros((n, length, channels), dtype=np.float32)
    tokens = rng.integers(0, 4, size=(n, length))
    rows[np.arange(n)[:, None], np.arange(length), tokens] = 1.0
    rows[..., 4:] = rng.random((n, length, channels - 4))
    return rows


def _save(path, **arrays):
    with open(path, "wb") as handle:  # a handle: np.savez adds no ".npz" suffix
        np.savez(handle, **arrays)
    return path


def _valid(**changes) -> dict[str, np.ndarray]:
    return {"train": _rows(seed=0), "valid": _rows(seed=1), "test": _rows(seed=2), **changes}


def test_loading_the_synthetic_file_round_trips(tiny_npz):
    data = load_data(tiny_npz)
    assert list(data) == ["train", "valid", "test"]
    with np.load(tiny_npz) as archive:
        for key, dataset in data.items():
            stored = archive[key]
            assert isinstance(dataset, TokenDataset)
            assert len(dataset) == len(stored)
            tokens, labels = dataset[3]
            assert tokens.dtype == torch.int64 and tokens.shape == (1024,)
            assert labels.dtype == torch.float32 and labels.shape == (1024, 1)
            np.testing.assert_array_equal(tokens.numpy(), stored[3, :, :4].argmax(axis=-1))
            np.testing.assert_array_equal(labels.numpy(), stored[3, :, 4:5])


def test_float64_and_a_string_path_are_accepted(tmp_path):
    arrays = {key: value.astype(np.float64) for key, value in _valid().items()}
    data = load_data(str(_save(tmp_path / "data.npz", **arrays)))
    assert data["test"].labels.dtype == torch.float32
    np.testing.assert_allclose(data["test"].labels.numpy(), arrays["test"][..., 4:5], rtol=1e-6)


def test_a_missing_file_is_named(tmp_path):
    path = tmp_path / "nope.npz"
    message = f"{path}: no such file; the Promoter data is an NPZ file with keys train, valid, test"
    with pytest.raises(D3InputError, match=f"^{re.escape(message)}, each \\(N, 1024, 6\\)"):
        load_data(path)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (
            b"\x80\x04a pickle",
            "neither a zip archive nor a .npy array; pickled data is never loaded",
        ),
        (b"", r"EOFError: No data left in file"),
        (b"PK\x03\x04cut short", r"BadZipFile: File is not a zip file"),
    ],
)
def test_a_file_that_is_not_an_npz_archive_is_refused_without_unpickling(tmp_path, content, reason):
    path = tmp_path / "data.npz"
    path.write_bytes(content)
    message = rf"data\.npz: not an NPZ archive \({reason}\); expected an NPZ file with keys"
    with pytest.raises(D3InputError, match=message):
        load_data(path)


def test_a_truncated_synthetic_file_is_not_an_npz_archive(tiny_npz, tmp_path):
    path = tmp_path / "cut.npz"
    path.write_bytes(tiny_npz.read_bytes()[:100_000])
    with pytest.raises(D3InputError, match=r"cut\.npz: not an NPZ archive \(BadZipFile"):
        load_data(path)


def test_a_single_npy_array_is_not_an_npz_archive(tmp_path):
    path = tmp_path / "data.npy"
    np.save(path, _rows())
    with pytest.raises(D3InputError, match=r"holds a single array of shape \(4, 1024, 6\), not an"):
        load_data(path)


def test_missing_splits_are_listed_with_the_keys_found(tmp_path):
    path = _save(tmp_path / "data.npz", train=_rows(), valid=_rows(), x_test=_rows())
    message = "missing key(s) test; expected keys train, valid, test (found: train, valid, x_test)"
    with pytest.raises(D3InputError, match=re.escape(message)):
        load_data(path)


@pytest.mark.parametrize(
    ("array", "shape"),
    [
        (_rows(channels=5), "(4, 1024, 5)"),
        (_rows(length=200), "(4, 200, 6)"),
        (np.zeros((4, 6144), dtype=np.float32), "(4, 6144)"),
    ],
)
def test_a_wrongly_shaped_split_names_the_key_and_the_expected_shape(tmp_path, array, shape):
    path = _save(tmp_path / "data.npz", **_valid(valid=array))
    message = (
        f"{path}:valid: expected shape (N, 1024, 6) float32: channels 0-3 one-hot A, C, G, T, "
        f"channel 4 the CAGE signal, channel 5 the opposite strand; got shape {shape}"
    )
    with pytest.raises(D3InputError, match=f"^{re.escape(message)}$"):
        load_data(path)


def test_a_split_of_strings_is_refused(tmp_path):
    path = _save(tmp_path / "data.npz", **_valid(test=np.full((2, 1024, 6), "A")))
    with pytest.raises(
        D3InputError, match=r"data\.npz:test: expected float32 values; got dtype <U1$"
    ):
        load_data(path)


def test_an_object_array_is_never_unpickled(tmp_path):
    objects = np.empty((2, 1024, 6), dtype=object)
    path = _save(tmp_path / "data.npz", **_valid(train=objects))
    message = r"data\.npz:train: cannot be read \(ValueError: .*allow_pickle=False.*never pickled"
    with pytest.raises(D3InputError, match=message):
        load_data(path)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_a_non_finite_cage_value_is_located(tmp_path, value):
    rows = _rows()
    rows[3, 17, 4] = value
    path = _save(tmp_path / "data.npz", **_valid(test=rows))
    message = (
        f"{path}:test: the CAGE signal (channel 4) of sequence 3 is {value} at position 17; "
        f"it must be finite"
    )
    with pytest.raises(D3InputError, match=f"^{re.escape(message)}$"):
        load_data(path)


def test_a_non_finite_opposite_strand_is_ignored(tmp_path):
    rows = _rows()
    rows[..., 5] = np.nan  # channel 5 is not used
    assert len(load_data(_save(tmp_path / "data.npz", **_valid(train=rows)))["train"]) == 4


def test_a_position_that_is_not_one_hot_acgt_is_located(tmp_path):
    rows = _rows()
    rows[2, 5, :4] = 0.0  # an N
    path = _save(tmp_path / "data.npz", **_valid(valid=rows))
    message = f"{path}:valid: sequence 2, position 5 is not one-hot A/C/G/T"
    with pytest.raises(D3InputError, match=f"^{re.escape(message)}"):
        load_data(path)
