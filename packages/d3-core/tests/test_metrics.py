"""Paired metrics of designed sequences: sp-MSE and per-column Pearson correlation."""

import re
import warnings

import numpy as np
import pytest

from d3_core.errors import D3InputError
from d3_core.evaluation.metrics import pearson, sp_mse


def exactly(message: str) -> str:
    """A `match` pattern for the whole of `message`."""
    return f"^{re.escape(message)}$"


def test_sp_mse_is_the_mean_squared_difference_over_sequences_and_outputs():
    real = np.array([[1.0, 2.0], [3.0, 4.0]])
    generated = np.array([[1.0, 0.0], [5.0, 4.0]])
    assert sp_mse(real, generated) == 2.0  # (0 + 4 + 4 + 0) / 4


def test_sp_mse_averages_over_every_trailing_axis():
    real = np.zeros((2, 3, 1))
    generated = np.arange(6.0).reshape(2, 3, 1)
    assert sp_mse(real, generated) == pytest.approx(55 / 6)


def test_sp_mse_is_zero_for_identical_scores_and_a_python_float():
    scores = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
    result = sp_mse(scores, scores.copy())
    assert result == 0.0 and type(result) is float


def test_sp_mse_is_symmetric():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(5, 2)), rng.normal(size=(5, 2))
    assert sp_mse(a, b) == sp_mse(b, a)


def test_sp_mse_accepts_lists():
    assert sp_mse([[1.0], [2.0]], [[0.0], [0.0]]) == 2.5


def test_paired_metrics_refuse_scores_of_different_shapes():
    message = "paired metrics need predictions of equal shape; got real (2, 2) and generated (2, 3)"
    with pytest.raises(D3InputError, match=exactly(message)):
        sp_mse(np.zeros((2, 2)), np.zeros((2, 3)))
    with pytest.raises(D3InputError, match=exactly(message)):
        pearson(np.zeros((2, 2)), np.zeros((2, 3)))


def test_pearson_is_computed_per_column():
    x = np.array([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0], [3.0, 3.0, 3.0], [4.0, 4.0, 4.0]])
    y = np.array([[2.0, 4.0, 1.0], [4.0, 3.0, 3.0], [6.0, 2.0, 2.0], [8.0, 1.0, 4.0]])
    assert pearson(x, y) == pytest.approx([1.0, -1.0, 0.8])


def test_pearson_is_nan_for_a_constant_column_without_a_warning():
    x = np.array([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0]])
    y = np.array([[1.0, 1.0], [2.0, 2.0], [4.0, 3.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = pearson(x, y)
    assert r.shape == (2,) and np.isnan(r[1]) and not np.isnan(r[0])


def test_pearson_does_not_change_under_scaling_and_shifting():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(20, 2)), rng.normal(size=(20, 2))
    assert pearson(3 * x + 1, y - 7) == pytest.approx(pearson(x, y))
    assert pearson(x, y) == pytest.approx(pearson(y, x))


def test_pearson_does_not_modify_its_inputs():
    x, y = np.array([[1.0], [2.0], [4.0]]), np.array([[1.0], [3.0], [2.0]])
    before = (x.copy(), y.copy())
    pearson(x, y)
    assert np.array_equal(x, before[0]) and np.array_equal(y, before[1])
