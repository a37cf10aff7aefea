"""Tests of derived seeds."""

from d3_core.seeds import step_seed


def test_equal_parts_give_equal_seeds():
    assert step_seed(42, 7, 0) == step_seed(42, 7, 0)


def test_seeds_fit_in_63_bits_so_torch_accepts_them():
    assert all(0 <= step_seed(s, i) < 2**63 for s in range(5) for i in range(50))


def test_neighbouring_steps_ranks_and_run_seeds_give_distinct_seeds():
    seeds = {
        step_seed(seed, step, rank) for seed in range(3) for step in range(100) for rank in range(4)
    }
    assert len(seeds) == 3 * 100 * 4


def test_the_order_of_the_parts_matters():
    assert step_seed(1, 2) != step_seed(2, 1)


def test_a_negative_part_is_refused_in_words():
    import pytest

    from d3_core.errors import D3ConfigError
    from d3_core.seeds import check_seed

    with pytest.raises(D3ConfigError, match=r"must be >= 0, got \(-1, 3\)"):
        step_seed(-1, 3)
    with pytest.raises(D3ConfigError, match=r"^--seed must be between 0 and 2\*\*63 - 1, got -5$"):
        check_seed(-5, option="--seed")
    with pytest.raises(D3ConfigError, match="whole number"):
        check_seed(1.5)
    assert check_seed(2**63 - 1) == 2**63 - 1
