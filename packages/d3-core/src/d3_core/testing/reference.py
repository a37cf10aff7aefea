"""The research model's forward pass (docs/models.md#transformer, docs/models.md#convolutional), on
a checkpoint's tensors by name.

Written out from docs/models.md independently of d3's score models, for tests that compare a loaded
model with what the research code computes (`d3_core.testing.checkpoint_writers` writes such files).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["reference_log_scores"]

RESEARCH_DILATIONS = (1, 1, 4, 16, 64)


def _linear(x: Tensor, w: dict[str, Tensor], name: str) -> Tensor:
    return x @ w[name + ".weight"].T + w[name + ".bias"]


def _sigma_map(w: dict[str, Tensor], sigma: Tensor) -> Tensor:
    freqs = torch.exp(-math.log(10_000) * torch.arange(128, dtype=sigma.dtype) / 128)
    args = sigma[:, None] * freqs[None]
    features = torch.cat([args.cos(), args.sin()], dim=-1)  # cos first
    hidden = F.silu(_linear(features, w, "sigma_map.mlp.0"))
    return F.silu(_linear(hidden, w, "sigma_map.mlp.2"))  # c = SiLU(sigma_map(sigma))


def _norm(x: Tensor, weight: Tensor) -> Tensor:
    return F.layer_norm(x, x.shape[-1:], eps=1e-5) * weight


def _transformer(w: dict[str, Tensor], tokens: Tensor, labels: Tensor, sigma: Tensor,
                 n_heads: int) -> Tensor:  # fmt: skip
    batch, length = tokens.shape
    hidden = w["vocab_embed.embedding"].shape[1]
    d = hidden // n_heads
    signal = _linear(labels, w, "vocab_embed.signal_embedding")
    x = w["vocab_embed.embedding"][tokens] + (signal[:, None] if signal.dim() == 2 else signal)
    c = _sigma_map(w, sigma)
    inv_freq = 1.0 / 10_000 ** (torch.arange(0, d, 2, dtype=x.dtype) / d)
    theta = torch.arange(length, dtype=x.dtype)[:, None] * inv_freq[None]
    table = torch.cat([theta, theta], dim=-1)[:, None]  # (L, 1, d)

    def rotate(v: Tensor) -> Tensor:  # GPT-NeoX rotate-half
        return v * table.cos() + torch.cat([-v[..., d // 2 :], v[..., : d // 2]], -1) * table.sin()

    n_blocks = len({k.split(".")[1] for k in w if k.startswith("blocks.")})
    for i in range(n_blocks):
        p = f"blocks.{i}."
        mods = _linear(c, w, p + "adaLN_modulation")[:, None].chunk(6, dim=-1)
        shift1, scale1, gate1, shift2, scale2, gate2 = mods
        h = _norm(x, w[p + "norm1.weight"]) * (1 + scale1) + shift1
        qkv = (h @ w[p + "attn_qkv.weight"].T).view(batch, length, 3, n_heads, d)
        q, k, v = rotate(qkv[:, :, 0]), rotate(qkv[:, :, 1]), qkv[:, :, 2]
        att = torch.einsum("blhd,bmhd->bhlm", q, k) / math.sqrt(d)
        a = torch.einsum("bhlm,bmhd->blhd", att.softmax(-1), v).reshape(batch, length, hidden)
        x = x + gate1 * (a @ w[p + "attn_out.weight"].T)
        h = _norm(x, w[p + "norm2.weight"]) * (1 + scale2) + shift2
        h = _linear(F.gelu(_linear(h, w, p + "mlp.0"), approximate="tanh"), w, p + "mlp.2")
        x = x + gate2 * h
    shift, scale = _linear(c, w, "output_layer.adaLN_modulation")[:, None].chunk(2, dim=-1)
    h = _norm(x, w["output_layer.norm_final.weight"]) * (1 + scale) + shift
    return _linear(h, w, "output_layer.linear")


def _conv(w: dict[str, Tensor], tokens: Tensor, labels: Tensor, sigma: Tensor) -> Tensor:
    length = tokens.shape[1]
    if labels.dim() == 3:
        signal = labels  # the per-position label is the fifth channel
    elif "label_emb.0.weight" in w:
        signal = _linear(F.silu(_linear(labels, w, "label_emb.0")), w, "label_emb.2")[..., None]
    else:  # d3-dna: a (B, 1) label broadcast over positions
        signal = labels[:, None, :].expand(-1, length, -1)
    x = torch.cat([F.one_hot(tokens, 4).to(signal.dtype), signal], dim=-1).transpose(1, 2)
    pad = w["linear.weight"].shape[2] // 2
    h = F.silu(F.conv1d(x, w["linear.weight"], w["linear.bias"], padding=pad))
    c = _sigma_map(w, sigma)
    n_blocks = len({k.split(".")[1] for k in w if k.startswith("conv_blocks.")})
    for k in range(n_blocks):
        dilation = RESEARCH_DILATIONS[k % len(RESEARCH_DILATIONS)]
        dense = _linear(c, w, f"denses.{k}.dense")[:, :, None]
        normed = F.group_norm(h + dense, 1, w[f"norms.{k}.weight"], w[f"norms.{k}.bias"], 1e-5)
        conv = F.conv1d(normed, w[f"conv_blocks.{k}.weight"], w[f"conv_blocks.{k}.bias"],
                        padding=pad * dilation, dilation=dilation)  # fmt: skip
        h = h + F.silu(conv)
    h = F.gelu(F.conv1d(h, w["final.0.weight"], w["final.0.bias"]))  # exact erf GELU
    return F.conv1d(h, w["final.2.weight"], w["final.2.bias"]).transpose(1, 2)


def reference_log_scores(
    weights: dict[str, Tensor],
    arch: str,
    tokens: Tensor,
    labels: Tensor,
    sigma: Tensor,
    *,
    n_heads: int = 12,
    dtype: torch.dtype = torch.float64,
) -> Tensor:
    """The research model's log-scores (B, L, 4), computed from its tensors by name.

    Written out from docs/models.md#transformer (transformer) and docs/models.md#convolutional
    (conv), independently of d3's models, with the
    current token's entry set to 0 as d3 does (the research conv model left it unmasked;
    docs/models.md#convolutional).

    Args:
        weights: The trained tower's tensors (EMA applied), by research name.
        arch: ``"transformer"`` or ``"conv"``.
        tokens: (B, L) int64.
        labels: (B, S) or (B, L, 1).
        sigma: (B,).
        n_heads: Attention heads (the transformer's weights do not say).
        dtype: Precision of the computation.
    """
    w = {k: v.to(dtype) for k, v in weights.items()}
    labels, sigma = labels.to(dtype), sigma.to(dtype)
    if arch == "transformer":
        out = _transformer(w, tokens, labels, sigma, n_heads)
    else:
        out = _conv(w, tokens, labels, sigma)
    return out.scatter(-1, tokens[..., None], 0.0)
