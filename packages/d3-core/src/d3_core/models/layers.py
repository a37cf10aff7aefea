"""Building blocks shared by the score models: σ embedding, label conditioning, float32 norm,
adaLN modulation and rotary position embedding. Checks and the model base are `d3_core.models.base`."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# The checks and the base class moved to d3_core.models.base; their old import path still works.
from d3_core.models.base import (  # noqa: F401
    LABEL_MODES,
    ScoreModel,
    check_dataset_config,
    check_label_conditioning,
    check_label_mode,
    check_model_inputs,
    check_null_labels,
    check_positive_int,
    check_token_range,
    resolve_sigma,
    split_null_labels,
)

# docs/models.md#transformer: the width of the sinusoidal σ features (fixed by the checkpoints),
# their longest period, and the rotary frequency base.
SIGMA_FEATURES = 256
SIGMA_MAX_PERIOD = 10_000.0
ROTARY_BASE = 10_000.0


class SigmaEmbedding(nn.Module):
    """Embed the raw total noise σ into a conditioning vector (docs/models.md#transformer).

    Sinusoidal features of σ itself (not log σ), cosines first, followed by ``mlp`` =
    Linear(256, C) → SiLU → Linear(C, C). Parents register it as ``sigma_map`` and apply one
    more SiLU to the result.

    Args:
        cond_dim: Output width C.
    """

    def __init__(self, cond_dim: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(SIGMA_FEATURES, cond_dim), nn.SiLU(), nn.Linear(cond_dim, cond_dim)
        )

    @staticmethod
    def features(sigma: Tensor) -> Tensor:
        """Sinusoidal features of σ.

        Args:
            sigma: (B,) float total noise.

        Returns:
            (B, 256) float32 ``[cos(σ f), sin(σ f)]`` with f_k = exp(−ln(10000)·k/128).
        """
        half = SIGMA_FEATURES // 2
        k = torch.arange(half, dtype=torch.float32, device=sigma.device)
        freqs = torch.exp(-math.log(SIGMA_MAX_PERIOD) * k / half)  # (128,)
        angles = sigma.float()[:, None] * freqs[None, :]  # (B, 128)
        return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)  # (B, 256)

    def forward(self, sigma: Tensor) -> Tensor:
        """Map σ (B,) to (B, C); the features are float32, the MLP runs in the weights' dtype."""
        phi = self.features(sigma)
        return self.mlp(phi.to(self.mlp[0].weight.dtype))


class LabelConditioning(nn.Module):
    """A global label mapped into the σ conditioning: ``mlp`` = Linear(S, C) → SiLU →
    Linear(C, C), whose output is added to ``sigma_map(σ)`` before the SiLU, so every block's
    modulation (adaLN, or the conv blocks' ``denses``) sees the label. With ``null_label``,
    the learned ``null_embedding`` (C,) stands in for null (all-NaN) label rows.

    Not part of the research models (docs/models.md#transformer/docs/models.md#convolutional); the
    CPU presets use it.
    """

    def __init__(self, signal_dim: int, cond_dim: int, null_label: bool) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(signal_dim, cond_dim), nn.SiLU(), nn.Linear(cond_dim, cond_dim)
        )
        if null_label:
            self.null_embedding = nn.Parameter(torch.zeros(cond_dim))

    def forward(self, labels: Tensor) -> Tensor:
        """(B, S) labels, NaN rows for the null label, to (B, C)."""
        if not hasattr(self, "null_embedding"):
            return self.mlp(labels)
        values, null = split_null_labels(labels)  # null: (B,)
        out = self.mlp(values)
        return torch.where(null[:, None], self.null_embedding.to(out.dtype), out)


class LayerNormF32(nn.Module):
    """Bias-free LayerNorm over the last dimension, computed in float32, times ``weight``.

    Args:
        dim: Normalised width.
        eps: Variance epsilon; 1e-5 as in the research model.
    """

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.dim = dim
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        """Normalise x (..., dim) in float32; returns float32 (..., dim)."""
        # One fused kernel; the weight is applied inside it, so no extra pass over x.
        return F.layer_norm(x.float(), (self.dim,), self.weight.float(), None, self.eps)


def modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """adaLN modulation x·(1 + scale) + shift in one fused pass.

    Args:
        x: (B, L, H) activations.
        shift: (B, 1, H) additive modulation, broadcast over positions.
        scale: (B, 1, H) multiplicative modulation, broadcast over positions.

    Returns:
        (B, L, H) modulated activations.
    """
    return torch.addcmul(shift, x, 1 + scale)


class Rotary(nn.Module):
    """Rotary position tables for GPT-NeoX rotate-half embeddings (docs/models.md#transformer).

    Holds only the ``inv_freq`` buffer, 1/base^(2i/head_dim) for i < head_dim/2, so that the
    state dict matches the research checkpoints. The cos/sin tables are cached on the module per
    (length, device, dtype) in a plain dict, not as buffers, so they never enter the state dict.

    Args:
        head_dim: Width of one attention head (64 in the paper models); must be even.
        base: Frequency base.
    """

    def __init__(self, head_dim: int, base: float = ROTARY_BASE) -> None:
        super().__init__()
        exponents = torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim
        self.register_buffer("inv_freq", 1.0 / base**exponents)  # (head_dim / 2,)
        self._tables: dict[tuple, tuple[Tensor, Tensor]] = {}

    def forward(self, length: int, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        """Return the (cos, sin) tables, each (length, head_dim), for positions 0..length-1."""
        inv_freq = self.inv_freq
        # The buffer's version counter changes when a state dict is loaded into it.
        key = (length, inv_freq.device, dtype, inv_freq._version)
        tables = self._tables.get(key)
        if tables is None:
            # Plain tensors even when first called under inference_mode, so that training
            # can use them later.
            with torch.inference_mode(False), torch.no_grad():
                positions = torch.arange(length, device=inv_freq.device, dtype=torch.float32)
                angles = torch.outer(positions, inv_freq.float())  # (length, head_dim / 2)
                angles = torch.cat([angles, angles], dim=-1)  # (length, head_dim)
                tables = (angles.cos().to(dtype), angles.sin().to(dtype))
            self._tables = {key: tables}  # keep only the latest tables
        return tables


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate x by the rotary angles: x·cos + rotate_half(x)·sin, rotate_half(x) = [−x₂, x₁].

    Computed as x·cos + [x₂, x₁]·[−sin₁, sin₂], which is the same product (the sign moved from
    x₂ onto sin) in three passes over x instead of five.

    Args:
        x: (B, L, ..., D) queries and/or keys; any number of head axes between L and D.
        cos: (L, D) cosine table from `Rotary`.
        sin: (L, D) sine table from `Rotary`.

    Returns:
        Tensor shaped like x.
    """
    half = x.shape[-1] // 2
    extra = (1,) * (x.dim() - 3)  # broadcast the tables over the head axes
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)  # keep x's dtype under autocast
    cos = cos.view(cos.shape[0], *extra, cos.shape[-1])  # (L, 1, ..., D)
    signed_sin = torch.cat([-sin[:, :half], sin[:, half:]], dim=-1)
    signed_sin = signed_sin.view(cos.shape)  # (L, 1, ..., D)
    swapped = torch.cat([x[..., half:], x[..., :half]], dim=-1)  # [x₂, x₁]
    return torch.addcmul(x * cos, swapped, signed_sin)
