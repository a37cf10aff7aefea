"""Reading the MPRA benchmark HDF5 file (SPEC §11) into token datasets for training."""

from __future__ import annotations

import os
from pathlib import Path

import h5py

from d3_core.data.loader import TokenDataset
from d3_core.data.splits import SPLITS, read_onehot_splits
from d3_core.errors import D3InputError
from d3_mpra.plugin import PLUGIN

__all__ = ["SPLITS", "load_data", "split_keys"]

_FORMAT = (
    "an MPRA file is HDF5 with x_train|x_valid|x_test (N, 200, 4) one-hot and "
    "y_train|y_valid|y_test (N, 3) labels (K562, HepG2, SK-N-SH)"
)
_LENTIMPRA_HINT = (
    "; this looks like a single-cell-line lentiMPRA file (onehot_<split>, 230 bp), which the "
    "mpra dataset does not read"
)


def split_keys(split: str) -> tuple[str, str]:
    """The HDF5 keys of one split's sequences and labels, e.g. ``("x_train", "y_train")``."""
    return f"x_{split}", f"y_{split}"


def load_data(path: str | os.PathLike) -> dict[str, TokenDataset]:
    """Reads the three splits of the MPRA benchmark's HDF5 file.

    Sequences are stored one-hot as (N, 200, 4) (the published layout); (N, 4, 200) is read
    too. They are converted to tokens in chunks, so no float copy of a whole split is made.
    Labels are used as stored (SPEC §11: no standardisation).

    Args:
        path: The HDF5 file, e.g. ``mpra_data.h5``.

    Returns:
        ``{"train", "valid", "test"}`` → `TokenDataset` of (tokens (200,) int64,
        labels (3,) float32) items.

    Raises:
        D3InputError: The file is missing or not HDF5, lacks a key, holds arrays of the wrong
            shape, sequences that are not one-hot A/C/G/T, or labels that are not finite; the
            message names the file, the key and what was expected.
    """
    path = Path(path)
    _check_file(path)
    with h5py.File(path, "r") as data:
        return read_onehot_splits(
            data, path, plugin=PLUGIN, keys=split_keys, layout="NLC", file_format=_FORMAT,
            hint=_LENTIMPRA_HINT if "onehot_train" in data else "",
        )  # fmt: skip


def _check_file(path: Path) -> None:
    """Stops on a missing file or one that is not HDF5."""
    if not path.is_file():
        raise D3InputError(
            f"MPRA data file {str(path)!r} does not exist; {_FORMAT} "
            f"(d3_mpra.synthetic.write_synthetic writes a synthetic one)"
        )
    if not h5py.is_hdf5(path):
        raise D3InputError(f"{str(path)!r} is not an HDF5 file; {_FORMAT}")
