"""Conformance tests of a dataset package's planted-motif synthetic data.

For tests only. A dataset package whose synthetic data is a
`d3_core.data.planted.PlantedMotifData` subclasses `PlantedMotifConformance` in its
``tests/test_synthetic.py`` under a name starting with ``Test`` and sets the class attributes
it documents: the expected gains are the package's promise, written out by hand, so a rule
that drifts from its documentation fails here. The suite uses a ``tiny_file`` fixture that the
package's ``conftest.py`` provides: its synthetic file of size ``"tiny"``, seed 0.
"""

from __future__ import annotations

from types import ModuleType
from typing import ClassVar

import numpy as np
import pytest

from d3_core.data.planted import TINY
from d3_core.data.splits import SPLITS
from d3_core.errors import D3ConfigError, D3InputError
from d3_core.testing.data_conformance import OneHotFileKeys

__all__ = ["PlantedMotifConformance"]


class PlantedMotifConformance(OneHotFileKeys):
    """The synthetic data: its layout, its determinism and the rule it plants.

    Set `name`, `keys`, `layout`, and:
    """

    synthetic: ClassVar[ModuleType]
    """The package's ``synthetic`` module (``MOTIFS``, ``SIZES``, ``NOISE_SD``, ``DATA``,
    ``ground_truth``, ``write_synthetic``)."""
    full_sizes: ClassVar[tuple[int, int, int]]
    """(train, valid, test) sequences of size ``"full"``: the published splits."""
    baseline: ClassVar[tuple[float, ...]]
    """The rule's labels of a sequence without motifs."""
    motif_gains: ClassVar[dict[str, tuple[float, ...]]]
    """Per motif name, the labels one copy adds (every motif of the rule)."""
    interaction_gains: ClassVar[dict[tuple[str, str], tuple[float, ...]]]
    """Per pair of motifs, the labels one copy of each adds together (their interaction)."""

    @classmethod
    def with_motifs(cls, *names: str) -> np.ndarray:
        """(1, L) tokens: an all-C background (no motif occurs in it) with the named motifs."""
        from d3_core.data.synthetic import encode

        length = cls.plugin().sequence_length
        tokens = np.full((1, length), encode("C")[0], dtype=np.int64)
        by_name = {m.name: m for m in cls.synthetic.MOTIFS}
        for i, name in enumerate(names):
            word = by_name[name].tokens
            tokens[0, 20 + 30 * i : 20 + 30 * i + len(word)] = word
        return tokens

    def gain(self, *names: str) -> np.ndarray:
        truth = self.synthetic.ground_truth
        return truth(self.with_motifs(*names))[0] - truth(self.with_motifs())[0]

    def test_the_file_has_exactly_the_published_layout(self, tiny_file) -> None:
        plugin, stored = self.plugin(), self.read(tiny_file)
        assert sorted(stored) == sorted(k for s in SPLITS for k in (self.x(s), self.y(s)))
        for split, n in zip(SPLITS, TINY, strict=True):
            onehot, labels = stored[self.x(split)], stored[self.y(split)]
            assert onehot.shape == self.onehot_shape(n, plugin.sequence_length)
            assert labels.shape == (n, plugin.label_width)
            assert onehot.dtype == labels.dtype == np.float32
        onehot = stored[self.x("train")]
        assert set(np.unique(onehot)) == {0.0, 1.0}
        assert (onehot.sum(axis=self.channel_axis()) == 1).all()

    def test_the_sizes_are_tiny_small_and_the_published_splits(self) -> None:
        sizes = self.synthetic.SIZES
        assert (sizes["tiny"], sum(sizes["small"]), sizes["full"]) == (
            TINY,
            10_000,
            self.full_sizes,
        )

    def test_the_same_seed_writes_the_same_data(self, tiny_file, tmp_path) -> None:
        again = self.read(
            self.synthetic.write_synthetic(tmp_path / "again.h5", seed=0, size="tiny")
        )
        for key, value in self.read(tiny_file).items():
            np.testing.assert_array_equal(again[key], value)

    def test_another_seed_writes_other_data(self, tiny_file, tmp_path) -> None:
        other = self.read(
            self.synthetic.write_synthetic(tmp_path / "other.h5", seed=1, size="tiny")
        )
        first = self.read(tiny_file)
        assert not np.array_equal(other[self.x("train")], first[self.x("train")])
        assert not np.array_equal(other[self.y("test")], first[self.y("test")])

    def test_the_splits_differ_from_each_other(self, tiny_file) -> None:
        stored = self.read(tiny_file)
        assert not np.array_equal(stored[self.x("valid")], stored[self.x("test")])

    def test_ground_truth_explains_the_stored_labels(self, tiny_file) -> None:
        stored = self.read(tiny_file)
        truth = self.synthetic.ground_truth(
            stored[self.x("train")].argmax(axis=self.channel_axis())
        )
        labels = stored[self.y("train")]
        for label in range(labels.shape[1]):
            r = np.corrcoef(truth[:, label], labels[:, label])[0, 1]
            assert r > 0.9, (label, r)
        assert abs((labels - truth).std() - self.synthetic.NOISE_SD) < 0.05

    def test_each_planted_motif_moves_the_labels_it_should(self) -> None:
        assert set(self.motif_gains) == {m.name for m in self.synthetic.MOTIFS}
        baseline = self.synthetic.ground_truth(self.with_motifs())[0]
        np.testing.assert_allclose(baseline, self.baseline)
        for motif, gain in self.motif_gains.items():
            np.testing.assert_allclose(self.gain(motif), gain, atol=1e-6, err_msg=motif)

    def test_motifs_together_add_their_interaction(self) -> None:
        for pair, gain in self.interaction_gains.items():
            np.testing.assert_allclose(self.gain(*pair), gain, atol=1e-6, err_msg=str(pair))

    def test_ground_truth_takes_torch_tokens_and_returns_float32_numpy(self) -> None:
        import torch

        tokens = self.with_motifs(next(iter(self.motif_gains)))
        result = self.synthetic.ground_truth(torch.from_numpy(tokens))
        assert isinstance(result, np.ndarray) and result.dtype == np.float32
        np.testing.assert_array_equal(result, self.synthetic.ground_truth(tokens))

    def test_ground_truth_rejects_tokens_of_another_length(self) -> None:
        length = self.plugin().sequence_length
        message = rf"tokens of shape \(N, {length}\), got \(2, {length + 1}\)"
        with pytest.raises(D3InputError, match=message):
            self.synthetic.ground_truth(np.zeros((2, length + 1), dtype=np.int64))

    @pytest.mark.parametrize("dtype", ["float32", "float64"])
    def test_ground_truth_rejects_float_tokens(self, dtype) -> None:
        with pytest.raises(D3InputError, match=f"integer tokens, got dtype {dtype}"):
            self.synthetic.ground_truth(np.zeros((2, self.plugin().sequence_length), dtype=dtype))

    @pytest.mark.parametrize(("value", "found"), [(4, "0 to 4"), (-1, "-1 to 0")])
    def test_ground_truth_rejects_tokens_out_of_range(self, value, found) -> None:
        tokens = np.zeros((2, self.plugin().sequence_length), dtype=np.int64)
        tokens[1, 7] = value
        with pytest.raises(D3InputError, match=rf"tokens in \[0, 4\) .*values from {found}"):
            self.synthetic.ground_truth(tokens)

    def test_an_unknown_size_is_rejected(self, tmp_path) -> None:
        with pytest.raises(
            D3ConfigError, match="unknown synthetic data size 'huge'; use one of tiny"
        ):
            self.synthetic.write_synthetic(tmp_path / "x.h5", size="huge")

    @pytest.mark.parametrize("seed", [-1, 1.5])
    def test_a_seed_that_is_not_a_non_negative_integer_is_rejected(self, tmp_path, seed) -> None:
        with pytest.raises(D3ConfigError, match=f"seed must be a non-negative integer, got {seed}"):
            self.synthetic.write_synthetic(tmp_path / "x.h5", seed=seed, size="tiny")

    def test_a_failed_write_leaves_no_file_behind(self, tmp_path, monkeypatch) -> None:
        def fail(self, rng, n):
            raise RuntimeError("disk full")

        monkeypatch.setattr(type(self.synthetic.DATA), "synthetic_split", fail)
        with pytest.raises(RuntimeError, match="disk full"):
            self.synthetic.write_synthetic(tmp_path / "x.h5", size="tiny")
        assert list(tmp_path.iterdir()) == []
