"""Tests of the synthetic MPRA data: layout, determinism and the planted rule."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

import d3_mpra.synthetic as synthetic
from d3_core.data.synthetic import encode
from d3_core.errors import D3ConfigError, D3InputError
from d3_mpra.synthetic import MOTIFS, SIZES, ground_truth, write_synthetic

KEYS = ["x_test", "x_train", "x_valid", "y_test", "y_train", "y_valid"]


def _read(path) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as f:
        return {key: f[key][...] for key in f}


def _with_motifs(*names: str) -> np.ndarray:
    """(1, 200) tokens: an all-C background (no motif occurs in it) with the named motifs."""
    tokens = np.full((1, 200), encode("C")[0], dtype=np.int64)
    by_name = {m.name: m for m in MOTIFS}
    for i, name in enumerate(names):
        word = by_name[name].tokens
        tokens[0, 20 + 30 * i : 20 + 30 * i + len(word)] = word
    return tokens


def test_the_file_has_exactly_the_published_layout(tiny_file):
    with h5py.File(tiny_file, "r") as f:
        assert sorted(f.keys()) == KEYS
        for split, n in zip(("train", "valid", "test"), SIZES["tiny"], strict=True):
            assert f[f"x_{split}"].shape == (n, 200, 4)
            assert f[f"y_{split}"].shape == (n, 3)
            assert f[f"x_{split}"].dtype == np.float32
            assert f[f"y_{split}"].dtype == np.float32
        onehot = f["x_train"][...]
    assert set(np.unique(onehot)) == {0.0, 1.0}
    assert (onehot.sum(axis=2) == 1).all()


def test_the_full_size_splits_7_1_2_with_a_64k_test_set():
    train, valid, test = SIZES["full"]
    assert test == 64_000
    assert (train / test, valid / test) == (3.5, 0.5)


def test_the_same_seed_writes_the_same_data(tiny_file, tmp_path):
    again = _read(write_synthetic(tmp_path / "again.h5", seed=0, size="tiny"))
    for key, value in _read(tiny_file).items():
        np.testing.assert_array_equal(again[key], value)


def test_another_seed_writes_other_data(tiny_file, tmp_path):
    other = _read(write_synthetic(tmp_path / "other.h5", seed=1, size="tiny"))
    first = _read(tiny_file)
    assert not np.array_equal(other["x_train"], first["x_train"])
    assert not np.array_equal(other["y_test"], first["y_test"])


def test_ground_truth_explains_the_stored_labels(tiny_file):
    data = _read(tiny_file)
    truth = ground_truth(data["x_train"].argmax(axis=2))
    for label in range(3):
        r = np.corrcoef(truth[:, label], data["y_train"][:, label])[0, 1]
        assert r > 0.9, (label, r)
    residual = data["y_train"] - truth
    assert abs(residual.std() - synthetic.NOISE_SD) < 0.05


def test_the_three_cell_lines_correlate_through_shared_motifs(tiny_file):
    labels = _read(tiny_file)["y_train"]
    r = np.corrcoef(labels.T)  # (3, 3)
    assert (r[np.triu_indices(3, k=1)] > 0.1).all(), r


@pytest.mark.parametrize(
    ("motif", "gain"),
    [
        ("GATA1", (1.0, 0.0, 0.0)),
        ("HNF4A", (0.0, 1.0, 0.0)),
        ("CEBP", (0.3, 0.6, 0.0)),
        ("SOX", (0.0, 0.0, 1.0)),
        ("AP-1", (0.7, 0.7, 0.7)),
        ("REST", (-0.4, -0.4, 0.0)),
    ],
)
def test_each_planted_motif_moves_the_labels_it_should(motif, gain):
    baseline = ground_truth(_with_motifs())[0]
    np.testing.assert_allclose(baseline, [-0.5, -0.5, -0.5])
    np.testing.assert_allclose(ground_truth(_with_motifs(motif))[0] - baseline, gain, atol=1e-6)


def test_gata1_and_ap1_together_add_their_interaction_in_k562():
    gain = ground_truth(_with_motifs("GATA1", "AP-1"))[0] - ground_truth(_with_motifs())[0]
    np.testing.assert_allclose(gain, [1.0 + 0.7 + 0.3, 0.7, 0.7], atol=1e-6)


def test_hnf4a_and_cebp_together_add_their_interaction_in_hepg2():
    gain = ground_truth(_with_motifs("HNF4A", "CEBP"))[0] - ground_truth(_with_motifs())[0]
    np.testing.assert_allclose(gain, [0.3, 1.0 + 0.6 + 0.3, 0.0], atol=1e-6)


def test_ground_truth_takes_torch_tokens_and_returns_float32_numpy():
    tokens = _with_motifs("SOX")
    result = ground_truth(torch.from_numpy(tokens))
    assert isinstance(result, np.ndarray) and result.dtype == np.float32
    np.testing.assert_array_equal(result, ground_truth(tokens))


def test_ground_truth_rejects_tokens_of_another_length():
    with pytest.raises(D3InputError, match=r"tokens of shape \(N, 200\), got \(2, 249\)"):
        ground_truth(np.zeros((2, 249), dtype=np.int64))


def test_ground_truth_rejects_float_tokens():
    with pytest.raises(D3InputError, match="integer tokens, got dtype float64"):
        ground_truth(np.zeros((2, 200)))


def test_ground_truth_rejects_tokens_out_of_range():
    tokens = np.zeros((2, 200), dtype=np.int64)
    tokens[0, 3] = -1
    with pytest.raises(D3InputError, match=r"tokens in \[0, 4\) .*values from -1 to 0"):
        ground_truth(tokens)


def test_an_unknown_size_is_rejected(tmp_path):
    with pytest.raises(D3ConfigError, match="unknown synthetic data size 'big'; use one of tiny"):
        write_synthetic(tmp_path / "x.h5", size="big")


def test_a_seed_that_is_not_an_integer_is_rejected(tmp_path):
    with pytest.raises(D3ConfigError, match=r"seed must be a non-negative integer, got 1\.5"):
        write_synthetic(tmp_path / "x.h5", seed=1.5, size="tiny")


def test_a_failed_write_leaves_no_file_behind(tmp_path, monkeypatch):
    def fail(rng, n):
        raise RuntimeError("disk full")

    monkeypatch.setattr(synthetic, "synthetic_split", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        write_synthetic(tmp_path / "x.h5", size="tiny")
    assert list(tmp_path.iterdir()) == []
