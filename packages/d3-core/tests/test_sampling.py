"""Samplers fed the exact score of a product distribution reproduce its marginals."""

import math

import pytest
import torch

from d3_core.diffusion.graph import AbsorbingGraph, UniformGraph
from d3_core.diffusion.noise import GeometricNoise, LogLinearNoise
from d3_core.diffusion.sampling import FixedPositions, sample, sample_categorical
from d3_core.errors import D3ConfigError, D3InputError

LENGTH, N = 6, 4000


def _target(num_states: int) -> torch.Tensor:
    """A peaked per-position distribution p (L, V): far from uniform, so a blind sampler fails."""
    gen = torch.Generator().manual_seed(7)
    logits = torch.randn(LENGTH, num_states, generator=gen, dtype=torch.float64) * 1.5
    return logits.softmax(-1)


def exact_score_fn(p: torch.Tensor, graph, calls=None):
    """Exact log-score of p_sigma = p exp(sigma Q) per position: log p_sigma(y) - log p_sigma(x)."""
    q = graph.rate_matrix()
    if graph.absorbing:  # data distribution over the data states only; mask column zero
        p = torch.cat([p, torch.zeros(p.shape[0], 1, dtype=p.dtype)], dim=1)

    def score_fn(x, labels, sigma):
        if calls is not None:
            calls.append(labels.clone())
        assert (sigma == sigma[0]).all(), "samplers use one sigma for the whole batch"
        p_sigma = p @ torch.linalg.matrix_exp(sigma[0].double() * q)  # (L, S)
        logp = p_sigma.clamp_min(1e-300).log()
        current = logp[torch.arange(x.shape[1]), x]  # (B, L): log p_sigma(x_l)
        return (logp[None] - current[..., None]).float()  # (B, L, S)

    return score_fn


def _marginals(tokens: torch.Tensor, num_states: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(tokens, num_states).double().mean(0)  # (L, V)


def _tv(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return 0.5 * (a - b).abs().sum(-1)  # per position


def _tv_bound(p: torch.Tensor, n: int) -> float:
    """4x the expected TV of an n-sample empirical distribution, 0.5 sum sqrt(2p(1-p)/(pi n))."""
    expected = 0.5 * (2 * p * (1 - p) / (math.pi * n)).sqrt().sum(-1)
    return 4 * expected.max().item()


CASES = [
    ("analytic", UniformGraph(4), GeometricNoise(), 32),
    ("euler", UniformGraph(4), GeometricNoise(), 256),
    ("analytic", AbsorbingGraph(4), LogLinearNoise(), 32),
    ("euler", AbsorbingGraph(4), LogLinearNoise(), 256),
]


@pytest.mark.parametrize(("predictor", "graph", "noise", "steps"), CASES, ids=str)
def test_sampler_with_the_exact_score_reproduces_the_marginals(predictor, graph, noise, steps):
    p = _target(4)
    assert _tv(p, torch.full_like(p, 0.25)).min() > 0.2  # a sampler ignoring the score would fail
    labels = torch.zeros(N, 1)
    tokens = sample(
        exact_score_fn(p, graph), labels, length=LENGTH, graph=graph, noise=noise,
        predictor=predictor, steps=steps, generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    assert tokens.shape == (N, LENGTH) and tokens.dtype == torch.int64
    assert tokens.max() < 4  # the denoiser never leaves a mask token
    tv = _tv(_marginals(tokens, 4), p)
    assert tv.max() < _tv_bound(p, N), f"per-position TV {tv.tolist()}"


@pytest.mark.parametrize("predictor", ["analytic", "euler"])
def test_sampler_passes_the_same_labels_to_every_call(predictor):
    graph, calls = UniformGraph(4), []
    labels = torch.randn(5, 2)
    sample(
        exact_score_fn(_target(4), graph, calls=calls), labels, length=LENGTH, graph=graph,
        noise=GeometricNoise(), predictor=predictor, steps=7,
    )  # fmt: skip
    assert len(calls) == 7 + 1  # steps plus the final denoiser
    assert all(torch.equal(c, labels) for c in calls)


@pytest.mark.parametrize("predictor", ["analytic", "euler"])
def test_sampler_keeps_fixed_positions_and_still_samples_the_others(predictor):
    graph, p = UniformGraph(4), _target(4)
    mask = torch.tensor([False, True, False, False, True, False])
    least_likely = p.argmin(-1)  # fix two positions at their least likely token
    fixed = FixedPositions(mask=mask, tokens=least_likely)
    tokens = sample(
        exact_score_fn(p, graph), torch.zeros(N, 1), length=LENGTH, graph=graph,
        noise=GeometricNoise(), predictor=predictor, steps=64 if predictor == "analytic" else 256,
        fixed=fixed, generator=torch.Generator().manual_seed(1),
    )  # fmt: skip
    assert (tokens[:, mask] == least_likely[mask]).all()
    tv = _tv(_marginals(tokens, 4), p)[~mask]
    assert tv.max() < _tv_bound(p, N)


def test_fixed_positions_can_differ_per_sequence():
    graph = UniformGraph(4)
    tokens_fixed = torch.randint(0, 4, (3, LENGTH))
    mask = torch.zeros(3, LENGTH, dtype=torch.bool)
    mask[0, 0] = mask[1, 5] = mask[2, 2] = True
    out = sample(
        exact_score_fn(_target(4), graph), torch.zeros(3, 1), length=LENGTH, graph=graph,
        noise=GeometricNoise(), steps=4, fixed=FixedPositions(mask, tokens_fixed),
    )  # fmt: skip
    assert torch.equal(out[mask], tokens_fixed[mask])


@pytest.mark.parametrize("predictor", ["analytic", "euler"])
@pytest.mark.parametrize("graph", [UniformGraph(4), AbsorbingGraph(4)], ids=repr)
def test_per_sequence_generators_make_results_independent_of_the_batch(predictor, graph):
    score_fn = exact_score_fn(_target(4), graph)
    seeds = [11, 12, 13, 14, 15, 16]

    def run(idx):
        gens = [torch.Generator().manual_seed(seeds[i]) for i in idx]
        return sample(
            score_fn, torch.zeros(len(idx), 1), length=LENGTH, graph=graph,
            noise=GeometricNoise(), steps=10, generator=gens, predictor=predictor,
        )  # fmt: skip

    full = run(range(6))
    assert torch.equal(run([2, 3]), full[2:4])
    assert torch.equal(run([5]), full[5:])


def test_same_seed_gives_the_same_samples():
    graph = UniformGraph(4)
    kwargs = {"length": LENGTH, "graph": graph, "noise": GeometricNoise(), "steps": 5}
    fn = exact_score_fn(_target(4), graph)
    a = sample(fn, torch.zeros(8, 1), generator=torch.Generator().manual_seed(3), **kwargs)
    b = sample(fn, torch.zeros(8, 1), generator=torch.Generator().manual_seed(3), **kwargs)
    assert torch.equal(a, b)


def test_categorical_draws_follow_unnormalised_weights_and_ignore_negative_mass():
    weights = torch.tensor([2.0, 1.0, 0.0, -0.5]).expand(20_000, 4)
    draws = sample_categorical(weights, torch.Generator().manual_seed(0))
    freq = torch.bincount(draws, minlength=4) / 20_000
    assert abs(freq[0] - 2 / 3) < 0.015 and freq[2] == 0 and freq[3] == 0


def test_sample_rejects_an_unknown_predictor():
    with pytest.raises(D3ConfigError, match=r"unknown predictor 'heun'; choose one of"):
        sample(lambda *a: None, torch.zeros(2, 1), length=3, graph=UniformGraph(),
               noise=GeometricNoise(), predictor="heun")  # fmt: skip


def test_sample_rejects_zero_steps():
    with pytest.raises(D3ConfigError, match="at least 1 step, got steps=0"):
        sample(lambda *a: None, torch.zeros(2, 1), length=3, graph=UniformGraph(),
               noise=GeometricNoise(), steps=0)  # fmt: skip


def test_sample_rejects_a_wrong_number_of_generators():
    gens = [torch.Generator() for _ in range(3)]
    with pytest.raises(D3InputError, match="got 3 generators for a batch of 2"):
        sample(lambda *a: None, torch.zeros(2, 1), length=3, graph=UniformGraph(),
               noise=GeometricNoise(), generator=gens)  # fmt: skip


def test_fixed_positions_reject_a_non_boolean_mask():
    with pytest.raises(D3InputError, match=r"mask must be bool, got torch\.int64"):
        FixedPositions(mask=torch.tensor([0, 1]), tokens=torch.tensor([0, 1]))


def test_fixed_positions_reject_a_shape_that_does_not_fit():
    graph = UniformGraph(4)
    fixed = FixedPositions(torch.tensor([True, False]), torch.tensor([0, 1]))
    with pytest.raises(D3InputError, match=r"fixed positions \(2,\) do not fit tokens \(2, 6\)"):
        sample(exact_score_fn(_target(4), graph), torch.zeros(2, 1), length=LENGTH,
               graph=graph, noise=GeometricNoise(), steps=2, fixed=fixed)  # fmt: skip
