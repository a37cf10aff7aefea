"""Reading a DeepSTARR HDF5 file (SPEC §11) into token datasets for training and evaluation."""

from __future__ import annotations

import os
from pathlib import Path

import h5py

from d3_core.data.loader import TokenDataset
from d3_core.data.splits import SPLITS, read_onehot_splits
from d3_core.errors import D3InputError
from d3_deepstarr.plugin import PLUGIN

__all__ = ["SPLITS", "load_data", "split_keys"]

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
        return read_onehot_splits(
            data, path, plugin=PLUGIN, keys=split_keys, layout="NCL", file_format=_FORMAT,
            hint="",
        )  # fmt: skip


def _check_file(path: Path) -> None:
    """Stops on a missing file or one that is not HDF5."""
    if not path.is_file():
        raise D3InputError(
            f"DeepSTARR data file {str(path)!r} does not exist; {_FORMAT} "
            f"(d3_deepstarr.synthetic.write_synthetic writes a synthetic one)"
        )
    if not h5py.is_hdf5(path):
        raise D3InputError(f"{str(path)!r} is not an HDF5 file; {_FORMAT}")
