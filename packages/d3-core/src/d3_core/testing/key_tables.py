"""docs/checkpoint-formats.md's key tables: every entry of the checkpoint files users already have,
in order.

`research_key_table` is docs/checkpoint-formats.md#research-checkpoints (a research
``checkpoint.pth``, both towers), `packaged_key_table`
docs/checkpoint-formats.md#packaged-release-checkpoints (a d3-dna ``.ckpt``, one tower); each entry
has its name, shape and whether it is in the positional EMA list. They are transcribed from
docs/checkpoint-formats.md, not derived from d3's modules or readers, so tests written from them can
catch d3's mistakes. Research constants stand as the research code writes them, whatever the config
says: the conv tower's ``denses.k.dense`` take 256 inputs in every file (`RESEARCH_DENSE_INPUT`),
DeepSTARR-Tran's unused ``embed`` is (128,), (256, 256), (256,), and ``cond_dim`` is 128 in Tran
files and 256 in Conv files. `PAPER_LAYOUTS` lists the six published dataset × architecture layouts
at paper size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "PAPER_LAYOUTS",
    "RESEARCH_DENSE_INPUT",
    "Key",
    "packaged_key_table",
    "research_key_table",
]

RESEARCH_DENSE_INPUT = 256
"""Input width of the research conv tower's ``denses.k.dense``: a constant of that code, not
``cond_dim`` (docs/checkpoint-formats.md#research-checkpoints), so a Tran file's dead conv tower has
(256, 256) denses beside C = 128."""


@dataclass(frozen=True)
class Key:
    """One state-dict entry of a table: name, shape, and whether it is in the EMA list."""

    name: str
    shape: tuple[int, ...]
    ema: bool = True


PAPER_LAYOUTS: dict[tuple[str, str], dict[str, Any]] = {
    ("deepstarr", "transformer"): {"signal": 2, "length": 249, "label_classes": 5,
                                   "fourier": True, "label_emb_width": 2, "ema_length": 266},
    ("deepstarr", "conv"): {"signal": 2, "length": 249, "label_classes": 5, "fourier": False,
                            "label_emb_width": 2, "ema_length": 264},
    ("mpra", "transformer"): {"signal": 3, "length": 200, "label_classes": 4, "fourier": False,
                              "label_emb_width": 2, "ema_length": 264},
    ("mpra", "conv"): {"signal": 3, "length": 200, "label_classes": 4, "fourier": False,
                       "label_emb_width": 3, "ema_length": 264},
    ("promoter", "transformer"): {"signal": 1, "length": 1024, "label_classes": 5,
                                  "fourier": False, "label_emb_width": None, "ema_length": 260},
    ("promoter", "conv"): {"signal": 1, "length": 1024, "label_classes": 5, "fourier": False,
                           "label_emb_width": None, "ema_length": 260},
}  # fmt: skip
"""docs/checkpoint-formats.md#research-checkpoints per published layout: label width S, length L,
rows of the unused ``label_embed.embedding_table`` (n_cls + 1), whether the unused ``embed`` is
there, the input width S_lab of the conv ``label_emb`` (None: none), and the EMA list length at
paper size."""


def _transformer_keys(*, vocab: int, hidden: int, signal: int, cond: int, label_classes: int,
                      n_blocks: int, n_heads: int) -> list[Key]:  # fmt: skip
    keys = [
        Key("vocab_embed.embedding", (vocab, hidden)),
        Key("vocab_embed.signal_embedding.weight", (hidden, signal)),
        Key("vocab_embed.signal_embedding.bias", (hidden,)),
        *_sigma_keys(cond),
        Key("label_embed.embedding_table.weight", (label_classes, cond)),
        Key("rotary_emb.inv_freq", (hidden // n_heads // 2,), ema=False),
    ]
    for i in range(n_blocks):
        p = f"blocks.{i}."
        keys += [
            Key(p + "norm1.weight", (hidden,)),
            Key(p + "attn_qkv.weight", (3 * hidden, hidden)),
            Key(p + "attn_out.weight", (hidden, hidden)),
            Key(p + "norm2.weight", (hidden,)),
            Key(p + "mlp.0.weight", (4 * hidden, hidden)),
            Key(p + "mlp.0.bias", (4 * hidden,)),
            Key(p + "mlp.2.weight", (hidden, 4 * hidden)),
            Key(p + "mlp.2.bias", (hidden,)),
            Key(p + "adaLN_modulation.weight", (6 * hidden, cond)),
            Key(p + "adaLN_modulation.bias", (6 * hidden,)),
        ]
    return [
        *keys,
        Key("output_layer.norm_final.weight", (hidden,)),
        Key("output_layer.linear.weight", (vocab, hidden)),
        Key("output_layer.linear.bias", (vocab,)),
        Key("output_layer.adaLN_modulation.weight", (2 * hidden, cond)),
        Key("output_layer.adaLN_modulation.bias", (2 * hidden,)),
    ]


def _sigma_keys(cond: int) -> list[Key]:
    return [
        Key("sigma_map.mlp.0.weight", (cond, 256)),
        Key("sigma_map.mlp.0.bias", (cond,)),
        Key("sigma_map.mlp.2.weight", (cond, cond)),
        Key("sigma_map.mlp.2.bias", (cond,)),
    ]


def _conv_keys(
    *, vocab: int, channels: int, kernel: int, blocks: int, dense_input: int
) -> list[Key]:
    keys = [Key("linear.weight", (channels, vocab + 1, kernel)), Key("linear.bias", (channels,))]
    for i in range(blocks):
        keys += [Key(f"conv_blocks.{i}.weight", (channels, channels, kernel)),
                 Key(f"conv_blocks.{i}.bias", (channels,))]  # fmt: skip
    for i in range(blocks):
        keys += [Key(f"denses.{i}.dense.weight", (channels, dense_input)),
                 Key(f"denses.{i}.dense.bias", (channels,))]  # fmt: skip
    for i in range(blocks):
        keys += [Key(f"norms.{i}.weight", (channels,)), Key(f"norms.{i}.bias", (channels,))]
    return [
        *keys,
        Key("final.0.weight", (channels, channels, 1)),
        Key("final.0.bias", (channels,)),
        Key("final.2.weight", (vocab, channels, 1)),
        Key("final.2.bias", (vocab,)),
    ]


def research_key_table(
    *,
    arch: str,
    signal: int,
    length: int,
    label_classes: int,
    fourier: bool = False,
    label_emb_width: int | None = None,
    hidden: int = 768,
    n_blocks: int = 12,
    n_heads: int = 12,
    channels: int = 256,
    conv_blocks: int = 20,
    kernel: int = 9,
    vocab: int = 4,
) -> list[Key]:
    """docs/checkpoint-formats.md#research-checkpoints: every entry of a research ``checkpoint.pth``
    model, in its stored order.

    Both towers are there whatever ``arch`` trained; ``arch`` only sets C (128 Tran, 256 Conv).
    The defaults are the paper sizes; tests shrink them, never the research constants.
    """
    cond = 128 if arch == "transformer" else 256
    keys = [Key("scale", (1,))]
    keys += _transformer_keys(vocab=vocab, hidden=hidden, signal=signal, cond=cond,
                              label_classes=label_classes, n_blocks=n_blocks, n_heads=n_heads)  # fmt: skip
    if fourier:
        keys += [Key("embed.0.W", (128,), ema=False), Key("embed.1.weight", (256, 256)),
                 Key("embed.1.bias", (256,))]  # fmt: skip
    keys += _conv_keys(vocab=vocab, channels=channels, kernel=kernel, blocks=conv_blocks,
                       dense_input=RESEARCH_DENSE_INPUT)  # fmt: skip
    if label_emb_width is not None:
        keys += [Key("label_emb.0.weight", (length, label_emb_width)),
                 Key("label_emb.0.bias", (length,)), Key("label_emb.2.weight", (length, length)),
                 Key("label_emb.2.bias", (length,))]  # fmt: skip
    return keys


def packaged_key_table(
    *,
    arch: str,
    signal: int,
    hidden: int = 768,
    n_blocks: int = 12,
    n_heads: int = 12,
    cond: int = 128,
    channels: int = 256,
    conv_blocks: int = 20,
    kernel: int = 9,
    vocab: int = 4,
) -> list[Key]:
    """docs/checkpoint-formats.md#packaged-release-checkpoints: the model of a d3-dna ``.ckpt`` (one
    tower), in its stored order.

    The conv model's unused ``embed`` is d3-dna's GaussianFourierProjection(C) then Linear(C, C),
    and its denses take C; both as d3-dna 0.1.3 builds them.
    """
    if arch == "transformer":
        return _transformer_keys(vocab=vocab, hidden=hidden, signal=signal, cond=cond,
                                 label_classes=5, n_blocks=n_blocks, n_heads=n_heads)  # fmt: skip
    return [
        Key("scale", (1,)),
        *_sigma_keys(cond),
        Key("embed.0.W", (cond // 2,), ema=False),
        Key("embed.1.weight", (cond, cond)),
        Key("embed.1.bias", (cond,)),
        *_conv_keys(vocab=vocab, channels=channels, kernel=kernel, blocks=conv_blocks,
                    dense_input=cond),
    ]  # fmt: skip
