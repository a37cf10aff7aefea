"""Tests of the synthetic DeepSTARR data: layout, determinism and the planted rule."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

import d3_deepstarr.synthetic as synthetic
from d3_core.data.synthetic import encode
from d3_core.errors import D3ConfigError, D3InputError
from d3_deepstarr.synthetic import MOTIFS, SIZES, ground_truth, write_synthetic

KEYS = ["X_test", "X_train", "X_valid", "Y_test", "Y_train", "Y_valid"]


def _read(path) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as f:
        return {key: f[key][...] for key in f}


def _with_motifs(*names: str) -> np.ndarray:
    """(1, 249) tokens: an all-C background (no motif occurs in it) with the named motifs."""
    tokens = np.full((1, 249), encode("C")[0], dtype=np.int64)
    by_name = {m.name: m for m in MOTIFS}
    for i, name in enumerate(names):
        word = by_name[name].tokens
        tokens[0, 20 + 30 * i : 20 + 30 * i + len(word)] = word
    return tokens


def test_the_file_has_exactly_the_published_layout(tiny_file):
    with h5py.File(tiny_file, "r") as f:
        assert sorted(f.keys()) == KEYS
        for split, n in zip(("train", "valid", "test"), SIZES["tiny"], strict=True):
            assert f[f"X_{split}"].shape == (n, 4, 249)
            assert f[f"Y_{split}"].shape == (n, 2)
            assert f[f"X_{split}"].dtype == np.float32
            assert f[f"Y_{split}"].dtype == np.float32
        onehot = f["X_train"][...]
    assert set(np.unique(onehot)) == {0.0, 1.0}
    assert (onehot.sum(axis=1) == 1).all()


def test_sizes_match_the_published_deepstarr_splits():
    assert SIZES["full"] == (402_296, 40_570, 41_186)
    assert sum(SIZES["small"]) == 10_000


def test_the_same_seed_writes_the_same_data(tiny_file, tmp_path):
    again = _read(write_synthetic(tmp_path / "again.h5", seed=0, size="tiny"))
    for key, value in _read(tiny_file).items():
        np.testing.assert_array_equal(again[key], value)


def test_another_seed_writes_other_data(tiny_file, tmp_path):
    other = _read(write_synthetic(tmp_path / "other.h5", seed=1, size="tiny"))
    first = _read(tiny_file)
    assert not np.array_equal(other["X_train"], first["X_train"])
    assert not np.array_equal(other["Y_test"], first["Y_test"])


def test_the_splits_differ_from_each_other(tiny_file):
    data = _read(tiny_file)
    assert not np.array_equal(data["X_valid"], data["X_test"])


def test_ground_truth_explains_the_stored_labels(tiny_file):
    data = _read(tiny_file)
    truth = ground_truth(data["X_train"].argmax(axis=1))
    for label in range(2):
        r = np.corrcoef(truth[:, label], data["Y_train"][:, label])[0, 1]
        assert r > 0.9, (label, r)
    residual = data["Y_train"] - truth
    assert abs(residual.std() - synthetic.NOISE_SD) < 0.05


@pytest.mark.parametrize(
    ("motif", "gain"),
    [
        ("GATA", (1.0, 0.0)),
        ("AP-1", (0.8, 0.0)),
        ("Twist", (0.6, 0.0)),
        ("GAGA", (0.5, 0.3)),
        ("Dref", (0.0, 1.0)),
        ("Ohler1", (0.0, 0.8)),
        ("Ohler6", (0.0, 0.6)),
        ("ETS", (0.0, 0.6)),
    ],
)
def test_each_planted_motif_raises_the_label_it_should(motif, gain):
    baseline = ground_truth(_with_motifs())[0]
    np.testing.assert_allclose(baseline, [-1.0, -1.0])
    np.testing.assert_allclose(ground_truth(_with_motifs(motif))[0] - baseline, gain, atol=1e-6)


def test_gata_and_ap1_together_add_their_interaction():
    gain = ground_truth(_with_motifs("GATA", "AP-1"))[0] - ground_truth(_with_motifs())[0]
    np.testing.assert_allclose(gain, [1.0 + 0.8 + 0.4, 0.0], atol=1e-6)


def test_dref_and_ohler1_together_add_their_interaction():
    gain = ground_truth(_with_motifs("Dref", "Ohler1"))[0] - ground_truth(_with_motifs())[0]
    np.testing.assert_allclose(gain, [0.0, 1.0 + 0.8 + 0.3], atol=1e-6)


def test_ground_truth_takes_torch_tokens_and_returns_float32_numpy():
    tokens = _with_motifs("GATA")
    result = ground_truth(torch.from_numpy(tokens))
    assert isinstance(result, np.ndarray) and result.dtype == np.float32
    np.testing.assert_array_equal(result, ground_truth(tokens))


def test_ground_truth_rejects_tokens_of_another_length():
    with pytest.raises(D3InputError, match=r"tokens of shape \(N, 249\), got \(2, 200\)"):
        ground_truth(np.zeros((2, 200), dtype=np.int64))


def test_ground_truth_rejects_float_tokens():
    with pytest.raises(D3InputError, match="integer tokens, got dtype float32"):
        ground_truth(np.zeros((2, 249), dtype=np.float32))


def test_ground_truth_rejects_tokens_out_of_range():
    tokens = np.zeros((2, 249), dtype=np.int64)
    tokens[1, 7] = 4
    with pytest.raises(D3InputError, match=r"tokens in \[0, 4\) .*values from 0 to 4"):
        ground_truth(tokens)


def test_an_unknown_size_is_rejected(tmp_path):
    with pytest.raises(D3ConfigError, match="unknown synthetic data size 'huge'; use one of tiny"):
        write_synthetic(tmp_path / "x.h5", size="huge")


def test_a_negative_seed_is_rejected(tmp_path):
    with pytest.raises(D3ConfigError, match="seed must be a non-negative integer, got -1"):
        write_synthetic(tmp_path / "x.h5", seed=-1, size="tiny")


def test_a_failed_write_leaves_no_file_behind(tmp_path, monkeypatch):
    def fail(rng, n):
        raise RuntimeError("disk full")

    monkeypatch.setattr(synthetic, "synthetic_split", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        write_synthetic(tmp_path / "x.h5", size="tiny")
    assert list(tmp_path.iterdir()) == []
