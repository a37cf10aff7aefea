"""The engine learns: CPU-sized score models overfit a handful of sequences under the SEDD loss."""

import pytest
import torch

from d3_core.diffusion.graph import UniformGraph
from d3_core.diffusion.loss import score_entropy_loss
from d3_core.diffusion.noise import GeometricNoise
from d3_core.models import ConvConfig, ConvScoreModel, TransformerConfig, TransformerScoreModel
from d3_core.training.ema import ExponentialMovingAverage

LENGTH = 24


def _tiny(arch: str) -> torch.nn.Module:
    torch.manual_seed(0)
    if arch == "tran":
        config = TransformerConfig(
            length=LENGTH, signal_dim=1, label_mode="global", hidden_size=64, n_blocks=2,
            n_heads=4, cond_dim=32, dropout=0.0,
        )  # fmt: skip
        return TransformerScoreModel(config)
    config = ConvConfig(
        length=LENGTH, signal_dim=1, label_mode="global", channels=32, n_blocks=4, cond_dim=32
    )
    return ConvScoreModel(config)


def _held_out_loss(model, x0, labels, graph, noise) -> float:
    """Loss on a fixed grid of times and fixed noise draws, so two evaluations are comparable."""
    t = torch.linspace(0.02, 0.98, 16).repeat_interleave(len(x0))
    reps = 16
    with torch.no_grad():
        loss = score_entropy_loss(
            model, x0.repeat(reps, 1), labels.repeat(reps, 1), graph=graph, noise=noise, t=t,
            generator=torch.Generator().manual_seed(123),
        )  # fmt: skip
    return loss.mean().item()


def _handful() -> torch.Tensor:
    """Four sequences, each a repeat of its own short motif, (4, LENGTH) int64.

    Motif repeats rather than random sequences: the transformer sees positions only through
    rotary attention, which is relative, so it can learn a sequence from its context but not
    an absolute position table (neither could the research model).
    """
    rows = []
    for motif in ("AC", "GGT", "TA", "CAGT"):
        tokens = torch.tensor(["ACGT".index(base) for base in motif])
        rows.append(tokens.repeat(LENGTH // len(motif) + 1)[:LENGTH])
    return torch.stack(rows)


@pytest.mark.parametrize("arch", ["tran", "conv"])
def test_a_cpu_sized_model_overfits_a_handful_of_sequences(arch):
    graph, noise = UniformGraph(4), GeometricNoise()
    x0 = _handful()
    labels = torch.arange(4.0)[:, None]
    model = _tiny(arch)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    ema = ExponentialMovingAverage(model, decay=0.99)
    before = _held_out_loss(model, x0, labels, graph, noise)
    gen = torch.Generator().manual_seed(1)
    for _ in range(400):
        batch = torch.randint(0, 4, (32,), generator=gen)
        loss = score_entropy_loss(model, x0[batch], labels[batch], graph=graph, noise=noise,
                                  generator=gen).mean()  # fmt: skip
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        ema.update(model)
    model.eval()
    after = _held_out_loss(model, x0, labels, graph, noise)
    with ema.average_parameters(model):
        after_ema = _held_out_loss(model, x0, labels, graph, noise)
    assert after < before / 4, (before, after)
    assert after_ema < before / 4, (before, after_ema)
