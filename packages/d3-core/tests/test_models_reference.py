"""Both score models equal a forward pass written out from SPEC sections 6 and 7, weight by weight.

The models are small and every parameter, the zero-initialised ones included, is randomised,
so the modulation order, gates, norms, rotary form and conv block formula are all exercised.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from d3_core.models import ConvConfig, ConvScoreModel, TransformerConfig, TransformerScoreModel

B, L = 3, 12


def _randomise(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.2)
    return {k: v.double() for k, v in model.state_dict().items()}


def _linear(x, w, name):
    return x @ w[name + ".weight"].T + w[name + ".bias"]


def _sigma_map(w, sigma):
    freqs = torch.exp(-math.log(10_000) * torch.arange(128, dtype=torch.float64) / 128)
    args = sigma[:, None] * freqs[None]
    features = torch.cat([args.cos(), args.sin()], dim=-1)  # cos first
    hidden = F.silu(_linear(features, w, "sigma_map.mlp.0"))
    return F.silu(_linear(hidden, w, "sigma_map.mlp.2"))  # c = SiLU(sigma_map(sigma))


def _norm(x, weight):
    return F.layer_norm(x, x.shape[-1:], eps=1e-5) * weight


def _reference_transformer(w, tokens, labels, sigma, n_blocks, n_heads):
    hidden = w["vocab_embed.embedding"].shape[1]
    d = hidden // n_heads
    signal = _linear(labels, w, "vocab_embed.signal_embedding")
    x = w["vocab_embed.embedding"][tokens] + (signal[:, None] if signal.dim() == 2 else signal)
    c = _sigma_map(w, sigma)
    inv_freq = 1.0 / 10_000 ** (torch.arange(0, d, 2, dtype=torch.float64) / d)
    theta = torch.arange(L, dtype=torch.float64)[:, None] * inv_freq[None]
    table = torch.cat([theta, theta], dim=-1)[:, None]  # (L, 1, d)

    def rotate(v):  # GPT-NeoX rotate-half
        return v * table.cos() + torch.cat([-v[..., d // 2 :], v[..., : d // 2]], -1) * table.sin()

    for i in range(n_blocks):
        p = f"blocks.{i}."
        mods = _linear(c, w, p + "adaLN_modulation")[:, None].chunk(6, dim=-1)
        shift1, scale1, gate1, shift2, scale2, gate2 = mods
        h = _norm(x, w[p + "norm1.weight"]) * (1 + scale1) + shift1
        qkv = (h @ w[p + "attn_qkv.weight"].T).view(B, L, 3, n_heads, d)
        q, k, v = rotate(qkv[:, :, 0]), rotate(qkv[:, :, 1]), qkv[:, :, 2]
        att = torch.einsum("blhd,bmhd->bhlm", q, k) / math.sqrt(d)
        a = torch.einsum("bhlm,bmhd->blhd", att.softmax(-1), v).reshape(B, L, hidden)
        x = x + gate1 * (a @ w[p + "attn_out.weight"].T)
        h = _norm(x, w[p + "norm2.weight"]) * (1 + scale2) + shift2
        h = _linear(F.gelu(_linear(h, w, p + "mlp.0"), approximate="tanh"), w, p + "mlp.2")
        x = x + gate2 * h
    shift, scale = _linear(c, w, "output_layer.adaLN_modulation")[:, None].chunk(2, dim=-1)
    h = _norm(x, w["output_layer.norm_final.weight"]) * (1 + scale) + shift
    out = _linear(h, w, "output_layer.linear")
    return out.scatter(-1, tokens[..., None], 0.0)


def _reference_conv(w, tokens, labels, sigma, dilations):
    if labels.dim() == 2:
        signal = _linear(F.silu(_linear(labels, w, "label_emb.0")), w, "label_emb.2")[..., None]
    else:
        signal = labels  # the per-position label is the fifth channel
    x = torch.cat([F.one_hot(tokens, 4).double(), signal], dim=-1).transpose(1, 2)
    h = F.silu(F.conv1d(x, w["linear.weight"], w["linear.bias"], padding=4))
    c = _sigma_map(w, sigma)
    for k, dilation in enumerate(dilations):
        dense = _linear(c, w, f"denses.{k}.dense")[:, :, None]
        normed = F.group_norm(h + dense, 1, w[f"norms.{k}.weight"], w[f"norms.{k}.bias"], 1e-5)
        conv = F.conv1d(normed, w[f"conv_blocks.{k}.weight"], w[f"conv_blocks.{k}.bias"],
                        padding=4 * dilation, dilation=dilation)  # fmt: skip
        h = h + F.silu(conv)
    h = F.gelu(F.conv1d(h, w["final.0.weight"], w["final.0.bias"]))  # exact erf GELU
    out = F.conv1d(h, w["final.2.weight"], w["final.2.bias"]).transpose(1, 2)
    return out.scatter(-1, tokens[..., None], 0.0)


def _inputs(width, mode):
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 4, (B, L), generator=gen)
    shape = (B, width) if mode == "global" else (B, L, width)
    return tokens, torch.randn(shape, generator=gen), torch.tensor([1e-4, 0.5, 20.0])


@pytest.mark.parametrize(("width", "mode"), [(2, "global"), (1, "per_position")])
def test_transformer_equals_the_spec_forward_pass(width, mode):
    config = TransformerConfig(L, width, mode, hidden_size=32, n_blocks=2, n_heads=2, cond_dim=16)
    model = TransformerScoreModel(config).eval()
    weights = _randomise(model)
    tokens, labels, sigma = _inputs(width, mode)
    expected = _reference_transformer(weights, tokens, labels.double(), sigma.double(), 2, 2)
    got = model(tokens, labels, sigma)
    assert torch.allclose(got.double(), expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(("width", "mode"), [(3, "global"), (1, "per_position")])
def test_conv_model_equals_the_spec_forward_pass(width, mode):
    dilations = (1, 1, 4, 16, 64)
    config = ConvConfig(L, width, mode, channels=16, n_blocks=5, cond_dim=8, dilations=dilations)
    model = ConvScoreModel(config).eval()
    weights = _randomise(model)
    tokens, labels, sigma = _inputs(width, mode)
    expected = _reference_conv(weights, tokens, labels.double(), sigma.double(), dilations)
    got = model(tokens, labels, sigma)
    assert torch.allclose(got.double(), expected, atol=1e-4, rtol=1e-4)
