"""The DeepSTARR data file (docs/data-formats.md), declared: its keys, one-hot layout and
description.

d3-core's `d3_core.data.hdf5.OneHotH5Layout` reads it: HDF5 with ``X_train|X_valid|X_test``
(N, 4, 249) one-hot ((N, 249, 4) is read too) and ``Y_train|Y_valid|Y_test`` (N, 2) labels
(Dev, Hk), used as stored (no standardisation).
"""

from __future__ import annotations

from d3_core.data.hdf5 import OneHotH5Layout
from d3_core.data.splits import SPLITS
from d3_deepstarr.plugin import PLUGIN

__all__ = ["FILES", "SPLITS", "load_data", "split_keys"]

FILES = OneHotH5Layout(
    plugin=PLUGIN,
    dataset="DeepSTARR",
    keys=("X_{split}", "Y_{split}"),
    layout="NCL",
    file_format=(
        "a DeepSTARR file is HDF5 with X_train|X_valid|X_test (N, 4, 249) one-hot and "
        "Y_train|Y_valid|Y_test (N, 2) labels (Dev, Hk)"
    ),
)
"""The published layout of ``DeepSTARR_data.h5``."""

load_data = FILES.load
"""``load_data(path)``: the three splits of a DeepSTARR HDF5 file as token datasets
(`d3_core.data.hdf5.OneHotH5Layout.load`)."""

split_keys = FILES.split_keys
"""``split_keys(split)``: the HDF5 keys of one split, e.g. ``("X_train", "Y_train")``."""
