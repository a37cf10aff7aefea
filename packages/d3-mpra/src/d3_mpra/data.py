"""The MPRA benchmark data file (docs/data-formats.md), declared: its keys, one-hot layout and
description.

d3-core's `d3_core.data.hdf5.OneHotH5Layout` reads it: HDF5 with ``x_train|x_valid|x_test``
(N, 200, 4) one-hot ((N, 4, 200) is read too) and ``y_train|y_valid|y_test`` (N, 3) labels
(K562, HepG2, SK-N-SH), used as stored (no standardisation). A single-cell-line lentiMPRA file
(``onehot_<split>``, 230 bp) is recognised and refused with a hint.
"""

from __future__ import annotations

from d3_core.data.hdf5 import OneHotH5Layout
from d3_core.data.splits import SPLITS
from d3_mpra.plugin import PLUGIN

__all__ = ["FILES", "SPLITS", "load_data", "split_keys"]

FILES = OneHotH5Layout(
    plugin=PLUGIN,
    dataset="MPRA",
    keys=("x_{split}", "y_{split}"),
    layout="NLC",
    file_format=(
        "an MPRA file is HDF5 with x_train|x_valid|x_test (N, 200, 4) one-hot and "
        "y_train|y_valid|y_test (N, 3) labels (K562, HepG2, SK-N-SH)"
    ),
    hints=(
        (
            "onehot_train",
            "; this looks like a single-cell-line lentiMPRA file (onehot_<split>, 230 bp), which "
            "the mpra dataset does not read",
        ),
    ),
)
"""The layout of the paper benchmark's ``mpra_data.h5``."""

load_data = FILES.load
"""``load_data(path)``: the three splits of an MPRA HDF5 file as token datasets
(`d3_core.data.hdf5.OneHotH5Layout.load`)."""

split_keys = FILES.split_keys
"""``split_keys(split)``: the HDF5 keys of one split, e.g. ``("x_train", "y_train")``."""
