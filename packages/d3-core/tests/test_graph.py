"""Graphs: rate and transition matrices, staggered score, reverse rate, score entropy."""

import pytest
import torch

from d3_core.diffusion.graph import AbsorbingGraph, UniformGraph, build_graph
from d3_core.errors import D3ConfigError

# torch.linalg.matrix_exp, the reference here, is accurate to ~1e-9 relative at some sigma.
GRAPHS = [UniformGraph(4), AbsorbingGraph(4), UniformGraph(7)]
SIGMAS = [1e-4, 0.03, 0.7, 3.0, 20.0]


def _all_tokens(graph):
    return torch.arange(graph.num_states)


def _true_ratios(graph, sigma, x, x0):
    """r_y = P_sigma(x0 -> y) / P_sigma(x0 -> x) from the matrix exponential."""
    p = torch.linalg.matrix_exp(sigma * graph.rate_matrix())[x0]  # (..., S)
    return p / p.gather(-1, x[..., None])


def _brute_force_entropy(graph, log_score, sigma, x, x0):
    """sum_{y != x} Q(y, x) (e^s_y - r_y s_y + K(r_y)), straight from the definition."""
    q = graph.rate_matrix()
    r = _true_ratios(graph, sigma, x, x0)
    total = torch.zeros(x.shape, dtype=torch.float64)
    for y in range(graph.num_states):
        weight = q[y][x] * (x != y)  # Q(y, x) for y != x
        ry, sy = r[..., y], log_score[..., y]
        kernel = torch.where(ry > 0, ry * (ry.clamp_min(1e-300).log() - 1), 0.0)
        total += weight * (sy.exp() - ry * sy + kernel)
    return total


@pytest.mark.parametrize("graph", GRAPHS, ids=repr)
def test_rate_matrix_rows_sum_to_zero_with_nonnegative_off_diagonal(graph):
    q = graph.rate_matrix()
    assert torch.allclose(q.sum(1), torch.zeros(graph.num_states, dtype=q.dtype), atol=1e-15)
    assert (q - torch.diag(q.diag()) >= 0).all()


@pytest.mark.parametrize("graph", GRAPHS, ids=repr)
@pytest.mark.parametrize("sigma", SIGMAS)
def test_transition_rows_sum_to_one_and_match_the_matrix_exponential(graph, sigma):
    x = _all_tokens(graph)
    expected = torch.linalg.matrix_exp(sigma * graph.rate_matrix())
    got = graph.transition(x, torch.tensor(sigma, dtype=torch.float64))
    assert torch.allclose(got.sum(-1), torch.ones(len(x), dtype=got.dtype))
    assert torch.allclose(got, expected, rtol=1e-8, atol=1e-14)
    got_t = graph.transp_transition(x, torch.tensor(sigma, dtype=torch.float64))
    assert torch.allclose(got_t, expected.t(), rtol=1e-8, atol=1e-14)


@pytest.mark.parametrize("graph", GRAPHS, ids=repr)
def test_transition_accepts_a_sigma_per_sequence(graph):
    x = torch.randint(0, graph.num_states, (3, 5))
    sigma = torch.tensor([[0.1], [1.0], [5.0]], dtype=torch.float64)
    got = graph.transition(x, sigma)
    for b in range(3):
        expected = torch.linalg.matrix_exp(sigma[b, 0] * graph.rate_matrix())[x[b]]
        assert torch.allclose(got[b], expected)


@pytest.mark.parametrize("graph", GRAPHS, ids=repr)
@pytest.mark.parametrize("dsigma", [1e-4, 0.2, 2.0])
def test_staggered_score_equals_exp_of_minus_dsigma_q_transposed_times_s(graph, dsigma):
    score = torch.rand(6, graph.num_states, dtype=torch.float64) * 3
    expected = score @ torch.linalg.matrix_exp(-dsigma * graph.rate_matrix())  # (exp(-dQ)^T s)^T
    got = graph.staggered_score(score, torch.tensor(dsigma, dtype=torch.float64))
    assert torch.allclose(got, expected, rtol=1e-8)


@pytest.mark.parametrize("graph", GRAPHS, ids=repr)
def test_reverse_rate_rows_sum_to_zero_and_weight_scores_by_incoming_rates(graph):
    x = torch.randint(0, graph.num_states, (4, 9))
    score = torch.rand(4, 9, graph.num_states) + 0.1
    rate = graph.reverse_rate(x, score)
    assert torch.allclose(rate.sum(-1), torch.zeros(4, 9), atol=1e-6)
    q = graph.rate_matrix(torch.float32)
    off = q.t()[x] * score  # s_y Q(y, x)
    keep = torch.nn.functional.one_hot(x, graph.num_states) == 0
    assert torch.allclose(rate[keep], off[keep])


@pytest.mark.parametrize("graph", GRAPHS, ids=repr)
@pytest.mark.parametrize("sigma", [0.05, 1.5])
def test_forward_samples_follow_the_transition_probabilities(graph, sigma):
    n = 40_000
    gen = torch.Generator().manual_seed(1)
    x0 = torch.full((n,), 1)
    xt = graph.sample_transition(x0, torch.tensor(sigma), generator=gen)
    freq = torch.bincount(xt, minlength=graph.num_states).double() / n
    expected = graph.transition(torch.tensor([1]), torch.tensor(sigma, dtype=torch.float64))[0]
    # 5 standard errors of a binomial proportion
    assert torch.all((freq - expected).abs() <= 5 * (expected * (1 - expected) / n).sqrt() + 1e-9)


def test_uniform_limit_is_uniform_and_absorbing_limit_is_all_mask():
    gen = torch.Generator().manual_seed(0)
    draws = UniformGraph(4).sample_limit(200, 100, generator=gen)
    freq = torch.bincount(draws.flatten(), minlength=4) / draws.numel()
    assert torch.allclose(freq, torch.full((4,), 0.25, dtype=freq.dtype), atol=0.01)
    assert (AbsorbingGraph(4).sample_limit(3, 5) == 4).all()


@pytest.mark.parametrize("graph", GRAPHS, ids=repr)
def test_transition_at_large_sigma_reaches_the_limit_distribution(graph):
    p = graph.transition(_all_tokens(graph), torch.tensor(60.0, dtype=torch.float64))
    limit = (
        torch.bincount(
            graph.sample_limit(4000, generator=torch.Generator().manual_seed(0)).flatten(),
            minlength=graph.num_states,
        ).double()
        / 4000
    )
    assert torch.allclose(p, limit.expand_as(p), atol=0.03)


@pytest.mark.parametrize("graph", GRAPHS, ids=repr)
@pytest.mark.parametrize("sigma", SIGMAS)
def test_score_entropy_equals_its_brute_force_definition(graph, sigma):
    gen = torch.Generator().manual_seed(2)
    x0 = torch.randint(0, graph.num_states - graph.absorbing, (64,), generator=gen)
    x = graph.sample_transition(x0, torch.tensor(sigma), generator=gen)
    x[:8] = x0[:8]  # both cases, moved and stayed, are present whatever sigma is
    log_score = torch.randn(64, graph.num_states, dtype=torch.float64, generator=gen)
    sig = torch.tensor(sigma, dtype=torch.float64)
    got = graph.score_entropy(log_score, sig, x, x0)
    expected = _brute_force_entropy(graph, log_score, sig, x, x0)
    assert torch.allclose(got, expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("graph", GRAPHS, ids=repr)
@pytest.mark.parametrize("sigma", SIGMAS)
def test_score_entropy_is_zero_with_zero_gradient_at_the_true_ratios(graph, sigma):
    states = graph.num_states - graph.absorbing
    x0 = torch.arange(states).repeat_interleave(graph.num_states)
    x = _all_tokens(graph).repeat(states)  # every (x0, x) pair
    sig = torch.tensor(sigma, dtype=torch.float64)
    r = _true_ratios(graph, sig, x, x0)
    keep = r[torch.arange(len(x)), x] > 0  # x reachable from x0
    x, x0, r = x[keep], x0[keep], r[keep]
    log_score = torch.where(r > 0, r.clamp_min(1e-300).log(), -80.0).requires_grad_(True)
    entropy = graph.score_entropy(log_score, sig, x, x0)
    scale = 1.0 + r.max().item() * max(1.0, r.max().log().item())
    assert entropy.abs().max() < 1e-12 * scale
    (grad,) = torch.autograd.grad(entropy.sum(), log_score)
    assert grad.abs().max() < 1e-10 * scale


@pytest.mark.parametrize("graph", GRAPHS, ids=repr)
def test_score_entropy_is_positive_away_from_the_true_ratios(graph):
    gen = torch.Generator().manual_seed(3)
    x0 = torch.randint(0, graph.num_states - graph.absorbing, (500,), generator=gen)
    x = graph.sample_transition(x0, torch.tensor(1.0), generator=gen)
    log_score = torch.randn(500, graph.num_states, dtype=torch.float64, generator=gen) * 2
    entropy = graph.score_entropy(log_score, torch.tensor(1.0, dtype=torch.float64), x, x0)
    assert (entropy >= 0).all()
    if not graph.absorbing:
        assert (entropy > 0).all()


@pytest.mark.parametrize("graph", GRAPHS, ids=repr)
def test_score_entropy_gives_no_gradient_to_the_current_token(graph):
    x0 = torch.randint(0, graph.num_states - graph.absorbing, (50,))
    x = graph.sample_transition(x0, torch.tensor(2.0))
    log_score = torch.randn(50, graph.num_states, dtype=torch.float64, requires_grad=True)
    graph.score_entropy(log_score, torch.tensor(2.0, dtype=torch.float64), x, x0).sum().backward()
    assert (log_score.grad.gather(-1, x[:, None]) == 0).all()


def test_uniform_score_entropy_keeps_precision_at_the_smallest_noise_in_float64():
    graph, sigma = UniformGraph(4), torch.tensor(1e-4, dtype=torch.float64)
    x0 = torch.tensor([0, 0])
    x = torch.tensor([0, 2])
    r = _true_ratios(graph, sigma, x, x0)
    log_score = r.log() + 1e-3  # slightly off the optimum: SE ~ 1e-6 relative to its terms
    got = graph.score_entropy(log_score, sigma, x, x0)
    expected = _brute_force_entropy(graph, log_score, sigma, x, x0)
    assert torch.allclose(got, expected, rtol=1e-6)


def test_build_graph_accepts_both_names():
    assert isinstance(build_graph("uniform"), UniformGraph)
    absorbing = build_graph("Absorbing", 4)
    assert absorbing.num_states == 5 and absorbing.mask == 4


def test_build_graph_rejects_an_unknown_name():
    with pytest.raises(D3ConfigError, match=r"unknown graph 'masked'; choose one of"):
        build_graph("masked")


def test_uniform_graph_needs_two_states():
    with pytest.raises(D3ConfigError, match="at least 2 states, got 1"):
        UniformGraph(1)
