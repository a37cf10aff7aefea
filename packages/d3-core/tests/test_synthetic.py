"""Synthetic DNA: encoding, motifs, planting with a seed, finding and counting occurrences."""

import re

import numpy as np
import pytest

from d3_core.data.synthetic import (
    ALPHABET,
    Motif,
    count_motifs,
    decode,
    encode,
    find_motif,
    plant_motifs,
)
from d3_core.errors import D3ConfigError, D3InputError

GATA = Motif("GATA", "GATA")
TOY = Motif("toy", "ACGTAC")


def exactly(message: str) -> str:
    """A `match` pattern for the whole of `message`."""
    return f"^{re.escape(message)}$"


# -- encoding ----------------------------------------------------------------------------------


def test_encode_maps_acgt_to_0123_in_any_case():
    tokens = encode("ACGTacgt")
    assert tokens.dtype == np.uint8 and tokens.tolist() == [0, 1, 2, 3, 0, 1, 2, 3]
    assert ALPHABET == "ACGT"


def test_decode_inverts_encode():
    sequence = "".join(np.random.default_rng(0).choice(list("ACGT"), size=50))
    assert decode(encode(sequence)) == sequence
    assert decode(encode("acgt")) == "ACGT"
    assert encode("").tolist() == [] and decode(np.array([], dtype=np.uint8)) == ""


@pytest.mark.parametrize(
    ("sequence", "bad"), [("ACNX", "['N', 'X']"), ("acn", "['N']"), ("AC GT", "[' ']")]
)
def test_encode_refuses_other_letters_naming_them(sequence, bad):
    message = f"sequence {sequence!r} holds letters other than A, C, G, T: {bad}"
    with pytest.raises(D3ConfigError, match=exactly(message)):
        encode(sequence)


# -- motifs ------------------------------------------------------------------------------------


def test_a_motif_s_tokens_are_its_encoded_word():
    assert Motif("m", "gata").tokens.tolist() == [2, 0, 3, 0]


def test_a_motif_with_an_empty_sequence_is_refused():
    with pytest.raises(D3ConfigError, match=exactly("motif 'm' has an empty sequence")):
        Motif("m", "")


def test_a_motif_with_a_letter_other_than_acgt_is_refused():
    message = "sequence 'GANA' holds letters other than A, C, G, T: ['N']"
    with pytest.raises(D3ConfigError, match=exactly(message)):
        Motif("m", "GANA")


# -- finding and counting ----------------------------------------------------------------------


def test_find_motif_marks_each_start_position():
    tokens = np.stack([encode("ACGTACGA"), encode("TTTTTTTT")])
    hits = find_motif(tokens, Motif("m", "ACG"))
    assert hits.dtype == bool and hits.shape == (2, 8)
    assert np.flatnonzero(hits[0]).tolist() == [0, 4]
    assert not hits[1].any()


def test_find_motif_finds_overlapping_occurrences():
    hits = find_motif(encode("AAAAC")[None], Motif("m", "AA"))
    assert np.flatnonzero(hits[0]).tolist() == [0, 1, 2]


def test_find_motif_matches_up_to_the_last_base():
    hits = find_motif(encode("TTGATA")[None], GATA)
    assert np.flatnonzero(hits[0]).tolist() == [2]


def test_a_motif_longer_than_the_sequence_is_never_found():
    hits = find_motif(encode("ACG")[None], TOY)
    assert hits.shape == (1, 3) and not hits.any()


def test_count_motifs_counts_each_motif_in_each_sequence():
    tokens = np.stack([encode("GATAGATAACGTAC"), encode("CCCCCCCCCCCCCC")])
    counts = count_motifs(tokens, (GATA, TOY))
    assert counts.dtype == np.int64 and counts.tolist() == [[2, 1], [0, 0]]


# -- planting ----------------------------------------------------------------------------------


def _plant(seed, n=200, length=64, motifs=(GATA, TOY), **kwargs):
    return plant_motifs(np.random.default_rng(seed), n, length, motifs, **kwargs)


def test_planting_returns_tokens_and_counts_of_the_documented_shapes():
    tokens, counts = _plant(0, n=7, length=60)
    assert tokens.dtype == np.uint8 and tokens.shape == (7, 60)
    assert counts.dtype == np.int64 and counts.shape == (7, 2)
    assert tokens.max() <= 3


def test_planting_is_determined_by_the_seed():
    first, again, other = _plant(3), _plant(3), _plant(4)
    assert np.array_equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    assert not np.array_equal(first[0], other[0])


def test_planted_counts_lie_between_zero_and_max_copies_and_take_every_value():
    _, counts = _plant(0, n=400, max_copies=2)
    assert counts.min() >= 0 and counts.max() <= 2
    assert set(np.unique(counts).tolist()) == {0, 1, 2}


@pytest.mark.parametrize("max_copies", [1, 3, 5])
def test_every_planted_copy_is_found(max_copies):
    # Dense planting (up to half the sequence) still leaves every copy whole.
    tokens, counts = _plant(1, n=300, length=100, max_copies=max_copies)
    found = count_motifs(tokens, (GATA, TOY))
    assert (found >= counts).all()


def test_chance_matches_are_rare():
    tokens, counts = _plant(2, n=500, length=64, motifs=(TOY,), max_copies=2, gc=0.2)
    found = count_motifs(tokens, (TOY,))
    assert (found != counts).mean() < 0.05


def test_the_background_has_the_requested_gc_content():
    for gc in (0.2, 0.42, 0.7):
        tokens, counts = _plant(0, n=1000, length=200, motifs=(), gc=gc)
        assert counts.shape == (1000, 0)
        share = np.bincount(tokens.ravel(), minlength=4) / tokens.size  # A, C, G, T
        assert share[1] + share[2] == pytest.approx(gc, abs=0.01)
        assert share[0] == pytest.approx(share[3], abs=0.01)
        assert share[1] == pytest.approx(share[2], abs=0.01)


def test_motifs_that_cannot_fit_into_half_the_sequence_are_refused():
    message = (
        "3 copies of motifs of total width 10 do not fit into half of a 32-bp sequence; "
        "plant fewer or shorter motifs"
    )
    with pytest.raises(D3ConfigError, match=exactly(message)):
        _plant(0, length=32, max_copies=3)


def test_motifs_filling_exactly_half_the_sequence_are_accepted():
    tokens, counts = _plant(0, n=50, length=40, max_copies=2)  # 2 * 10 = 40 // 2
    assert (count_motifs(tokens, (GATA, TOY)) >= counts).all()


# --- MotifRule, check_tokens, check_size --------------------------------------------------------


def _rule(**changes):
    from d3_core.data.synthetic import MotifRule

    fields = {
        "motifs": (Motif("a", "ACGTAC"), Motif("b", "TTTGGG")),
        "baseline": (-1.0, 0.5),
        "weights": ((1.0, 0.0), (0.0, 2.0)),
        "interactions": ((0, 1, 0, 0.5),),
        "noise_sd": 0.1,
    }
    return MotifRule(**{**fields, **changes})


def test_a_motif_rule_scores_counts_weights_and_interactions():
    tokens = np.stack([encode("ACGTAC" + "A" * 4 + "TTTGGG" + "TTTGGG"), encode("C" * 22)])
    # first: n_a = 1, n_b = 2 -> (-1 + 1 + 0.5 * 1 * 2, 0.5 + 2 * 2); second: no motifs
    np.testing.assert_allclose(_rule().score(tokens), [[1.0, 4.5], [-1.0, 0.5]])


def test_a_motif_rule_draws_labels_that_follow_its_rule_up_to_the_noise():
    tokens, labels = _rule().draw(np.random.default_rng(0), 2000, 64)
    assert tokens.shape == (2000, 64) and labels.shape == (2000, 2)
    residual = labels - _rule().score(tokens)
    assert abs(residual.std() - 0.1) < 0.01


def test_a_motif_rule_refuses_weights_of_the_wrong_shape():
    with pytest.raises(
        D3ConfigError,
        match=r"^MotifRule weights must be \(motifs, labels\) = \(2, 2\), got \(2, 1\)$",
    ):
        _rule(weights=((1.0,), (2.0,)))


def test_a_motif_rule_refuses_interactions_out_of_range():
    with pytest.raises(D3ConfigError, match=r"interaction motifs \(0, 5\) out of range"):
        _rule(interactions=((0, 5, 0, 1.0),))
    with pytest.raises(D3ConfigError, match=r"interaction label 2 out of range"):
        _rule(interactions=((0, 1, 2, 1.0),))


def test_check_tokens_accepts_tensors_and_names_the_dataset_in_errors():
    import torch

    from d3_core.data.synthetic import check_tokens

    assert check_tokens(torch.zeros(2, 5, dtype=torch.long), length=5, dataset="Toy").shape == (
        2,
        5,
    )
    with pytest.raises(
        D3InputError, match=r"^ground_truth takes Toy tokens of shape \(N, 5\), got \(2, 4\)$"
    ):
        check_tokens(np.zeros((2, 4), dtype=int), length=5, dataset="Toy")
    with pytest.raises(D3InputError, match="integer tokens, got dtype float64"):
        check_tokens(np.zeros((2, 5)), length=5, dataset="Toy")
    with pytest.raises(
        D3InputError, match=r"tokens in \[0, 4\) \(A, C, G, T\), got values from 0 to 4"
    ):
        check_tokens(np.array([[0, 4, 1, 1, 1]]), length=5, dataset="Toy")


def test_check_size_lists_the_sizes_and_refuses_bad_seeds():
    from d3_core.data.synthetic import check_size

    sizes = {"tiny": (2, 1, 1), "small": (20, 5, 5)}
    assert check_size("small", 3, sizes) == (20, 5, 5)
    with pytest.raises(
        D3ConfigError,
        match=r"^unknown synthetic data size 'big'; use one of tiny, small \(tiny: 4 sequences, small: 30 sequences\)$",
    ):
        check_size("big", 0, sizes)
    for seed in (-1, 1.5, True):
        with pytest.raises(D3ConfigError, match="seed must be a non-negative integer"):
            check_size("tiny", seed, sizes)
