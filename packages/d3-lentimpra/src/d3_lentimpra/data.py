"""The lentiMPRA data files of d3-dna's K562 and HepG2 examples (docs/data-formats.md#lentimpra),
declared: their keys, one-hot layout and description.

d3-core's `d3_core.data.hdf5.OneHotH5Layout` reads them: HDF5 with ``onehot_train|onehot_valid|
onehot_test`` (N, 230, 4) one-hot ((N, 4, 230) is read too) and ``y_train|y_valid|y_test`` (N, 1)
or (N,) activities of one cell line, used as stored (no standardisation). The file does not say
which cell it measured (d3-dna names it in the file name, ``data_MPRA_<cell>.h5``); the run's
``dataset.label_names`` does (`d3_lentimpra.plugin`). A three-cell-line MPRA benchmark file
(``x_<split>``, 200 bp) is recognised and refused with a hint.
"""

from __future__ import annotations

from d3_core.data.hdf5 import OneHotH5Layout
from d3_core.data.splits import SPLITS
from d3_lentimpra.plugin import PLUGIN

__all__ = ["FILES", "SPLITS", "load_data", "split_keys"]

FILES = OneHotH5Layout(
    plugin=PLUGIN,
    dataset="lentiMPRA",
    keys=("onehot_{split}", "y_{split}"),
    layout="NLC",
    file_format=(
        "a lentiMPRA file is HDF5 with onehot_train|onehot_valid|onehot_test (N, 230, 4) one-hot "
        "and y_train|y_valid|y_test (N, 1) or (N,) activities of one cell line"
    ),
    hints=(
        (
            "x_train",
            "; this looks like the three-cell-line MPRA benchmark file (x_<split>, 200 bp): "
            "train on it with --dataset mpra",
        ),
    ),
)
"""The layout of d3-dna's ``data_MPRA_K562.h5`` and ``data_MPRA_HepG2.h5``."""

load_data = FILES.load
"""``load_data(path)``: the three splits of a lentiMPRA HDF5 file as token datasets
(`d3_core.data.hdf5.OneHotH5Layout.load`)."""

split_keys = FILES.split_keys
"""``split_keys(split)``: the HDF5 keys of one split, e.g. ``("onehot_train", "y_train")``."""
