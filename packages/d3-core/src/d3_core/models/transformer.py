"""Transformer score model (DDiT, "D3-Tran"): adaLN-conditioned blocks with rotary attention.

Parameter names and shapes follow docs/models.md#transformer and
docs/checkpoint-formats.md#research-checkpoints exactly so that research checkpoints load by name;
the unused research parameters (``scale``, ``label_embed``) are not built.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import (
    CheckpointPolicy,
    checkpoint,
    create_selective_checkpoint_contexts,
)

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
    LayerNormF32,
    Rotary,
    SigmaEmbedding,
    apply_rotary,
    modulate,
)

CHECKPOINTING_MODES = ("none", "blocks", "selective")


@dataclass(frozen=True)
class TransformerConfig:
    """Sizes of the transformer score model; defaults are the paper's (docs/models.md#transformer).

    Attributes:
        length: Sequence length L (249 DeepSTARR, 200 MPRA, 1024 promoter).
        signal_dim: Label width S (2, 3, 1 for the three datasets).
        label_mode: "global" for labels (B, S) broadcast over positions, "per_position" for
            labels (B, L, S).
        vocab_size: Token states V; 4 for A, C, G, T (the absorbing state is not used by D3).
        hidden_size: Width H; 768 in every research checkpoint.
        n_blocks: Transformer blocks; 12 in every research checkpoint.
        n_heads: Attention heads; 12, giving the head dim 64 the rotary tables assume.
        cond_dim: Width C of the σ conditioning; 128 in the research Tran checkpoints.
        dropout: Residual-branch dropout; 0.1 as trained. Never applied inside attention, so
            the result does not depend on which attention kernel runs.
        mlp_ratio: MLP expansion; 4 as trained.
        checkpointing: Activation checkpointing, used only in training mode with gradients;
            loss and gradients are the same in every mode. "none" keeps every activation;
            "blocks" keeps each block's input and recomputes the block in backward;
            "selective" keeps each block's attention output and its H-wide matmul outputs (v,
            ``attn_out``, ``mlp.2``) and recomputes q/k, ``mlp.0`` and the element-wise ops.
            Measured with ``d3 bench`` on a 2-core CPU (L 249, batch 32 in micro-batches of
            8, forward + backward + AdamW + EMA, sgemm ≈ 185 GFLOP/s): "none" 28 s and 4.6 GiB
            peak RSS, "selective" 33 s and 3.3 GiB, "blocks" 37 s and 3.0 GiB. "none" is the
            default: fastest on GPUs and for small models (where "selective" costs ~2x in
            dispatch overhead); a memory-bound CPU run of the paper-size model bounds its
            memory with micro-batches (`d3_core.training.step.train_step`) first, then "selective".
            Batch 32 in one pass needs "blocks" (2.8 GB live); glibc's default heap keeps freed
            activations there (4-5.5 GB peak RSS) unless the process sets
            ``MALLOC_MMAP_THRESHOLD_=1048576``.
        inference_chunk_tokens: Forward passes on CPU without gradients run over chunks of
            whole sequences of at most this many tokens (at least one sequence) and concatenate
            the results. The smaller temporaries are reused by malloc instead of being mapped
            afresh from the OS, about 8 % faster at batch 32, L 249. 0 disables chunking.
        null_label: Learn ``vocab_embed.null_signal``, the embedding of the null label (an
            all-NaN label row) that training with ``training.label_dropout`` > 0 teaches and
            classifier-free guidance asks for. The research checkpoints have none.
        label_conditioning: For "global" labels, also add ``label_cond`` of the label to the
            σ conditioning (`LabelConditioning`), so every block's adaLN modulation sees the
            label (DiT-style), besides ``signal_embedding``. Not in the research model.
        conv_stem: Kernel width of ``stem``, a residual Conv1d(H, H) over the embedded tokens
            before the first block (0: none, as in the research model). Local k-mer features
            from the start: a small transformer otherwise spends thousands of steps learning
            motif-sized offsets through rotary attention (measured in the CPU presets).
        token_embedding_std: Initialise ``vocab_embed.embedding`` from N(0, std²) (0: the
            research init, kaiming-uniform, std ≈ 1/√(3H), under which the label embedding
            outweighs the token identity about tenfold at H = 128 and a small model learns
            slowly).
    """

    length: int
    signal_dim: int
    label_mode: str
    vocab_size: int = 4
    hidden_size: int = 768
    n_blocks: int = 12
    n_heads: int = 12
    cond_dim: int = 128
    dropout: float = 0.1
    mlp_ratio: int = 4
    checkpointing: str = "none"
    inference_chunk_tokens: int = 4096
    null_label: bool = False
    label_conditioning: bool = False
    conv_stem: int = 0
    token_embedding_std: float = 0.0

    def __post_init__(self) -> None:
        for name in (
            "length",
            "signal_dim",
            "vocab_size",
            "hidden_size",
            "n_blocks",
            "n_heads",
            "cond_dim",
            "mlp_ratio",
        ):
            check_positive_int(name, getattr(self, name))
        check_label_mode(self.label_mode)
        if self.hidden_size % self.n_heads != 0:
            raise D3ConfigError(
                f"hidden_size must be divisible by n_heads; got hidden_size={self.hidden_size}, "
                f"n_heads={self.n_heads}"
            )
        if self.head_dim % 2 != 0:
            raise D3ConfigError(
                f"hidden_size / n_heads (the head dim) must be even for rotary embeddings; got "
                f"{self.head_dim}"
            )
        if not isinstance(self.dropout, (int, float)) or not 0.0 <= self.dropout < 1.0:
            raise D3ConfigError(f"dropout must be in [0, 1); got {self.dropout!r}")
        chunk = self.inference_chunk_tokens
        if not isinstance(chunk, int) or isinstance(chunk, bool) or chunk < 0:
            raise D3ConfigError(
                f"inference_chunk_tokens must be a non-negative integer; got {chunk!r}"
            )
        if not isinstance(self.null_label, bool):
            raise D3ConfigError(f"null_label must be true or false; got {self.null_label!r}")
        check_label_conditioning(self)
        if not isinstance(self.token_embedding_std, (int, float)) or self.token_embedding_std < 0:
            raise D3ConfigError(
                f"token_embedding_std must be a number >= 0; got {self.token_embedding_std!r}"
            )
        stem = self.conv_stem
        if (
            not isinstance(stem, int)
            or isinstance(stem, bool)
            or stem < 0
            or (stem and stem % 2 == 0)
        ):
            raise D3ConfigError(f"conv_stem must be 0 or a positive odd kernel width; got {stem!r}")
        if self.checkpointing not in CHECKPOINTING_MODES:
            raise D3ConfigError(
                f"checkpointing must be one of {CHECKPOINTING_MODES}; got {self.checkpointing!r}"
            )

    @property
    def head_dim(self) -> int:
        """Width of one attention head."""
        return self.hidden_size // self.n_heads


class VocabEmbedding(nn.Module):
    """Token embedding plus a linear embedding of the labels (docs/models.md#transformer).

    With ``null_label``, a learned ``null_signal`` (H,) stands in for the label embedding of
    null (all-NaN) label rows: the unconditional model of classifier-free guidance.
    """

    def __init__(
        self, vocab_size: int, hidden_size: int, signal_dim: int, null_label: bool = False
    ) -> None:
        super().__init__()
        self.embedding = nn.Parameter(torch.empty(vocab_size, hidden_size))
        nn.init.kaiming_uniform_(self.embedding, a=math.sqrt(5))
        self.signal_embedding = nn.Linear(signal_dim, hidden_size)
        if null_label:
            self.null_signal = nn.Parameter(torch.zeros(hidden_size))

    def forward(self, tokens: Tensor, labels: Tensor) -> Tensor:
        """Embed tokens (B, L) and labels (B, S) or (B, L, S) into (B, L, H)."""
        x = F.embedding(tokens, self.embedding)  # (B, L, H)
        if hasattr(self, "null_signal"):
            labels, null = split_null_labels(labels)  # null: (B,) or (B, L)
            signal = self.signal_embedding(labels.to(self.embedding.dtype))
            signal = torch.where(null[..., None], self.null_signal.to(signal.dtype), signal)
        else:
            signal = self.signal_embedding(labels.to(self.embedding.dtype))
        if signal.dim() == 2:
            signal = signal[:, None, :]  # (B, H) -> (B, 1, H), broadcast over positions
        return x + signal


class DDiTBlock(nn.Module):
    """Pre-norm transformer block with adaLN modulation and gated residuals
    (docs/models.md#transformer)."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        hidden = config.hidden_size
        self.n_heads = config.n_heads
        self.head_dim = config.head_dim
        self.dropout = config.dropout
        self.norm1 = LayerNormF32(hidden)
        self.attn_qkv = nn.Linear(hidden, 3 * hidden, bias=False)
        self.attn_out = nn.Linear(hidden, hidden, bias=False)
        self.norm2 = LayerNormF32(hidden)
        self.mlp = nn.Sequential(
            nn.Linear(hidden, config.mlp_ratio * hidden),
            nn.GELU(approximate="tanh"),
            nn.Linear(config.mlp_ratio * hidden, hidden),
        )
        self.adaLN_modulation = nn.Linear(config.cond_dim, 6 * hidden)
        nn.init.zeros_(self.adaLN_modulation.weight)
        nn.init.zeros_(self.adaLN_modulation.bias)

    def attention(self, h: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        """Non-causal multi-head attention with rotary q and k; h (B, L, H) -> (B, L, H)."""
        batch, length, hidden = h.shape
        # Rows of attn_qkv.weight are (three, heads, head_dim). Two matmuls instead of one so
        # that v is its own contiguous tensor: attention keeps v for backward, and a view into
        # one (B, L, 3H) output would keep the whole qkv alive.
        w_qk, w_v = self.attn_qkv.weight.split([2 * hidden, hidden])
        qk = F.linear(h, w_qk).view(batch, length, 2, self.n_heads, self.head_dim)
        v = F.linear(h, w_v).view(batch, length, self.n_heads, self.head_dim)
        q, k = apply_rotary(qk, cos, sin).unbind(2)  # each (B, L, heads, D)
        a = F.scaled_dot_product_attention(
            q.transpose(1, 2),  # (B, heads, L, D), strided views: the fused kernel takes them
            k.transpose(1, 2),
            v.transpose(1, 2),
            scale=1.0 / math.sqrt(self.head_dim),
        )  # (B, heads, L, D)
        # The fused CPU kernel lays its output out as (B, L, heads, D), so this is a view.
        return a.transpose(1, 2).reshape(batch, length, hidden)  # heads merged as (heads, D)

    def forward(self, x: Tensor, c: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        """Apply the block.

        Args:
            x: (B, L, H) float32 residual stream.
            c: (B, C) conditioning, already passed through SiLU.
            cos: (L, D) rotary cosines.
            sin: (L, D) rotary sines.

        Returns:
            (B, L, H) updated residual stream.
        """
        modulation = self.adaLN_modulation(c)[:, None, :]  # (B, 1, 6H)
        shift1, scale1, gate1, shift2, scale2, gate2 = modulation.chunk(6, dim=2)  # (B, 1, H)
        a = self.attention(modulate(self.norm1(x), shift1, scale1), cos, sin)
        x = torch.addcmul(x, gate1, F.dropout(self.attn_out(a), self.dropout, self.training))
        h = self.mlp(modulate(self.norm2(x), shift2, scale2))
        return torch.addcmul(x, gate2, F.dropout(h, self.dropout, self.training))


class OutputLayer(nn.Module):
    """Final adaLN-modulated norm and projection to V log-scores (docs/models.md#transformer)."""

    def __init__(self, hidden_size: int, vocab_size: int, cond_dim: int) -> None:
        super().__init__()
        self.norm_final = LayerNormF32(hidden_size)
        self.linear = nn.Linear(hidden_size, vocab_size)
        self.adaLN_modulation = nn.Linear(cond_dim, 2 * hidden_size)
        for layer in (self.linear, self.adaLN_modulation):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        """Map x (B, L, H) and c (B, C) to (B, L, V)."""
        shift, scale = self.adaLN_modulation(c)[:, None, :].chunk(2, dim=2)  # (B, 1, H) each
        return self.linear(modulate(self.norm_final(x), shift, scale))


_ATTENTION_OPS = tuple(
    getattr(torch.ops.aten, name)
    for name in (
        "_scaled_dot_product_flash_attention_for_cpu",
        "_scaled_dot_product_flash_attention",
        "_scaled_dot_product_efficient_attention",
        "_scaled_dot_product_cudnn_attention",
    )
    if hasattr(torch.ops.aten, name)
)
_MATMUL_OPS = (torch.ops.aten.mm, torch.ops.aten.addmm)


def _keep_narrow_matmuls(
    hidden_size: int, ctx: object, op: object, *args: Tensor, **kwargs: object
) -> CheckpointPolicy:
    """Selective-checkpointing policy: what to keep from a block's forward.

    Keeps the attention outputs and the outputs of matmuls that are H wide (v, ``attn_out``,
    ``mlp.2``): 24.5 MB each at batch 32, L 249, and each saves a recompute of 1/12 to 4/12 of
    the block's matmul work. Recomputes the wide ones (q and k, ``mlp.0``: 49 and 98 MB) and
    every element-wise op, dropout included (its random mask is replayed exactly).
    """
    packet = getattr(op, "overloadpacket", op)
    if packet in _ATTENTION_OPS:
        return CheckpointPolicy.MUST_SAVE
    if packet in _MATMUL_OPS and args[-1].shape[-1] == hidden_size:  # mat2 is (in, out)
        return CheckpointPolicy.MUST_SAVE
    return CheckpointPolicy.PREFER_RECOMPUTE


class TransformerScoreModel(ScoreModel):
    """DDiT score network: tokens, labels and σ to log-scores (docs/models.md#transformer).

    Call as ``model(tokens, labels, sigma)`` or with the research convention
    ``model(tokens, labels, train, sigma)`` (the ``train`` flag is ignored; use ``.train()``).

    Args:
        config: Model sizes and options.
    """

    config_class = TransformerConfig

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = config
        self.vocab_embed = VocabEmbedding(
            config.vocab_size, config.hidden_size, config.signal_dim, config.null_label
        )
        if config.token_embedding_std:
            nn.init.normal_(self.vocab_embed.embedding, 0.0, config.token_embedding_std)
        self.sigma_map = SigmaEmbedding(config.cond_dim)
        if config.label_conditioning:
            self.label_cond = LabelConditioning(
                config.signal_dim, config.cond_dim, config.null_label
            )
        if config.conv_stem:
            k = config.conv_stem
            self.stem = nn.Conv1d(config.hidden_size, config.hidden_size, k, padding=k // 2)
        self.rotary_emb = Rotary(config.head_dim)
        self.blocks = nn.ModuleList(DDiTBlock(config) for _ in range(config.n_blocks))
        self.output_layer = OutputLayer(config.hidden_size, config.vocab_size, config.cond_dim)

    def score(self, tokens: Tensor, labels: Tensor, sigma: Tensor) -> Tensor:
        """Log-scores (B, L, V) on checked inputs, in chunks on CPU without gradients."""
        cfg = self.config
        on_cpu = tokens.device.type == "cpu"
        per_chunk = max(1, cfg.inference_chunk_tokens // cfg.length)
        if (
            cfg.inference_chunk_tokens
            and tokens.shape[0] > per_chunk
            and on_cpu
            and not torch.is_grad_enabled()
        ):
            chunks = zip(
                tokens.split(per_chunk),
                labels.split(per_chunk),
                sigma.split(per_chunk),
                strict=True,
            )
            return torch.cat([self._score(*chunk) for chunk in chunks])
        return self._score(tokens, labels, sigma)

    def _score(self, tokens: Tensor, labels: Tensor, sigma: Tensor) -> Tensor:
        """Forward pass on checked inputs: tokens (B, L), labels, sigma (B,) -> (B, L, V)."""
        x = self.vocab_embed(tokens, labels)  # (B, L, H)
        if self.config.conv_stem:
            x = x + self.stem(x.transpose(1, 2)).transpose(1, 2)
        c = self.sigma_map(sigma)  # (B, C)
        if self.config.label_conditioning:
            c = c + self.label_cond(labels.to(c.dtype))
        c = F.silu(c)
        cos, sin = self.rotary_emb(tokens.shape[1], x.dtype)  # (L, D) each
        run_block = self._block_runner()
        for block in self.blocks:
            x = run_block(block, x, c, cos, sin)
        out = self.output_layer(x, c).float()  # (B, L, V)
        return out.scatter(-1, tokens[..., None], 0.0)

    def _block_runner(self) -> Callable[..., Tensor]:
        """Return f(block, *args) applying the configured activation checkpointing."""
        mode = self.config.checkpointing
        if mode == "none" or not (self.training and torch.is_grad_enabled()):
            return lambda block, *args: block(*args)
        if mode == "blocks":
            return functools.partial(checkpoint, use_reentrant=False)
        policy = functools.partial(_keep_narrow_matmuls, self.config.hidden_size)
        context_fn = functools.partial(create_selective_checkpoint_contexts, policy)
        return functools.partial(checkpoint, use_reentrant=False, context_fn=context_fn)
