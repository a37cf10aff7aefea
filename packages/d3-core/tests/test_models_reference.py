"""Both score models equal a forward pass written out from docs/models.md, weight by weight.

The models are small and every parameter, the zero-initialised ones included, is randomised,
so the modulation order, gates, norms, rotary form and conv block formula are all exercised.
"""

import pytest
import torch

from d3_core.models import ConvConfig, ConvScoreModel, TransformerConfig, TransformerScoreModel
from d3_core.testing.reference import reference_log_scores

B, L = 3, 12


def _randomise(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.2)
    return {k: v.double() for k, v in model.state_dict().items()}


def _inputs(width, mode):
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 4, (B, L), generator=gen)
    shape = (B, width) if mode == "global" else (B, L, width)
    return tokens, torch.randn(shape, generator=gen), torch.tensor([1e-4, 0.5, 20.0])


@pytest.mark.parametrize(("width", "mode"), [(2, "global"), (1, "per_position")])
def test_transformer_equals_the_published_forward_pass(width, mode):
    config = TransformerConfig(L, width, mode, hidden_size=32, n_blocks=2, n_heads=2, cond_dim=16)
    model = TransformerScoreModel(config).eval()
    weights = _randomise(model)
    tokens, labels, sigma = _inputs(width, mode)
    expected = reference_log_scores(weights, "transformer", tokens, labels, sigma, n_heads=2)
    got = model(tokens, labels, sigma)
    assert torch.allclose(got.double(), expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(("width", "mode"), [(3, "global"), (1, "per_position")])
def test_conv_model_equals_the_published_forward_pass(width, mode):
    dilations = (1, 1, 4, 16, 64)
    config = ConvConfig(L, width, mode, channels=16, n_blocks=5, cond_dim=8, dilations=dilations)
    model = ConvScoreModel(config).eval()
    weights = _randomise(model)
    tokens, labels, sigma = _inputs(width, mode)
    expected = reference_log_scores(weights, "conv", tokens, labels, sigma)
    got = model(tokens, labels, sigma)
    assert torch.allclose(got.double(), expected, atol=1e-4, rtol=1e-4)


def test_a_conv_model_without_label_embedding_broadcasts_its_one_global_label():
    config = ConvConfig(L, 1, "global", channels=16, n_blocks=5, cond_dim=8, label_embedding=False)
    model = ConvScoreModel(config).eval()
    assert not hasattr(model, "label_emb")
    weights = _randomise(model)
    tokens, labels, sigma = _inputs(1, "global")
    expected = reference_log_scores(weights, "conv", tokens, labels, sigma)
    track = labels[:, None, :].expand(B, L, 1)  # the same label at every position
    assert torch.allclose(model(tokens, labels, sigma).double(), expected, atol=1e-4, rtol=1e-4)
    per_position = ConvScoreModel(ConvConfig(L, 1, "per_position", channels=16, n_blocks=5,
                                             cond_dim=8)).eval()  # fmt: skip
    per_position.load_state_dict(model.state_dict())
    assert torch.equal(per_position(tokens, track, sigma), model(tokens, labels, sigma))


def test_label_embedding_off_needs_a_single_global_label():
    from d3_core.errors import D3ConfigError

    with pytest.raises(D3ConfigError, match="label_embedding=False broadcasts one global label"):
        ConvConfig(L, 2, "global", label_embedding=False)
