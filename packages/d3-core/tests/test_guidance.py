"""Classifier-free and oracle guidance: the combination, its exact chain, and the null label."""

import math

import pytest
import torch

from d3_core.diffusion.graph import UniformGraph
from d3_core.diffusion.guidance import classifier_free, denoised_probs, null_labels, oracle_guided
from d3_core.diffusion.noise import GeometricNoise
from d3_core.diffusion.sampling import FixedPositions, sample
from d3_core.errors import D3ConfigError, D3InputError
from d3_core.models import ConvConfig, ConvScoreModel, TransformerConfig, TransformerScoreModel
from d3_core.training.step import drop_labels

GRAPH, NOISE = UniformGraph(4), GeometricNoise()
EPS = 1e-3


def _product(seed: int, length: int, peak: float = 1.5) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(length, 4, generator=gen, dtype=torch.float64) * peak).softmax(-1)


def _exact_log_score(p: torch.Tensor, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """log p_sigma(y) - log p_sigma(x_l) per position for the product distribution p (L, V)."""
    p_sigma = p @ torch.linalg.matrix_exp(sigma[0].double() * GRAPH.rate_matrix())
    logp = p_sigma.log()
    return logp[None] - logp[torch.arange(x.shape[1]), x][..., None]


def toy_score_fn(p_cond: torch.Tensor, p_uncond: torch.Tensor):
    """Exact scores of two product distributions: label row 0 -> p_cond, null label -> p_uncond."""

    def score_fn(x, labels, sigma):
        null = torch.isnan(labels).all(-1)  # (B,)
        cond = _exact_log_score(p_cond, x, sigma)
        uncond = _exact_log_score(p_uncond, x, sigma)
        return torch.where(null[:, None, None], uncond, cond).float()

    return score_fn


def guided_chain_law(p_cond, p_uncond, weight, steps=20_000):
    """The law at t = EPS of the reverse chain with rates Q(y, x) sigma'(t) s_c^(1+w) s_u^(-w),
    started uniform at t = 1: the forward (Kolmogorov) equation integrated on a fine grid."""
    length = p_cond.shape[0]
    law = torch.full((length, 4), 0.25, dtype=torch.float64)
    times = torch.linspace(1.0, EPS, steps + 1, dtype=torch.float64)
    q = GRAPH.rate_matrix()
    for i in range(steps):
        t_mid = (times[i] + times[i + 1]) / 2
        sigma, dsigma = NOISE(t_mid)
        dt = times[i] - times[i + 1]
        rates = []
        for p in (p_cond, p_uncond):
            p_sigma = p @ torch.linalg.matrix_exp(sigma * q)  # (L, V)
            rates.append(p_sigma[:, None, :] / p_sigma[:, :, None])  # s_y(x): (L, x, y)
        s = rates[0] ** (1 + weight) * rates[1] ** (-weight)
        gen = s * q.t()[None] * dsigma  # R(x -> y) = s_y(x) Q(y, x) sigma'
        gen = gen * (1 - torch.eye(4, dtype=gen.dtype))  # off-diagonal rates only
        gen = gen - torch.diag_embed(gen.sum(-1))  # rows sum to zero
        law = law + dt * torch.einsum("lx,lxy->ly", law, gen)
    return law


def _marginals(tokens):
    return torch.nn.functional.one_hot(tokens, 4).double().mean(0)


def test_classifier_free_combines_the_two_scores_in_one_call():
    calls = []

    def score_fn(x, labels, sigma):
        calls.append(labels.shape[0])
        null = torch.isnan(labels).all(-1)
        base = torch.arange(4.0).expand(*x.shape, 4)
        return torch.where(null[:, None, None], -base, 2 * base)

    x = torch.zeros(3, 5, dtype=torch.int64)
    labels, sigma = torch.ones(3, 2), torch.ones(3)
    out = classifier_free(score_fn, 1.5)(x, labels, sigma)
    assert calls == [6]  # conditional and unconditional in one doubled batch
    expected = 2.5 * 2 * torch.arange(4.0) - 1.5 * -torch.arange(4.0)
    torch.testing.assert_close(out, expected.expand(3, 5, 4), rtol=0, atol=0)
    assert classifier_free(score_fn, 0.0) is score_fn


@pytest.mark.parametrize("predictor,steps", [("euler", 400), ("analytic", 200)])
def test_guided_sampling_reproduces_the_exact_guided_chain(predictor, steps):
    length, n, weight = 4, 6000, 2.0
    p_cond, p_uncond = _product(1, length), _product(2, length, peak=0.5)
    law = guided_chain_law(p_cond, p_uncond, weight).float()
    unguided_law = guided_chain_law(p_cond, p_uncond, 0.0).float()
    guided = classifier_free(toy_score_fn(p_cond, p_uncond), weight)
    tokens = sample(
        guided, torch.zeros(n, 1), length=length, graph=GRAPH, noise=NOISE,
        predictor=predictor, steps=steps, eps=EPS, denoise=False,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    got = _marginals(tokens).float()
    tv = 0.5 * (got - law).abs().sum(-1)
    bound = 4 * 0.5 * (2 * law * (1 - law) / (math.pi * n)).sqrt().sum(-1).max() + 0.01
    assert tv.max() < bound, (tv, bound)
    # The test has power: guidance moved the law well away from the conditional one.
    assert (0.5 * (law - unguided_law).abs().sum(-1)).max() > 5 * bound


def test_guidance_keeps_fixed_positions():
    length = 6
    p_cond, p_uncond = _product(3, length), _product(4, length)
    mask = torch.tensor([True, False, False, True, False, False])
    fixed = FixedPositions(mask, torch.tensor([2, 0, 0, 1, 0, 0]))
    tokens = sample(
        classifier_free(toy_score_fn(p_cond, p_uncond), 3.0), torch.zeros(50, 1),
        length=length, graph=GRAPH, noise=NOISE, steps=16, fixed=fixed,
    )  # fmt: skip
    assert (tokens[:, 0] == 2).all() and (tokens[:, 3] == 1).all()


@pytest.mark.parametrize("model_class,config_class", [
    (TransformerScoreModel, TransformerConfig), (ConvScoreModel, ConvConfig),
])  # fmt: skip
@pytest.mark.parametrize("label_mode,signal_dim", [("global", 2), ("per_position", 1)])
def test_the_null_label_is_a_learned_embedding(model_class, config_class, label_mode, signal_dim):
    small = (
        {"hidden_size": 32, "n_blocks": 1, "n_heads": 2, "cond_dim": 16}
        if model_class is TransformerScoreModel
        else {"channels": 16, "n_blocks": 2, "cond_dim": 16, "dilations": (1, 2)}
    )
    config = config_class(length=12, signal_dim=signal_dim, label_mode=label_mode,
                          null_label=True, **small)  # fmt: skip
    torch.manual_seed(0)
    model = model_class(config).eval()
    null_name = "vocab_embed.null_signal" if model_class is TransformerScoreModel else "null_signal"
    assert null_name in dict(model.named_parameters())
    with torch.no_grad():  # a non-zero null embedding and output layer, so outputs can differ
        for p in model.parameters():
            p.normal_(0, 0.3)
    x = torch.randint(0, 4, (3, 12))
    shape = (3, signal_dim) if label_mode == "global" else (3, 12, signal_dim)
    labels, sigma = torch.randn(shape), torch.rand(3)
    out_null = model(x, null_labels(labels), sigma)
    assert torch.isfinite(out_null).all()
    assert not torch.allclose(out_null, model(x, labels, sigma))
    # The null label's output does not depend on the label values it replaced.
    torch.testing.assert_close(model(x, null_labels(labels * 5), sigma), out_null)
    # The null embedding receives gradient.
    model.train()
    model(x, null_labels(labels), sigma).sum().backward()
    assert dict(model.named_parameters())[null_name].grad.abs().sum() > 0


@pytest.mark.parametrize("model_class,config_class", [
    (TransformerScoreModel, TransformerConfig), (ConvScoreModel, ConvConfig),
])  # fmt: skip
def test_label_conditioning_feeds_the_label_and_its_null_into_the_sigma_conditioning(
    model_class, config_class
):
    small = (
        {"hidden_size": 32, "n_blocks": 1, "n_heads": 2, "cond_dim": 16}
        if model_class is TransformerScoreModel
        else {"channels": 16, "n_blocks": 2, "cond_dim": 16, "dilations": (1, 2)}
    )
    config = config_class(length=12, signal_dim=2, label_mode="global", null_label=True,
                          label_conditioning=True, **small)  # fmt: skip
    torch.manual_seed(0)
    model = model_class(config)
    names = dict(model.named_parameters())
    assert {"label_cond.mlp.0.weight", "label_cond.mlp.2.weight",
            "label_cond.null_embedding"} <= set(names)  # fmt: skip
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.3)
    x, labels, sigma = torch.randint(0, 4, (3, 12)), torch.randn(3, 2), torch.rand(3)
    model(x, labels, sigma).sum().backward()
    assert names["label_cond.mlp.0.weight"].grad.abs().sum() > 0
    null_grad = names["label_cond.null_embedding"].grad
    assert null_grad is None or not null_grad.any()  # no null row in the batch
    model.zero_grad()
    model(x, null_labels(labels), sigma).sum().backward()
    assert names["label_cond.null_embedding"].grad.abs().sum() > 0
    label_grad = names["label_cond.mlp.0.weight"].grad
    assert label_grad is None or not label_grad.any()  # every row null: the labels are unused
    with pytest.raises(D3ConfigError, match="per-position labels"):
        config_class(length=12, signal_dim=1, label_mode="per_position", label_conditioning=True,
                     **small)  # fmt: skip


def test_a_model_without_a_null_label_refuses_nan_labels():
    model = ConvScoreModel(ConvConfig(length=8, signal_dim=2, label_mode="global", channels=8,
                                      n_blocks=1, cond_dim=8))  # fmt: skip
    x, sigma = torch.randint(0, 4, (2, 8)), torch.ones(2)
    with pytest.raises(D3InputError, match=r"trained without training\.label_dropout"):
        model(x, torch.full((2, 2), float("nan")), sigma)
    partial = torch.tensor([[float("nan"), 1.0], [0.0, 0.0]])
    with pytest.raises(D3InputError, match="some but not all"):
        model(x, partial, sigma)


def test_label_dropout_drops_whole_rows_at_the_given_rate():
    labels = torch.randn(20_000, 7, 1)
    dropped = drop_labels(labels, 0.1, torch.Generator().manual_seed(0))
    null = torch.isnan(dropped)
    assert (null.all((1, 2)) == null.any((1, 2))).all()  # whole sequences only
    assert abs(null.all((1, 2)).double().mean().item() - 0.1) < 0.01
    kept = ~null.all((1, 2))
    torch.testing.assert_close(dropped[kept], labels[kept])
    assert drop_labels(labels, 0.0) is labels


# -- oracle guidance ---------------------------------------------------------------------------


def _linear_oracle(weights: torch.Tensor):
    """f(x) = sum_{l,v} weights[v, l] x[v, l]: (N, V, L) -> (N, 1)."""
    return lambda x: (x * weights).sum((1, 2))[:, None]


def test_exact_oracle_guidance_tilts_each_neighbour_by_its_likelihood_ratio():
    length = 5
    gen = torch.Generator().manual_seed(0)
    weights = torch.randn(4, length, generator=gen, dtype=torch.float32)
    predict = _linear_oracle(weights)
    x = torch.randint(0, 4, (2, length), generator=gen)
    labels, sigma = torch.tensor([[1.0], [-2.0]]), torch.full((2,), 0.5)
    base = lambda t, lab, s: _exact_log_score(_product(5, length), t, s).float()  # noqa: E731
    out = oracle_guided(base, predict, 0.7, graph=GRAPH, form="exact")(x, labels, sigma)
    x_hat = denoised_probs(base(x, labels, sigma), x, sigma, GRAPH).transpose(1, 2)
    for b in range(2):

        def loglik(inp, goal=labels[b, 0]):
            return -0.5 * (predict(inp[None])[0, 0] - goal) ** 2

        for pos in range(length):
            for y in range(4):
                moved, stay = x_hat[b].clone(), x_hat[b].clone()
                moved[:, pos] = torch.nn.functional.one_hot(torch.tensor(y), 4).float()
                stay[:, pos] = torch.nn.functional.one_hot(x[b, pos], 4).float()
                expected = base(x, labels, sigma)[b, pos, y] + 0.7 * (loglik(moved) - loglik(stay))
                torch.testing.assert_close(out[b, pos, y], expected, rtol=1e-4, atol=1e-4)
    assert (out.gather(-1, x[..., None]) == 0).all()  # staying put is never tilted


def test_gradient_oracle_guidance_is_the_first_order_form_of_the_exact_one():
    length = 6
    weights = torch.randn(4, length, generator=torch.Generator().manual_seed(1)) * 1e-2
    predict = _linear_oracle(weights)
    x = torch.randint(0, 4, (3, length), generator=torch.Generator().manual_seed(2))
    labels, sigma = torch.full((3, 1), 0.3), torch.full((3,), 0.2)
    base = lambda t, lab, s: _exact_log_score(_product(6, length), t, s).float()  # noqa: E731
    exact = oracle_guided(base, predict, 1.0, graph=GRAPH, form="exact")(x, labels, sigma)
    first = oracle_guided(base, predict, 1.0, graph=GRAPH, form="gradient")(x, labels, sigma)
    tilt_exact, tilt_first = exact - base(x, labels, sigma), first - base(x, labels, sigma)
    # Small oracle weights: the quadratic term is second order and the two forms agree closely.
    assert tilt_exact.abs().max() > 1e-3
    torch.testing.assert_close(tilt_first, tilt_exact, rtol=0.05, atol=1e-4)


@pytest.mark.parametrize("form", ["gradient", "exact"])
def test_oracle_guidance_moves_samples_to_the_requested_activity(form):
    """Unconditional uniform DNA (5 G's in 20 on average), an oracle counting G's: guidance
    with weight 1 takes the mean count to within one G of the request, below and above."""
    length, n = 20, 400
    uniform = torch.full((length, 4), 0.25, dtype=torch.float64)
    base = toy_score_fn(uniform, uniform)
    weights = torch.zeros(4, length)
    weights[2] = 1.0  # f(x) = number of G
    predict = _linear_oracle(weights)
    counts = {}
    for target in (2.0, 14.0):
        labels = torch.full((n, 1), target)
        guided = oracle_guided(base, predict, 1.0, graph=GRAPH, form=form)
        tokens = sample(guided, labels, length=length, graph=GRAPH, noise=NOISE, steps=32,
                        generator=torch.Generator().manual_seed(0))  # fmt: skip
        counts[target] = (tokens == 2).sum(-1).double().mean().item()
    assert abs(counts[2.0] - 2.0) < 1.0 and abs(counts[14.0] - 14.0) < 1.0, counts


def test_oracle_guidance_refuses_an_oracle_of_another_width():
    base = toy_score_fn(_product(1, 4), _product(1, 4))
    guided = oracle_guided(base, lambda x: x.sum((1, 2))[:, None].expand(-1, 3), 1.0, graph=GRAPH)
    with pytest.raises(D3InputError, match="oracle predicts"):
        guided(torch.zeros(2, 4, dtype=torch.int64), torch.zeros(2, 2), torch.ones(2))
    with pytest.raises(D3ConfigError, match="unknown oracle guidance form"):
        oracle_guided(base, lambda x: x, 1.0, graph=GRAPH, form="taylor")


def test_the_defaults_follow_the_checkpoint_and_what_the_model_can_do():
    from types import SimpleNamespace

    from d3_core.diffusion.guidance import resolve_guidance

    sampling = {"guidance": 1.5, "guidance_with_oracle": 0.25, "oracle_guidance": 3.0,
                "oracle_guidance_form": "exact"}  # fmt: skip
    with_null = SimpleNamespace(config=SimpleNamespace(null_label=True))
    without = SimpleNamespace(config=SimpleNamespace(null_label=False))
    g, _ = resolve_guidance(with_null, sampling)
    assert (g.cfg, g.oracle) == (1.5, 0.0)
    g, _ = resolve_guidance(with_null, sampling, has_oracle=True)
    assert (g.cfg, g.oracle, g.oracle_form) == (0.25, 3.0, "exact")
    g, notes = resolve_guidance(without, sampling)
    assert g.cfg == 0.0 and "trained without label dropout" in notes[0]
    g, _ = resolve_guidance(without, sampling, cfg=2.0, oracle=0.5, oracle_form="gradient",
                            has_oracle=True)  # fmt: skip
    assert (g.cfg, g.oracle, g.oracle_form) == (2.0, 0.5, "gradient")  # asked for: kept
