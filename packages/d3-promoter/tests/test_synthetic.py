"""Tests of the synthetic Promoter data: the planted rule, the file layout and determinism."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from d3_core.data.synthetic import encode
from d3_core.errors import D3ConfigError, D3InputError
from d3_promoter import synthetic
from d3_promoter.synthetic import SIZES, ground_truth, sample_sequences, write_synthetic

PEAK = np.array([0.25, 0.5, 1.0, 0.5, 0.25], dtype=np.float32)


def put(tokens: np.ndarray, position: int, word: str) -> np.ndarray:
    """A copy of ``tokens`` (1, L) with ``word`` written from ``position`` on."""
    out = tokens.copy()
    out[0, position : position + len(word)] = encode(word)
    return out


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- the rule -------------------------------------------------------------------------------


def test_a_sequence_without_elements_has_no_signal(blank):
    assert ground_truth(blank).shape == (1, 1024, 1)
    assert ground_truth(blank).dtype == np.float32
    assert not ground_truth(blank).any()


def test_a_tata_box_puts_a_peak_of_height_one_30_bp_downstream(blank):
    track = ground_truth(put(blank, 200, "TATAAAA"))[0, :, 0]
    np.testing.assert_array_equal(track[228:233], PEAK)
    assert track.sum() == PEAK.sum()


def test_moving_the_tata_box_moves_the_peak(blank):
    for position in (100, 450, 900):
        track = ground_truth(put(blank, position, "TATAAAA"))[0, :, 0]
        assert track.argmax() == position + 30


def test_gc_and_ccaat_boxes_within_100_bp_upstream_raise_the_peak(blank):
    tokens = put(blank, 500, "TATAAAA")
    tokens = put(tokens, 400, "GGGCGG")  # 100 bp upstream: counts
    tokens = put(tokens, 480, "CCAAT")  # counts
    tokens = put(tokens, 390, "CCAAT")  # 110 bp upstream: too far
    tokens = put(tokens, 600, "GGGCGG")  # downstream: does not count
    track = ground_truth(tokens)[0, :, 0]
    np.testing.assert_array_equal(track[528:533], 3 * PEAK)


@pytest.mark.parametrize(("start", "height"), [(399, 1), (400, 2), (494, 2), (501, 1)])
def test_the_upstream_window_is_the_100_bp_before_the_tata_box(blank, start, height):
    tokens = put(put(blank, start, "GGGCGG"), 500, "TATAAAA")
    assert ground_truth(tokens)[0, 530, 0] == height


def test_an_initiator_on_the_tss_adds_one_to_the_height(blank):
    tokens = put(put(blank, 500, "TATAAAA"), 528, "TCAGT")
    np.testing.assert_array_equal(ground_truth(tokens)[0, 528:533, 0], 2 * PEAK)
    shifted = put(put(blank, 500, "TATAAAA"), 529, "TCAGT")  # its A one base off the TSS
    np.testing.assert_array_equal(ground_truth(shifted)[0, 528:533, 0], PEAK)


def test_each_tata_box_gives_a_peak_and_a_tss_past_the_end_gives_none(blank):
    track = ground_truth(put(put(blank, 300, "TATAAAA"), 308, "TATAAAA"))[0, :, 0]
    np.testing.assert_array_equal(track[328:333], PEAK)
    np.testing.assert_array_equal(track[336:341], PEAK)
    assert track.sum() == 2 * PEAK.sum()
    assert ground_truth(put(blank, 993, "TATAAAA"))[0, 1021:, 0].tolist() == [0.25, 0.5, 1.0]
    assert not ground_truth(put(blank, 994, "TATAAAA")).any()


def test_ground_truth_takes_torch_tensors_and_numpy_alike(blank):
    tokens = put(blank, 200, "TATAAAA")
    np.testing.assert_array_equal(ground_truth(torch.from_numpy(tokens)), ground_truth(tokens))


@pytest.mark.parametrize(
    ("tokens", "message"),
    [
        (
            np.zeros((2, 200), dtype=np.int64),
            r"^tokens must have shape \(N, 1024\); got \(2, 200\)$",
        ),
        (np.zeros(1024, dtype=np.int64), r"^tokens must have shape \(N, 1024\); got \(1024,\)$"),
        (np.zeros((1, 1024)), r"^tokens must be integers A, C, G, T = 0..3; got dtype float64$"),
        (
            np.full((1, 1024), 4),
            r"^tokens must lie in \[0, 4\) \(A, C, G, T\); got values from 4 to 4$",
        ),
    ],
)
def test_ground_truth_rejects_bad_tokens(tokens, message):
    with pytest.raises(D3InputError, match=message):
        ground_truth(tokens)


# -- the sequences --------------------------------------------------------------------------


def test_most_sampled_sequences_have_a_tss_peak_near_the_centre():
    tokens = sample_sequences(np.random.default_rng(0), 400)
    assert tokens.shape == (400, 1024)
    assert tokens.dtype == np.uint8
    peak = ground_truth(tokens)[..., 0].argmax(axis=1)
    central = ((peak >= 448) & (peak <= 576)).mean()
    assert 0.85 < central < 0.95  # a TATA box is planted in 90 % of them


def test_peak_heights_spread_over_the_planted_range():
    heights = ground_truth(sample_sequences(np.random.default_rng(1), 400))[..., 0].max(axis=1)
    assert set(np.unique(heights)) >= {0.0, 1.0, 2.0, 3.0, 4.0, 5.0}


# -- the file -------------------------------------------------------------------------------


def test_the_file_has_the_real_layout(tiny_npz):
    with np.load(tiny_npz, allow_pickle=False) as archive:
        assert archive.files == ["train", "valid", "test"]
        for key, n in SIZES["tiny"].items():
            array = archive[key]
            assert array.shape == (n, 1024, 6)
            assert array.dtype == np.float32
            np.testing.assert_array_equal(array[..., :4].sum(axis=-1), 1.0)
            assert set(np.unique(array[..., :4])) == {0.0, 1.0}
            assert (array[..., 4:] >= 0).all()


def test_the_stored_cage_is_the_rule_up_to_noise(tiny_npz):
    with np.load(tiny_npz) as archive:
        array = archive["train"]
    truth = ground_truth(array[..., :4].argmax(axis=-1))[..., 0]
    cage = array[..., 4]
    assert np.corrcoef(truth.ravel(), cage.ravel())[0, 1] > 0.85
    # The highest measured position lies on a peak of the rule in every sequence that has one.
    has_peak = truth.max(axis=1) > 0
    assert (truth[np.arange(len(truth)), cage.argmax(axis=1)][has_peak] > 0).all()
    assert cage[truth == 0].mean() == pytest.approx(0.05, rel=0.1)  # background counts only
    opposite = array[..., 5]
    assert np.corrcoef(truth.ravel(), opposite.ravel())[0, 1] < 0.05


def test_the_same_seed_writes_the_same_bytes(tiny_npz, tmp_path):
    again = write_synthetic(tmp_path / "again.npz", seed=0, size="tiny")
    assert _digest(again) == _digest(tiny_npz)


def test_another_seed_writes_other_data(tiny_npz, tmp_path):
    other = write_synthetic(tmp_path / "other.npz", seed=1, size="tiny")
    with np.load(tiny_npz) as first, np.load(other) as second:
        for key in ("train", "valid", "test"):
            assert not np.array_equal(first[key][..., :4], second[key][..., :4])


def test_the_small_size_has_the_demo_split_sizes(tmp_path):
    path = write_synthetic(tmp_path / "small.npz", size="small")
    with np.load(path) as archive:
        assert {key: len(archive[key]) for key in archive.files} == SIZES["small"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "data.npz"
    path.write_bytes(b"old")

    def fail(rng, n):
        raise RuntimeError("disk full")

    monkeypatch.setattr(synthetic, "_sample_rows", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        write_synthetic(path, size="tiny")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["data.npz"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": "huge"}, r"^size must be one of 'tiny', 'small', 'full'; got 'huge'$"),
        ({"seed": -1}, r"^seed must be a non-negative integer; got -1$"),
        ({"seed": 1.5}, r"^seed must be a non-negative integer; got 1.5$"),
        ({"seed": True}, r"^seed must be a non-negative integer; got True$"),
    ],
)
def test_write_synthetic_rejects_bad_arguments(tmp_path, kwargs, message):
    with pytest.raises(D3ConfigError, match=message):
        write_synthetic(tmp_path / "data.npz", **kwargs)
    assert not list(tmp_path.iterdir())
