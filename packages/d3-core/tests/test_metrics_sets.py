"""Set metrics of docs/metrics.md#metrics checked against independent computations and reference
libraries."""

import itertools
import math
from collections import Counter

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import ks_2samp, mannwhitneyu

from d3_core.data.synthetic import Motif, plant_motifs
from d3_core.evaluation.metrics import (
    auroc,
    discriminability,
    diversity,
    js_distance,
    kmer_spectrum,
    ks_statistic,
    max_identity,
    memorisation,
    sp_mse,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def test_ks_is_scipys_two_sample_statistic_per_output_and_their_mean():
    rng = np.random.default_rng(0)
    real, generated = rng.normal(size=(300, 3)), rng.normal(0.3, 1.2, size=(250, 3))
    result = ks_statistic(real, generated)
    expected = [ks_2samp(real[:, j], generated[:, j]).statistic for j in range(3)]
    assert result["per_output"] == pytest.approx(expected, abs=0)
    assert result["mean"] == pytest.approx(np.mean(expected))


def _count_by_strings(tokens: np.ndarray, k: int) -> np.ndarray:
    """k-mer counts the slow, obvious way: strings and a Counter, indexed in A<C<G<T order."""
    counts = Counter()
    for row in tokens:
        text = "".join("ACGT"[t] for t in row)
        counts.update(text[i : i + k] for i in range(len(text) - k + 1))
    words = ["".join(w) for w in itertools.product("ACGT", repeat=k)]
    return np.array([counts[w] for w in words])


@pytest.mark.parametrize("k", [1, 3, 6])
def test_the_kmer_spectrum_counts_every_forward_strand_kmer(k):
    tokens = np.random.default_rng(1).integers(0, 4, size=(40, 50))
    spectrum = kmer_spectrum(tokens, k, chunk=7)  # chunks must not change the counts
    assert np.array_equal(spectrum, _count_by_strings(tokens, k))
    assert spectrum.sum() == 40 * (50 - k + 1)


def test_js_distance_is_scipys_on_the_same_spectra_and_the_textbook_formula():
    rng = np.random.default_rng(2)
    a, b = rng.integers(0, 4, size=(30, 80)), rng.integers(0, 4, size=(30, 80))
    p, q = kmer_spectrum(a, 3), kmer_spectrum(b, 3)
    result = js_distance(p, q)
    assert result == pytest.approx(jensenshannon(p / p.sum(), q / q.sum(), base=math.e))
    pn, qn = p / p.sum(), q / q.sum()
    m = (pn + qn) / 2

    def kl(x, y):
        keep = x > 0
        return np.sum(x[keep] * np.log(x[keep] / y[keep]))

    assert result == pytest.approx(math.sqrt(0.5 * kl(pn, m) + 0.5 * kl(qn, m)))
    assert js_distance(p, p) == 0.0


def test_memorisation_finds_planted_copies_exactly_at_1024_bp():
    rng = np.random.default_rng(3)
    train = rng.integers(0, 4, size=(300, 1024))
    mutated = train[7].copy()
    mutated[:10] = (mutated[:10] + 1) % 4  # ten positions changed
    generated = np.stack([train[5], mutated, rng.integers(0, 4, size=1024)])
    counts = max_identity(generated, train, chunk=64)
    assert counts.dtype == np.int32  # int8 would overflow past 127 identical positions
    assert counts[0] == 1024 and counts[1] == 1014
    assert 256 - 100 < counts[2] < 256 + 100  # a random sequence matches about a quarter
    result = memorisation(generated, train)
    assert result["max"] == 1.0 and result["exact_copies"] == pytest.approx(1 / 3)
    assert result["mean"] == pytest.approx((1024 + 1014 + counts[2]) / 3 / 1024)


def test_diversity_is_the_mean_nearest_neighbour_identity_without_self_matches():
    rng = np.random.default_rng(4)
    tokens = rng.integers(0, 4, size=(50, 200))
    assert diversity(tokens) < 0.4  # random sequences: about a quarter, plus the best of 49
    duplicated = np.concatenate([tokens, tokens[:1]])
    counts = max_identity(duplicated, duplicated, exclude_self=True)
    assert counts[0] == 200 and counts[-1] == 200


def test_auroc_is_the_mann_whitney_statistic():
    rng = np.random.default_rng(5)
    scores = np.round(rng.normal(size=200), 1)  # with ties
    labels = rng.integers(0, 2, size=200)
    u = mannwhitneyu(scores[labels == 1], scores[labels == 0]).statistic
    assert auroc(scores, labels) == pytest.approx(u / ((labels == 1).sum() * (labels == 0).sum()))


def test_sp_mse_of_a_set_against_itself_is_zero():
    predictions = np.random.default_rng(6).normal(size=(20, 2))
    assert sp_mse(predictions, predictions) == 0.0


def _real(n: int, seed: int) -> np.ndarray:
    """'Real' sequences: A/T-rich background with a planted motif, unlike uniform random ones."""
    tokens, _ = plant_motifs(np.random.default_rng(seed), n, 64, (Motif("m", "GATAAG"),),
                             max_copies=2, gc=0.25)  # fmt: skip
    return tokens


def test_a_discriminator_cannot_tell_two_halves_of_one_set_apart():
    real = _real(800, seed=7)
    result = discriminability(real[:400], real[400:], seed=0)
    assert 0.35 < result["auroc"] < 0.65, result
    assert (result["train"], result["valid"], result["test"]) == (560, 80, 160)


def test_a_discriminator_tells_real_from_random_sequences():
    real = _real(400, seed=8)
    random = np.random.default_rng(9).integers(0, 4, size=(400, 64))
    assert discriminability(real, random, seed=0)["auroc"] > 0.95
