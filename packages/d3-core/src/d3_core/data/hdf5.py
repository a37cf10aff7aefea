"""One-hot HDF5 split files: a dataset declares its keys, layout and format, d3-core reads them.

Owns `OneHotH5Layout`, the declaration of a dataset file that holds its train, valid and test
splits as one-hot sequences and global labels (DeepSTARR's and MPRA's published layouts,
docs/data-formats.md), and its reader: it checks that the file exists and is HDF5, opens it with
h5py and reads the splits with `d3_core.data.splits.read_onehot_splits`. h5py is imported only when
a file is opened, so importing this module does not import it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from d3_core.data.splits import read_onehot_splits
from d3_core.errors import D3ConfigError, D3InputError

__all__ = ["OneHotH5Layout"]


@dataclass(frozen=True)
class OneHotH5Layout:
    """An HDF5 file of one-hot sequences and global labels, one pair of arrays per split.

    Attributes:
        plugin: The dataset's `d3_core.registry.DatasetPlugin` (name, length, labels, and the
            synthetic-data writer that the missing-file message names).
        dataset: The dataset's display name in messages, e.g. ``"DeepSTARR"``.
        keys: Templates of a split's (sequence key, label key), e.g.
            ``("X_{split}", "Y_{split}")``.
        layout: The published one-hot layout, ``"NCL"`` (N, 4, L) or ``"NLC"`` (N, L, 4); the
            reader also takes its transpose.
        file_format: One sentence describing the expected file, for every message about it.
        hints: (key, text) pairs: a file that holds the key but lacks the dataset's keys gets
            the text appended to the missing-key error (what the file looks like instead).
    """

    plugin: Any
    dataset: str
    keys: tuple[str, str]
    layout: str
    file_format: str
    hints: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.layout not in ("NCL", "NLC"):
            raise D3ConfigError(f"layout must be 'NCL' or 'NLC', got {self.layout!r}")
        if len(self.keys) != 2 or not all("{split}" in key for key in self.keys):
            raise D3ConfigError(
                f"keys must be two templates naming {{split}}, e.g. ('X_{{split}}', "
                f"'Y_{{split}}'), got {self.keys!r}"
            )

    def split_keys(self, split: str) -> tuple[str, str]:
        """The HDF5 keys of one split's sequences and labels, e.g. ``("X_train", "Y_train")``."""
        sequences, labels = self.keys
        return sequences.format(split=split), labels.format(split=split)

    def load(self, path: str | os.PathLike) -> dict[str, Any]:
        """Reads the three splits of the dataset's HDF5 file.

        Sequences are stored one-hot in `layout` (its transpose is read too) and converted to
        tokens in chunks, so no float copy of a whole split is made. Labels are used as stored
        (docs/data-formats.md: no standardisation); a ``label_names`` attribute of the file names
        them.

        Args:
            path: The HDF5 file.

        Returns:
            ``{"train", "valid", "test"}`` → `d3_core.data.loader.TokenDataset` of
            (tokens (L,) int64, labels (S,) float32) items.

        Raises:
            D3InputError: The file is missing or not HDF5, lacks a key, holds arrays of the
                wrong shape, sequences that are not one-hot A/C/G/T, or labels that are not
                finite; the message names the file, the key and what was expected.
        """
        import h5py

        path = Path(path)
        self.check_file(path)
        with h5py.File(path, "r") as data:
            hint = next((text for key, text in self.hints if key in data), "")
            return read_onehot_splits(
                data, path, plugin=self.plugin, keys=self.split_keys, layout=self.layout,
                file_format=self.file_format, hint=hint,
            )  # fmt: skip

    def check_file(self, path: Path) -> None:
        """Stops on a missing file or one that is not HDF5.

        Raises:
            D3InputError: naming the file and the expected format, and for a missing file the
                function that writes a synthetic one.
        """
        import h5py

        if not path.is_file():
            writer, made_by = self.plugin.synthetic_data, ""
            if isinstance(writer, str):  # "module:function", as plugins declare it
                made_by = f" ({writer.replace(':', '.')} writes a synthetic one)"
            raise D3InputError(
                f"{self.dataset} data file {str(path)!r} does not exist; {self.file_format}"
                f"{made_by}"
            )
        if not h5py.is_hdf5(path):
            raise D3InputError(f"{str(path)!r} is not an HDF5 file; {self.file_format}")
