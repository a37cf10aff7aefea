"""Tests of the DeepSTARR HDF5 loader: d3-core's conformance suite for the published layout."""

from __future__ import annotations

from d3_core.testing.data_conformance import OneHotH5FileConformance


class TestDeepSTARRFile(OneHotH5FileConformance):
    name = "deepstarr"
    title = "DeepSTARR"
    keys = ("X_{split}", "Y_{split}")
    layout = "NCL"  # (N, 4, 249), as DeepSTARR_data.h5 stores it
    file_format = (
        "a DeepSTARR file is HDF5 with X_train|X_valid|X_test (N, 4, 249) one-hot and "
        "Y_train|Y_valid|Y_test (N, 2) labels (Dev, Hk)"
    )
