"""Convolutional score model ("D3-Conv"): dilated residual 1-D convolutions conditioned on σ.

Parameter names and shapes follow docs/models.md#convolutional and
docs/checkpoint-formats.md#research-checkpoints so that research checkpoints load by name. One
deliberate difference from the research model: the log-score at the current token is set to 0, as in
the transformer; the research model left that entry untrained, and it leaked into the analytic
sampling and denoising steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from d3_core.errors import D3ConfigError
from d3_core.models.base import (
    ScoreModel,
    check_label_conditioning,
    check_label_mode,
    check_positive_int,
    split_null_labels,
)
from d3_core.models.layers import (
    LabelConditioning,
    SigmaEmbedding,
)


@dataclass(frozen=True)
class ConvConfig:
    """Sizes of the convolutional score model; defaults are the research code's
    (docs/models.md#convolutional).

    Attributes:
        length: Sequence length L; "global" labels are mapped to one value per position.
        signal_dim: Label width S (2 DeepSTARR, 3 MPRA, 1 promoter).
        label_mode: "global": labels (B, S) go through ``label_emb`` to a (B, L) signal channel;
            "per_position": labels (B, L, 1) are the signal channel themselves (S must be 1).
        vocab_size: Token states V; 4 for A, C, G, T. The input has V + 1 channels.
        channels: Width of every residual block; 256, fixed in the research code.
        n_blocks: Residual blocks; 20, fixed in the research code.
        kernel_size: Odd kernel width of the input and block convolutions; 9 as trained.
        dilations: Dilation of block k is ``dilations[k % len(dilations)]``; (1, 1, 4, 16, 64)
            repeated four times as trained, which spans the whole 249-bp sequence. A list is
            stored as a tuple.
        cond_dim: Width C of the σ conditioning; 256 in the research Conv checkpoints.
        label_embedding: For "global" labels: True maps (B, S) through ``label_emb`` (the
            research DeepSTARR and MPRA models); False broadcasts a (B, 1) label over the
            positions as the signal channel (d3-dna's conv model, e.g. its lentiMPRA models;
            S must be 1). Ignored for "per_position" labels.
        null_label: Learn ``null_signal`` (L,), the signal channel of the null label (an
            all-NaN label row, per sequence or per position) that training with
            ``training.label_dropout`` > 0 teaches and classifier-free guidance asks for.
            The research checkpoints have none.
        label_conditioning: For "global" labels, also add ``label_cond`` of the label to the
            σ conditioning (`LabelConditioning`), so every residual block sees the label
            through its ``denses`` bias, not only the input channel. Not in the research
            model.
    """

    length: int
    signal_dim: int
    label_mode: str
    vocab_size: int = 4
    channels: int = 256
    n_blocks: int = 20
    kernel_size: int = 9
    dilations: tuple[int, ...] = (1, 1, 4, 16, 64)
    cond_dim: int = 256
    label_embedding: bool = True
    null_label: bool = False
    label_conditioning: bool = False

    def __post_init__(self) -> None:
        for name in ("length", "signal_dim", "vocab_size", "channels", "n_blocks", "cond_dim"):
            check_positive_int(name, getattr(self, name))
        check_label_mode(self.label_mode)
        if self.label_mode == "per_position" and self.signal_dim != 1:
            raise D3ConfigError(
                "label_mode='per_position' uses the label itself as the signal channel, so "
                f"signal_dim must be 1; got signal_dim={self.signal_dim}"
            )
        if not isinstance(self.null_label, bool):
            raise D3ConfigError(f"null_label must be true or false; got {self.null_label!r}")
        check_label_conditioning(self)
        if not isinstance(self.label_embedding, bool):
            raise D3ConfigError(
                f"label_embedding must be true or false; got {self.label_embedding!r}"
            )
        if self.label_mode == "global" and not self.label_embedding and self.signal_dim != 1:
            raise D3ConfigError(
                "label_embedding=False broadcasts one global label over the positions, so "
                f"signal_dim must be 1; got signal_dim={self.signal_dim}"
            )
        k = self.kernel_size
        if not isinstance(k, int) or isinstance(k, bool) or k < 1 or k % 2 == 0:
            raise D3ConfigError(f"kernel_size must be a positive odd integer; got {k!r}")
        dilations = self.dilations
        if isinstance(dilations, list):  # e.g. from a YAML config; a tuple stays hashable
            dilations = tuple(dilations)
            object.__setattr__(self, "dilations", dilations)
        if (
            not isinstance(dilations, tuple)
            or not dilations
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in dilations)
        ):
            raise D3ConfigError(
                f"dilations must be a non-empty tuple of positive integers; got {dilations!r}"
            )

    def dilation(self, block: int) -> int:
        """Dilation of residual block ``block``."""
        return self.dilations[block % len(self.dilations)]


class Dense(nn.Module):
    """Linear map of the conditioning to a per-channel bias (B, C) -> (B, channels, 1)."""

    def __init__(self, cond_dim: int, channels: int) -> None:
        super().__init__()
        self.dense = nn.Linear(cond_dim, channels)

    def forward(self, c: Tensor) -> Tensor:
        """Map c (B, C) to (B, channels, 1), broadcast over positions."""
        return self.dense(c)[:, :, None]


class ConvScoreModel(ScoreModel):
    """Dilated residual CNN score network: tokens, labels and σ to log-scores
    (docs/models.md#convolutional).

    Call as ``model(tokens, labels, sigma)`` or with the research convention
    ``model(tokens, labels, train, sigma)`` (the ``train`` flag is ignored).

    Args:
        config: Model sizes and options.
    """

    config_class = ConvConfig

    def __init__(self, config: ConvConfig) -> None:
        super().__init__()
        self.config = config
        ch, k = config.channels, config.kernel_size
        self.sigma_map = SigmaEmbedding(config.cond_dim)
        self.linear = nn.Conv1d(config.vocab_size + 1, ch, k, padding=k // 2)
        self.conv_blocks = nn.ModuleList(
            nn.Conv1d(ch, ch, k, dilation=config.dilation(i), padding=config.dilation(i) * (k // 2))
            for i in range(config.n_blocks)
        )
        self.denses = nn.ModuleList(Dense(config.cond_dim, ch) for _ in range(config.n_blocks))
        self.norms = nn.ModuleList(nn.GroupNorm(1, ch) for _ in range(config.n_blocks))
        self.final = nn.Sequential(
            nn.Conv1d(ch, ch, 1), nn.GELU(), nn.Conv1d(ch, config.vocab_size, 1)
        )
        if config.label_mode == "global" and config.label_embedding:
            self.label_emb = nn.Sequential(
                nn.Linear(config.signal_dim, config.length),
                nn.SiLU(),
                nn.Linear(config.length, config.length),
            )
        if config.null_label:
            self.null_signal = nn.Parameter(torch.zeros(config.length))
        if config.label_conditioning:
            self.label_cond = LabelConditioning(
                config.signal_dim, config.cond_dim, config.null_label
            )

    def score(self, tokens: Tensor, labels: Tensor, sigma: Tensor) -> Tensor:
        """Log-scores (B, L, V) on checked inputs; the current token's entry is 0 (the research
        model left it unmasked; docs/models.md#convolutional)."""
        cfg = self.config
        dtype = self.linear.weight.dtype
        states = torch.arange(cfg.vocab_size, device=tokens.device)
        # Comparison instead of F.one_hot: no range check, hence no device sync.
        one_hot = (tokens[..., None] == states).to(dtype)  # (B, L, V)
        labels = raw_labels = labels.to(dtype)
        if cfg.null_label:
            labels, null = split_null_labels(labels)  # null: (B,) or (B, L)
        if cfg.label_mode == "global" and cfg.label_embedding:
            signal = self.label_emb(labels)[..., None]  # (B, S) -> (B, L) -> (B, L, 1)
        elif cfg.label_mode == "global":  # (B, 1) -> (B, L, 1), as d3-dna's conv model
            signal = labels[:, None, :].expand(-1, tokens.shape[1], -1)
        else:
            signal = labels  # (B, L, 1)
        if cfg.null_label:
            null = null[:, None] if cfg.label_mode == "global" else null  # (B, 1) or (B, L)
            signal = torch.where(null[..., None], self.null_signal.to(dtype)[:, None], signal)
        x = torch.cat([one_hot, signal], dim=-1).transpose(1, 2)  # (B, V + 1, L)

        c = self.sigma_map(sigma)  # (B, C)
        if cfg.label_conditioning:
            c = c + self.label_cond(raw_labels)  # (B, C)
        c = F.silu(c)
        h = F.silu(self.linear(x))  # (B, channels, L)
        for conv, dense, norm in zip(self.conv_blocks, self.denses, self.norms, strict=True):
            h = h + F.silu(conv(norm(h + dense(c))))  # (B, channels, L)
        out = self.final(h).transpose(1, 2).float().contiguous()  # (B, V, L) -> (B, L, V)
        return out.scatter(-1, tokens[..., None], 0.0)
