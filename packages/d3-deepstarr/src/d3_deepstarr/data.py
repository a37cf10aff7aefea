"""Reading a DeepSTARR HDF5 file (SPEC §11) into token datasets for training and evaluation."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from d3_core.data import TokenDataset, onehot_to_tokens
from d3_core.errors import D3InputError
from d3_deepstarr.plugin import PLUGIN

__all__ = ["SPLITS", "load_data", "split_keys"]

SPLITS = ("train", "valid", "test")

_FORMAT = (
    "a DeepSTARR file is HDF5 with X_train|X_valid|X_test (N, 4, 249) one-hot and "
    "Y_train|Y_valid|Y_test (N, 2) labels (Dev, Hk)"
)


def split_keys(split: str) -> tuple[str, str]:
    """The HDF5 keys of one split's sequences and labels, e.g. ``("X_train", "Y_train")``."""
    return f"X_{split}", f"Y_{split}"


def load_data(path: str | os.PathLike) -> dict[str, TokenDataset]:
    """Reads the three splits of a DeepSTARR HDF5 file.

    Sequences are stored one-hot as (N, 4, 249) (the published layout); (N, 249, 4) is read
    too. They are converted to tokens in chunks, so no float copy of a whole split is made.
    Labels are used as stored (SPEC §11: no standardisation).

    Args:
        path: The HDF5 file, e.g. ``DeepSTARR_data.h5``.

    Returns:
        ``{"train", "valid", "test"}`` → `TokenDataset` of (tokens (249,) int64,
        labels (2,) float32) items.

    Raises:
        D3InputError: The file is missing or not HDF5, lacks a key, holds arrays of the wrong
            shape, sequences that are not one-hot A/C/G/T, or labels that are not finite; the
            message names the file, the key and what was expected.
    """
    path = Path(path)
    _check_file(path)
    with h5py.File(path, "r") as data:
        _check_keys(data, path)
        return {split: _load_split(data, path, split) for split in SPLITS}


def _check_file(path: Path) -> None:
    """Stops on a missing file or one that is not HDF5."""
    if not path.is_file():
        raise D3InputError(
            f"DeepSTARR data file {str(path)!r} does not exist; {_FORMAT} "
            f"(d3_deepstarr.synthetic.write_synthetic writes a synthetic one)"
        )
    if not h5py.is_hdf5(path):
        raise D3InputError(f"{str(path)!r} is not an HDF5 file; {_FORMAT}")


def _check_keys(data: h5py.File, path: Path) -> None:
    """Stops when a split's sequences or labels are missing, naming the keys found."""
    wanted = [key for split in SPLITS for key in split_keys(split)]
    missing = [k for k in wanted if not isinstance(data.get(k), h5py.Dataset)]
    if missing:
        raise D3InputError(
            f"{str(path)!r} lacks the dataset key(s) {', '.join(missing)} (keys found: "
            f"{', '.join(sorted(data.keys())) or 'none'}); {_FORMAT}"
        )


def _onehot_layout(shape: tuple[int, ...], where: str) -> str:
    """``"NCL"`` for (N, 4, 249), ``"NLC"`` for (N, 249, 4); any other shape is an error."""
    length = PLUGIN.sequence_length
    if len(shape) == 3 and shape[1:] == (4, length):
        return "NCL"
    if len(shape) == 3 and shape[1:] == (length, 4):
        return "NLC"
    if len(shape) == 3 and 4 in shape[1:]:
        other = shape[2] if shape[1] == 4 else shape[1]
        reason = f"holds {other}-bp sequences but deepstarr sequences are {length} bp"
    else:
        reason = "is not one-hot DNA"
    raise D3InputError(
        f"{where}: an array of shape {shape} {reason}; expected (N, 4, {length}) one-hot "
        f"(or (N, {length}, 4))"
    )


def _check_labels(shape: tuple[int, ...], n: int, where: str, x_key: str) -> None:
    """Stops on labels that are not (N, 2) with N the split's number of sequences."""
    width = PLUGIN.label_width
    names = ", ".join(PLUGIN.label_names)
    if len(shape) != 2:
        raise D3InputError(
            f"{where}: labels of shape {shape}; expected (N, {width}), one column per label "
            f"({names})"
        )
    if shape[1] != width:
        raise D3InputError(
            f"{where}: labels of width {shape[1]} but deepstarr has {width} labels ({names}); "
            f"expected shape (N, {width})"
        )
    if shape[0] != n:
        raise D3InputError(
            f"{where}: {shape[0]} label rows but {x_key} holds {n} sequences; the two must "
            f"have one row per sequence"
        )


def _load_split(data: h5py.File, path: Path, split: str) -> TokenDataset:
    """One split as a `TokenDataset`, checked key by key."""
    x_key, y_key = split_keys(split)
    x, y = data[x_key], data[y_key]
    layout = _onehot_layout(tuple(x.shape), f"{path}:{x_key}")
    _check_labels(tuple(y.shape), x.shape[0], f"{path}:{y_key}", x_key)
    tokens = onehot_to_tokens(x, layout=layout, source=f"{path}:{x_key}")  # (N, L) uint8
    try:
        labels = np.asarray(y[...], dtype=np.float32)  # (N, S)
    except (TypeError, ValueError):
        raise D3InputError(
            f"{path}:{y_key}: labels of dtype {y.dtype} cannot be read as numbers"
        ) from None
    return TokenDataset(tokens, labels, source=f"{path}:{y_key}")
