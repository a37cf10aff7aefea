"""Tests of reading one-hot split files from any mapping of arrays."""

import re

import numpy as np
import pytest

from d3_core.data.loader import label_names_of, tokens_to_onehot
from d3_core.data.splits import SPLITS, read_onehot_splits
from d3_core.errors import D3InputError

FORMAT = "a toy file holds X_<split> (N, 4, 8) and Y_<split> (N, 2)"


def keys(split):
    return f"X_{split}", f"Y_{split}"


@pytest.fixture
def plugin(make_plugin):
    return make_plugin("toy", sequence_length=8, label_names=("a", "b"))


def arrays(layout="NCL", n=5, seed=0):
    rng = np.random.default_rng(seed)
    data = {}
    for split in SPLITS:
        tokens = rng.integers(0, 4, (n, 8))
        data[f"X_{split}"] = tokens_to_onehot(tokens, layout=layout)
        data[f"Y_{split}"] = rng.normal(size=(n, 2)).astype(np.float32)
        data[f"tokens_{split}"] = tokens
    return data


def read(data, plugin, **options):
    return read_onehot_splits(
        data, "f.h5", plugin=plugin, keys=keys, layout="NCL", file_format=FORMAT, **options
    )


@pytest.mark.parametrize("layout", ["NCL", "NLC"])
def test_splits_round_trip_in_the_published_layout_and_its_transpose(plugin, layout):
    data = arrays(layout)
    splits = read(data, plugin)
    for split in SPLITS:
        np.testing.assert_array_equal(splits[split].tokens.numpy(), data[f"tokens_{split}"])
        np.testing.assert_array_equal(splits[split].labels.numpy(), data[f"Y_{split}"])


def test_a_missing_key_lists_the_keys_found_the_format_and_the_hint(plugin):
    data = arrays()
    del data["Y_valid"]
    with pytest.raises(
        D3InputError,
        match=re.escape("'f.h5' lacks the dataset key(s) Y_valid (keys found: X_test, "),
    ) as error:
        read(data, plugin, hint="; it looks like something else")
    assert str(error.value).endswith(f"; {FORMAT}; it looks like something else")


def test_sequences_of_another_length_are_named_with_the_expected_shape(plugin):
    data = arrays()
    data["X_test"] = np.zeros((5, 4, 9), dtype=np.float32)
    with pytest.raises(
        D3InputError,
        match=re.escape(
            "f.h5:X_test: an array of shape (5, 4, 9) holds 9-bp sequences but toy sequences are 8 bp; expected (N, 4, 8) one-hot (or (N, 8, 4))"
        ),
    ):
        read(data, plugin)


def test_labels_of_the_wrong_width_or_row_count_are_refused(plugin):
    data = arrays()
    data["Y_train"] = np.zeros((5, 3), dtype=np.float32)
    with pytest.raises(
        D3InputError,
        match=re.escape(
            "f.h5:Y_train: labels of width 3 but toy has 2 labels (a, b); expected shape (N, 2)"
        ),
    ):
        read(data, plugin)
    data["Y_train"] = np.zeros((4, 2), dtype=np.float32)
    with pytest.raises(
        D3InputError, match=re.escape("f.h5:Y_train: 4 label rows but X_train holds 5 sequences")
    ):
        read(data, plugin)


class Attributed(dict):
    """A mapping of arrays with HDF5-style attributes."""

    def __init__(self, data, **attrs):
        super().__init__(data)
        self.attrs = attrs


def test_label_names_stored_in_the_file_reach_every_split(plugin):
    splits = read(Attributed(arrays(), label_names=np.array([b"first", b"second"])), plugin)
    assert {s.label_names for s in splits.values()} == {("first", "second")}
    assert read(arrays(), plugin)["train"].label_names is None


@pytest.mark.parametrize("names", [["a"], ["a", "a"], ["a", ""], "ab"])
def test_label_names_that_do_not_name_each_column_once_are_refused(plugin, names):
    with pytest.raises(D3InputError, match=r"^f\.h5: attribute label_names: label names "):
        read(Attributed(arrays(), label_names=names), plugin)


def test_a_renaming_config_wins_over_the_file_which_wins_over_the_default(plugin):
    named = read(Attributed(arrays(), label_names=["x", "y"]), plugin)
    assert label_names_of(plugin, named, ["a", "b"]) == ("data file", ("x", "y"))
    assert label_names_of(plugin, named, ["p", "q"]) == ("config", ("p", "q"))
    assert label_names_of(plugin, read(arrays(), plugin), None) == ("default", ("a", "b"))
    with pytest.raises(D3InputError, match="not 2 distinct non-empty names"):
        label_names_of(plugin, named, ["p"])
