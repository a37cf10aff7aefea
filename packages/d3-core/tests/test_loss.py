"""The diffusion-weighted denoising score entropy loss."""

import torch

from d3_core.diffusion.graph import UniformGraph
from d3_core.diffusion.loss import score_entropy_loss
from d3_core.diffusion.noise import GeometricNoise


def _brute_force_loss(log_score, sigma, dsigma, xt, x0, graph):
    q = graph.rate_matrix()
    p = torch.linalg.matrix_exp(sigma[:, None, None, None].double() * q)[  # (B, 1, V, V)
        :, 0
    ]
    rows = torch.stack([p[b][x0[b]] for b in range(len(x0))])  # (B, L, V): P(x0 -> y)
    r = rows / rows.gather(-1, xt[..., None])
    s = log_score.double()
    terms = (s.exp() - r * s + r * (r.log() - 1)) / graph.num_states
    terms = terms * (torch.nn.functional.one_hot(xt, graph.num_states) == 0)
    return (dsigma[:, None].double() * terms.sum(-1)).sum(-1)


def test_loss_equals_the_weighted_sum_of_score_entropies_over_positions():
    graph, noise = UniformGraph(4), GeometricNoise()
    x0 = torch.randint(0, 4, (5, 12), generator=torch.Generator().manual_seed(0))
    t = torch.tensor([1e-3, 0.1, 0.4, 0.8, 1.0])
    table = torch.randn(5, 12, 4, generator=torch.Generator().manual_seed(1))
    seen = {}

    def score_fn(x, labels, sigma):
        seen.update(x=x, sigma=sigma)
        return table

    loss = score_entropy_loss(
        score_fn, x0, torch.zeros(5, 2), graph=graph, noise=noise, t=t,
        generator=torch.Generator().manual_seed(2),
    )  # fmt: skip
    sigma, dsigma = noise(t)
    assert torch.equal(seen["sigma"], sigma)
    expected = _brute_force_loss(table, sigma, dsigma, seen["x"], x0, graph)
    assert loss.dtype == torch.float32 and loss.shape == (5,)
    assert torch.allclose(loss.double(), expected, rtol=1e-5)


def test_noised_tokens_come_from_the_forward_process_at_the_drawn_noise():
    graph, noise = UniformGraph(4), GeometricNoise()
    x0 = torch.zeros(2, 20_000, dtype=torch.int64)
    t = torch.tensor([0.3, 0.9])
    seen = {}

    def score_fn(x, labels, sigma):
        seen["x"] = x
        return torch.zeros(*x.shape, 4)

    score_entropy_loss(score_fn, x0, torch.zeros(2, 1), graph=graph, noise=noise, t=t)
    stayed = (seen["x"] == 0).double().mean(-1)
    expected = graph.transition(torch.zeros(2, dtype=torch.int64), noise.total_noise(t))[:, 0]
    assert torch.allclose(stayed, expected.double(), atol=0.015)


def test_loss_is_nonnegative_and_differentiable_with_drawn_times():
    graph, noise = UniformGraph(4), GeometricNoise()
    weights = torch.randn(4, 4, requires_grad=True)

    def score_fn(x, labels, sigma):
        return torch.nn.functional.one_hot(x, 4).float() @ weights

    x0 = torch.randint(0, 4, (64, 30))
    loss = score_entropy_loss(
        score_fn, x0, torch.zeros(64, 1), graph=graph, noise=noise,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    assert (loss >= 0).all()
    loss.mean().backward()
    assert weights.grad is not None and weights.grad.abs().sum() > 0


def test_loss_prefers_the_true_ratios_over_a_wrong_guess():
    """Training signal: the exact denoising scores of a known x0 give a lower loss."""
    graph, noise = UniformGraph(4), GeometricNoise()
    x0 = torch.randint(0, 4, (256, 16), generator=torch.Generator().manual_seed(5))
    t = torch.full((256,), 0.5)

    def exact(x, labels, sigma):  # log P(x0 -> y) / P(x0 -> x): the posterior-free ideal
        p = graph.transition(x0, sigma[:, None])
        return (p / p.gather(-1, x[..., None])).log()

    def wrong(x, labels, sigma):
        return torch.zeros(*x.shape, 4)

    gen = lambda: torch.Generator().manual_seed(9)  # noqa: E731
    kw = {"graph": graph, "noise": noise, "t": t}
    good = score_entropy_loss(exact, x0, torch.zeros(256, 1), generator=gen(), **kw)
    bad = score_entropy_loss(wrong, x0, torch.zeros(256, 1), generator=gen(), **kw)
    assert good.abs().max() < 1e-4 and bad.mean() > 1.0
