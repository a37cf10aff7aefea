"""Paper-size models of every dataset shape build and take one real training step on CPU."""

import pytest
import torch

from d3_core.diffusion.graph import UniformGraph
from d3_core.diffusion.noise import GeometricNoise
from d3_core.models import ConvConfig, ConvScoreModel, TransformerConfig, TransformerScoreModel
from d3_core.training.ema import ExponentialMovingAverage
from d3_core.training.step import train_step

SHAPES = {"deepstarr": (249, 2, "global"), "mpra": (200, 3, "global"),
          "promoter": (1024, 1, "per_position")}  # fmt: skip


@pytest.mark.parametrize("arch", ["tran", "conv"])
@pytest.mark.parametrize("dataset", list(SHAPES))
def test_a_paper_size_model_takes_one_training_step(dataset, arch):
    length, width, mode = SHAPES[dataset]
    torch.manual_seed(0)
    if arch == "tran":
        model = TransformerScoreModel(TransformerConfig(length, width, mode))
    else:
        model = ConvScoreModel(ConvConfig(length, width, mode))
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4)
    ema = ExponentialMovingAverage(model)
    x0 = torch.randint(0, 4, (2, length))
    labels = torch.randn(2, width) if mode == "global" else torch.randn(2, length, 1)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    loss = train_step(model, optimizer, ema, x0, labels, graph=UniformGraph(),
                      noise=GeometricNoise(), micro_batch=1)  # fmt: skip
    assert torch.isfinite(loss) and loss > 0
    moved = [n for n, p in model.named_parameters() if not torch.equal(p, before[n])]
    # Zero-initialised adaLN gates block the gradient of everything behind them at step one;
    # the parameters in front of the output must move.
    assert moved, "no parameter changed"
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert ema.num_updates == 1
