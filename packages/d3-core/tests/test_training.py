"""One training step: micro-batching, clipping and the EMA update after the optimizer."""

import pytest
import torch
from torch import nn

from d3_core.diffusion.graph import UniformGraph
from d3_core.diffusion.noise import GeometricNoise
from d3_core.errors import D3ConfigError
from d3_core.training.ema import ExponentialMovingAverage
from d3_core.training.step import train_step


class TinyScore(nn.Module):
    """Embedding plus label and sigma terms: enough parameters to check a step, no dropout."""

    def __init__(self, length=10):
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(4, 4)
        self.pos = nn.Parameter(torch.randn(length, 4))
        self.label = nn.Linear(1, 4)
        self.sigma = nn.Linear(1, 4)

    def forward(self, tokens, labels, sigma):
        out = (
            self.embed(tokens)
            + self.pos
            + self.label(labels)[:, None]
            + self.sigma(sigma[:, None])[:, None]
        )
        return out.scatter(-1, tokens[..., None], 0.0)


def _step(micro_batch, model=None):
    model = model or TinyScore()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    ema = ExponentialMovingAverage(model, decay=0.9999)
    x0 = torch.randint(0, 4, (12, 10), generator=torch.Generator().manual_seed(1))
    labels = torch.randn(12, 1, generator=torch.Generator().manual_seed(2))
    loss = train_step(
        model, optimizer, ema, x0, labels, graph=UniformGraph(), noise=GeometricNoise(),
        micro_batch=micro_batch, generator=torch.Generator().manual_seed(3),
    )  # fmt: skip
    return model, ema, loss


def test_micro_batching_gives_the_same_step_as_the_whole_batch():
    whole, _, loss_whole = _step(None)
    split, _, loss_split = _step(5)  # uneven split: 5 + 5 + 2
    assert torch.allclose(loss_whole, loss_split, rtol=1e-6)
    for (name, a), b in zip(whole.named_parameters(), split.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6), name


def test_ema_is_updated_after_the_optimizer_step():
    initial = {n: p.detach().clone() for n, p in TinyScore().named_parameters()}
    model, ema, _ = _step(None)
    d = 2 / 11  # first update's warmed-up decay
    for name, p in model.named_parameters():
        assert not torch.equal(p, initial[name])  # the step moved it
        expected = d * initial[name] + (1 - d) * p.detach()
        assert torch.allclose(ema.shadow[name], expected, atol=1e-6), name


def test_gradients_are_clipped_to_the_given_norm():
    model = TinyScore()
    with torch.no_grad():
        model.pos.mul_(5.0)  # a large loss with gradients far above the clip
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    x0 = torch.randint(0, 4, (8, 10))
    train_step(model, optimizer, None, x0, torch.zeros(8, 1), graph=UniformGraph(),
               noise=GeometricNoise(), grad_clip=0.5)  # fmt: skip
    norm = torch.cat([p.grad.flatten() for p in model.parameters()]).norm()
    assert norm == pytest.approx(0.5, rel=1e-4)


def test_a_non_positive_micro_batch_is_refused():
    with pytest.raises(
        D3ConfigError, match="micro_batch must be a positive integer or None, got 0"
    ):
        _step(0)
