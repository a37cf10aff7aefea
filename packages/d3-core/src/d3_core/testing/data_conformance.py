"""Conformance tests of a one-hot HDF5 dataset file.

For tests only. A dataset package whose data file is declared with
`d3_core.data.hdf5.OneHotH5Layout` subclasses `OneHotH5FileConformance` in its
``tests/test_data.py`` under a name starting with ``Test`` and sets the class attributes it
documents (`d3_core.testing.planted_conformance` does the same for its synthetic data). The expected keys, shapes
and messages are built from those attributes (what the package promises its users), not read
from the package's declaration, so a declaration that drifts from the promise fails here.

The suite uses a ``tiny_file`` fixture that the package's ``conftest.py`` provides: its
synthetic file of size ``"tiny"``, seed 0.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from d3_core.data.planted import TINY
from d3_core.data.splits import SPLITS
from d3_core.errors import D3InputError
from d3_core.registry import DatasetPlugin, load_dataset_plugin

__all__ = ["OneHotFileKeys", "OneHotH5FileConformance"]


class OneHotFileKeys:
    """What the file suites know of a file: its keys and one-hot layout."""

    name: ClassVar[str]
    """The dataset's registered name, e.g. ``"deepstarr"``."""
    keys: ClassVar[tuple[str, str]]
    """The published (sequence, label) key templates, e.g. ``("X_{split}", "Y_{split}")``."""
    layout: ClassVar[str]
    """The published one-hot layout: ``"NCL"`` (N, 4, L) or ``"NLC"`` (N, L, 4)."""

    @classmethod
    def plugin(cls) -> DatasetPlugin:
        return load_dataset_plugin(cls.name)

    @classmethod
    def x(cls, split: str) -> str:
        return cls.keys[0].format(split=split)

    @classmethod
    def y(cls, split: str) -> str:
        return cls.keys[1].format(split=split)

    @classmethod
    def onehot_shape(cls, n: int | str, length: int | str) -> tuple:
        return (n, 4, length) if cls.layout == "NCL" else (n, length, 4)

    @classmethod
    def channel_axis(cls) -> int:
        return 1 if cls.layout == "NCL" else 2

    @staticmethod
    def read(path: Path) -> dict[str, np.ndarray]:
        import h5py

        with h5py.File(path, "r") as f:
            return {key: f[key][...] for key in f}


class OneHotH5FileConformance(OneHotFileKeys):
    """Reading the dataset's HDF5 file: a round trip, and one test per file it must refuse.

    Set `name`, `keys`, `layout`, and:
    """

    title: ClassVar[str]
    """The dataset's name in messages, e.g. ``"DeepSTARR"``."""
    file_format: ClassVar[str]
    """The start of the file's description that every message about the file ends with."""
    rows: ClassVar[int] = 10
    """Sequences per split of the hand-made files."""

    # -- hand-made files ----------------------------------------------------------------------

    @classmethod
    def arrays(cls, seed: int = 0) -> dict[str, np.ndarray]:
        """A valid file's arrays: one-hot float32 in the published layout and float32 labels."""
        plugin = cls.plugin()
        rng = np.random.default_rng(seed)
        arrays = {}
        for split in SPLITS:
            tokens = rng.integers(0, 4, size=(cls.rows, plugin.sequence_length))
            onehot = np.eye(4, dtype=np.float32)[tokens]  # (N, L, 4)
            arrays[cls.x(split)] = onehot.transpose(0, 2, 1) if cls.layout == "NCL" else onehot
            width = plugin.label_width
            arrays[cls.y(split)] = rng.normal(size=(cls.rows, width)).astype(np.float32)
        return arrays

    @staticmethod
    def write(path: Path, arrays: dict[str, np.ndarray], **attrs: Any) -> Path:
        import h5py

        with h5py.File(path, "w") as out:
            for key, value in arrays.items():
                out.create_dataset(key, data=value)
            out.attrs.update(attrs)
        return path

    @classmethod
    def bad_file(cls, tmp_path: Path, changes: dict[str, Any]) -> Path:
        """A valid file with some arrays replaced; a value of None drops the key."""
        arrays = {**cls.arrays(), **changes}
        return cls.write(tmp_path / "bad.h5", {k: v for k, v in arrays.items() if v is not None})

    def load(self, path: Path) -> dict[str, Any]:
        return self.plugin().load("data_loader")(path)

    def refused(self, path: Path, message: str) -> None:
        with pytest.raises(D3InputError, match=message):
            self.load(path)

    # -- round trip ---------------------------------------------------------------------------

    def test_loading_returns_the_three_splits_as_token_datasets(self, tiny_file) -> None:
        from d3_core.data.loader import TokenDataset, check_example

        plugin, data = self.plugin(), self.load(tiny_file)
        assert list(data) == ["train", "valid", "test"]
        assert [len(data[s]) for s in SPLITS] == list(TINY)
        for dataset in data.values():
            assert isinstance(dataset, TokenDataset)
            check_example(dataset[0], length=plugin.sequence_length, label_shape=plugin.label_shape)

    def test_tokens_and_labels_equal_what_the_file_holds(self, tiny_file) -> None:
        data, stored = self.load(tiny_file), self.read(tiny_file)
        for split in SPLITS:
            tokens = stored[self.x(split)].argmax(axis=self.channel_axis())
            np.testing.assert_array_equal(data[split].tokens.numpy(), tokens)
            np.testing.assert_array_equal(data[split].labels.numpy(), stored[self.y(split)])

    def test_a_file_in_the_transposed_layout_reads_the_same(self, tmp_path) -> None:
        import torch

        arrays = self.arrays()
        published = self.load(self.write(tmp_path / "published.h5", arrays))
        flipped = {k: v.transpose(0, 2, 1) if v.ndim == 3 else v for k, v in arrays.items()}
        transposed = self.load(self.write(tmp_path / "transposed.h5", flipped))
        for split in SPLITS:
            assert torch.equal(published[split].tokens, transposed[split].tokens)

    def test_labels_of_any_float_or_integer_dtype_load_as_float32(self, tmp_path) -> None:
        import torch

        width = self.plugin().label_width
        integers = np.arange(width * self.rows).reshape(self.rows, width)
        data = self.load(self.bad_file(tmp_path, {self.y("test"): integers}))
        assert data["test"].labels.dtype == torch.float32
        assert data["test"][2][1].tolist() == [float(2 * width + i) for i in range(width)]

    def test_label_names_come_from_the_file_when_it_names_them(self, tiny_file, tmp_path) -> None:
        plugin = self.plugin()
        assert self.load(tiny_file)["train"].label_names == plugin.label_names
        assert (
            self.load(self.write(tmp_path / "unnamed.h5", self.arrays()))["test"].label_names
            is None
        )
        names = [f"{name} (rep 2)" for name in plugin.label_names]
        named = self.write(tmp_path / "named.h5", self.arrays(), label_names=names)
        assert self.load(named)["valid"].label_names == tuple(names)

    # -- refused files ------------------------------------------------------------------------

    def test_a_missing_file_is_named(self, tmp_path) -> None:
        path = tmp_path / "nowhere.h5"
        self.refused(path, f"^{self.title} data file '{re.escape(str(path))}' does not exist")

    def test_a_file_that_is_not_hdf5_is_named(self, tmp_path) -> None:
        path = tmp_path / "data.npz"
        path.write_bytes(b"not an HDF5 file at all")
        self.refused(path, rf"'.*data\.npz' is not an HDF5 file; {re.escape(self.file_format)}")

    def test_missing_keys_are_listed_with_the_keys_found(self, tmp_path) -> None:
        dropped = [self.y("valid"), self.x("test")]
        path = self.bad_file(tmp_path, dict.fromkeys(dropped))
        found = sorted(set(self.arrays()) - set(dropped))
        message = (
            f"lacks the dataset key(s) {', '.join(dropped)} (keys found: {', '.join(found)}); "
            f"{self.file_format}"
        )
        self.refused(path, re.escape(message))

    def test_sequences_of_the_wrong_length_are_rejected(self, tmp_path) -> None:
        plugin = self.plugin()
        length, other = plugin.sequence_length, plugin.sequence_length - 9
        bad = np.zeros(self.onehot_shape(self.rows, other), dtype=np.float32)
        path = self.bad_file(tmp_path, {self.x("valid"): bad})
        expected = self.onehot_shape("N", length)
        transposed = (expected[0], expected[2], expected[1])
        message = (
            f"bad.h5:{self.x('valid')}: an array of shape {bad.shape} holds {other}-bp sequences "
            f"but {self.name} sequences are {length} bp; expected "
            f"{_shape(expected)} one-hot (or {_shape(transposed)})"
        )
        self.refused(path, re.escape(message))

    def test_an_array_that_is_not_one_hot_shaped_is_rejected(self, tmp_path) -> None:
        flat = np.zeros((self.rows, self.plugin().sequence_length), dtype=np.float32)
        path = self.bad_file(tmp_path, {self.x("train"): flat})
        self.refused(
            path, re.escape(f"{self.x('train')}: an array of shape {flat.shape} is not one-hot")
        )

    def test_labels_of_the_wrong_width_are_rejected(self, tmp_path) -> None:
        plugin = self.plugin()
        width = plugin.label_width
        path = self.bad_file(tmp_path, {self.y("train"): np.zeros((self.rows, width + 1))})
        message = (
            f"{self.y('train')}: labels of width {width + 1} but {self.name} has {width} labels "
            f"({', '.join(plugin.label_names)}); expected shape (N, {width})"
        )
        self.refused(path, re.escape(message))

    def test_labels_without_a_column_per_label_are_rejected(self, tmp_path) -> None:
        width = self.plugin().label_width
        if width == 1:
            pytest.skip("a one-label dataset reads a vector as its column (test below)")
        path = self.bad_file(tmp_path, {self.y("test"): np.zeros(self.rows, dtype=np.float32)})
        message = f"{self.y('test')}: labels of shape ({self.rows},); expected (N, {width})"
        self.refused(path, re.escape(message))

    def test_one_label_stored_as_a_vector_reads_as_its_column(self, tmp_path) -> None:
        if self.plugin().label_width != 1:
            pytest.skip("only a one-label dataset reads (N,) labels")
        column = self.arrays()[self.y("test")]  # (N, 1)
        data = self.load(self.bad_file(tmp_path, {self.y("test"): column[:, 0]}))
        np.testing.assert_array_equal(data["test"].labels.numpy(), column)
        bad = self.bad_file(tmp_path, {self.y("test"): column[:, :, None]})  # (N, 1, 1)
        self.refused(bad, re.escape(f"{self.y('test')}: labels of shape ({self.rows}, 1, 1)"))

    @pytest.mark.parametrize("rows", [-1, 1])
    def test_sequence_and_label_counts_must_agree(self, tmp_path, rows) -> None:
        labels = np.zeros((self.rows + rows, self.plugin().label_width), dtype=np.float32)
        path = self.bad_file(tmp_path, {self.y("train"): labels})
        message = (
            f"{self.y('train')}: {self.rows + rows} label rows but {self.x('train')} holds "
            f"{self.rows} sequences"
        )
        self.refused(path, re.escape(message))

    @pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
    def test_non_finite_labels_are_rejected(self, tmp_path, value) -> None:
        labels = np.zeros((self.rows, self.plugin().label_width), dtype=np.float32)
        labels[3, -1] = value
        path = self.bad_file(tmp_path, {self.y("valid"): labels})
        self.refused(path, re.escape(f"{self.y('valid')}: labels of sequence 3 are not finite"))

    def test_labels_that_are_not_numbers_are_rejected(self, tmp_path) -> None:
        words = np.full((self.rows, self.plugin().label_width), b"high")
        path = self.bad_file(tmp_path, {self.y("train"): words})
        self.refused(path, re.escape(f"{self.y('train')}: labels of dtype |S4 cannot be read"))

    @pytest.mark.parametrize("value", [0.25, 0.0], ids=["N base", "gap"])
    def test_positions_that_are_not_one_base_are_rejected(self, tmp_path, value) -> None:
        onehot = self.arrays()[self.x("test")]
        if self.layout == "NCL":
            onehot[2, :, 5] = value
        else:
            onehot[2, 5, :] = value
        path = self.bad_file(tmp_path, {self.x("test"): onehot})
        self.refused(path, re.escape(f"{self.x('test')}: sequence 2, position 5 is not one-hot"))

    def test_a_file_naming_another_number_of_labels_is_rejected(self, tmp_path) -> None:
        names = list(self.plugin().label_names[:-1]) or ["a", "b"]
        path = self.write(tmp_path / "named.h5", self.arrays(), label_names=names)
        width = self.plugin().label_width
        message = (
            f"{path}: attribute label_names: label names {names} are not {width} distinct "
            "non-empty names, one per label column"
        )
        self.refused(path, f"^{re.escape(message)}$")

    # -- through the commands: read_data_file and `d3 train` ----------------------------------

    def test_a_truncated_file_is_one_error_line_naming_it_and_nothing_is_written(
        self, tiny_file, tmp_path, capsys
    ) -> None:
        from d3_core.cli.main import main

        content = Path(tiny_file).read_bytes()
        cut = tmp_path / "cut.h5"
        cut.write_bytes(content[: len(content) // 2])
        out = tmp_path / "run"
        argv = ["train", "--dataset", self.name, "--arch", "Tran", "--data", str(cut), "--out",
                str(out), "--no-progress"]  # fmt: skip
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert err.startswith("d3: error: ") and err.count("\n") == 1, err
        assert str(cut) in err and f"d3 make-data --dataset {self.name}" in err, err
        assert not out.exists()

    @pytest.mark.parametrize("split", SPLITS)
    def test_a_split_without_sequences_is_refused_naming_it(self, tmp_path, split) -> None:
        from d3_core.data.files import read_data_file

        arrays = self.arrays()
        empty = {self.x(split): arrays[self.x(split)][:0], self.y(split): arrays[self.y(split)][:0]}
        path = self.bad_file(tmp_path, empty)
        with pytest.raises(D3InputError, match=re.escape(f"the {split!r} split of data file")):
            read_data_file(self.plugin(), path, need=SPLITS)


def _shape(shape: tuple) -> str:
    """A shape as messages print it: ``(N, 4, 249)``."""
    return "(" + ", ".join(map(str, shape)) + ")"
