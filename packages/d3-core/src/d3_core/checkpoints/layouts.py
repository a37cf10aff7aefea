"""The parameter layouts of the checkpoints users already have (docs/checkpoint-formats.md), read
strictly by name.

Two layouts exist outside d3:

* **research**: the published D3 code's ``checkpoint.pth`` (and the earlier Lightning
  converter's files, which wrap it). The model holds both towers, transformer and conv, whatever
  architecture was trained, plus three tensors nothing uses (``scale``, ``label_embed``,
  ``embed``). Its EMA is a positional list over the trainable parameters.
* **packaged**: the ``d3-dna`` release's Lightning ``.ckpt``: one tower, with its own unused
  tensors, and a positional EMA list over that model's parameters.

`expected_keys` writes out the key order such a file must have, with every shape that follows
from the sizes found in the file; `check_layout` compares a file against it, and
`d3_core.checkpoints.ema_names.ema_by_name` (re-exported here) names the positional EMA list
through it. Nothing is ever copied by position into a module.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from d3_core.checkpoints.ema_names import ema_by_name, listing
from d3_core.errors import CheckpointError

__all__ = [
    "KeySpec",
    "Layout",
    "check_layout",
    "ema_by_name",
    "expected_keys",
    "layout_sizes",
    "plain_config",
]

# Groups of keys in the order the research module registers them
# (docs/checkpoint-formats.md#research-checkpoints). A format is a subsequence of these groups; each
# group is all-or-nothing.
RESEARCH_GROUPS = (
    "scale",
    "vocab_embed",
    "sigma_map",
    "label_embed",
    "rotary_emb",
    "blocks",
    "output_layer",
    "embed",
    "linear",
    "conv_blocks",
    "denses",
    "norms",
    "final",
    "label_emb",
)
TRANSFORMER_GROUPS = (
    "vocab_embed",
    "sigma_map",
    "label_embed",
    "rotary_emb",
    "blocks",
    "output_layer",
)
CONV_GROUPS = ("sigma_map", "linear", "conv_blocks", "denses", "norms", "final")


@dataclass(frozen=True)
class Layout:
    """A key layout: which groups a file must hold and which it may hold.

    Attributes:
        name: Shown in messages, e.g. ``"research checkpoint"``.
        required: Groups that must be present.
        optional: Groups that may be present (all keys of a group, or none).
        dense_input: Input width of ``denses.k.dense``; None: the σ map's width C.
        fourier_width: Width of the unused ``embed`` (``W`` has half of it, the Linear is square);
            None: C.
    """

    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    dense_input: int | None = None
    fourier_width: int | None = None


RESEARCH_CONV_WIDTH = 256
"""A constant of the research conv code (docs/checkpoint-formats.md#research-checkpoints): its
``denses.k.dense`` take 256 inputs and its unused ``embed`` is 256 wide, whatever ``cond_dim`` the
config gives the σ map. So a Tran file's dead conv tower has (256, 256) denses beside a σ map of
width 128."""

RESEARCH = Layout(
    "research checkpoint (both towers)",
    required=tuple(g for g in RESEARCH_GROUPS if g not in ("embed", "label_emb")),
    optional=("embed", "label_emb"),
    dense_input=RESEARCH_CONV_WIDTH,
    fourier_width=RESEARCH_CONV_WIDTH,
)
"""docs/checkpoint-formats.md#research-checkpoints: ``embed`` only in DeepSTARR-Tran files,
``label_emb`` in DeepSTARR and MPRA."""
PACKAGED_TRANSFORMER = Layout("d3-dna transformer checkpoint", required=TRANSFORMER_GROUPS)
"""docs/checkpoint-formats.md#packaged-release-checkpoints, transformer: the research transformer
tower with its ``label_embed`` table."""
PACKAGED_CONV = Layout(
    "d3-dna conv checkpoint", required=("scale", *CONV_GROUPS[:1], "embed", *CONV_GROUPS[1:])
)
"""docs/checkpoint-formats.md#packaged-release-checkpoints, conv: ``scale``, σ map, the unused
``embed``, the conv tower; no ``label_emb``."""


@dataclass(frozen=True)
class KeySpec:
    """One expected state-dict entry.

    Attributes:
        name: The key.
        shape: Its shape; None where only the file can say (unused tensors).
        trainable: Whether it is in ``parameters()`` with gradients, i.e. in the EMA list.
    """

    name: str
    shape: tuple[int, ...] | None
    trainable: bool = True


def _shape(weights: Mapping[str, Tensor], key: str, dim: int, default: int) -> int:
    tensor = weights.get(key)
    if tensor is None or tensor.dim() <= dim:
        return default
    return int(tensor.shape[dim])


def _count(weights: Mapping[str, Tensor], pattern: str) -> int:
    regex = re.compile(pattern)
    return len({m.group(1) for k in weights if (m := regex.fullmatch(k))})


def layout_sizes(weights: Mapping[str, Tensor]) -> dict[str, int]:
    """The sizes a file's tensors imply (the paper sizes where a tensor is absent).

    Returns:
        ``vocab``, ``hidden``, ``signal``, ``cond``, ``features`` (σ features), ``head_dim``,
        ``n_blocks``, ``mlp_hidden``, ``channels``, ``kernel``, ``conv_blocks``.
    """
    w = weights
    hidden = _shape(w, "vocab_embed.embedding", 1, 768)
    return {
        "vocab": _shape(w, "vocab_embed.embedding", 0, _shape(w, "final.2.weight", 0, 4)),
        "hidden": hidden,
        "signal": _shape(w, "vocab_embed.signal_embedding.weight", 1, 1),
        "cond": _shape(w, "sigma_map.mlp.0.weight", 0, 128),
        "features": _shape(w, "sigma_map.mlp.0.weight", 1, 256),
        "head_dim": 2 * _shape(w, "rotary_emb.inv_freq", 0, 32),
        "n_blocks": _count(w, r"blocks\.(\d+)\..*"),
        "mlp_hidden": _shape(w, "blocks.0.mlp.0.weight", 0, 4 * hidden),
        "channels": _shape(w, "linear.weight", 0, 256),
        "kernel": _shape(w, "linear.weight", 2, 9),
        "conv_blocks": _count(w, r"conv_blocks\.(\d+)\..*"),
    }


def _group_keys(
    group: str, s: dict[str, int], weights: Mapping[str, Tensor], layout: Layout
) -> list[KeySpec]:
    """The expected entries of one group, in registration order."""
    v, h, c, ch, k = s["vocab"], s["hidden"], s["cond"], s["channels"], s["kernel"]
    dense_in = layout.dense_input or c
    fourier = layout.fourier_width or c

    def free(name: str) -> tuple[int, ...] | None:  # a shape only the file knows
        return tuple(weights[name].shape) if name in weights else None

    if group == "scale":
        return [KeySpec("scale", (1,))]
    if group == "vocab_embed":
        return [
            KeySpec("vocab_embed.embedding", (v, h)),
            KeySpec("vocab_embed.signal_embedding.weight", (h, s["signal"])),
            KeySpec("vocab_embed.signal_embedding.bias", (h,)),
        ]
    if group == "sigma_map":
        return [
            KeySpec("sigma_map.mlp.0.weight", (c, s["features"])),
            KeySpec("sigma_map.mlp.0.bias", (c,)),
            KeySpec("sigma_map.mlp.2.weight", (c, c)),
            KeySpec("sigma_map.mlp.2.bias", (c,)),
        ]
    if group == "label_embed":
        table = free("label_embed.embedding_table.weight")
        rows = table[0] if table else None
        return [KeySpec("label_embed.embedding_table.weight", (rows, c) if rows else None)]
    if group == "rotary_emb":
        return [KeySpec("rotary_emb.inv_freq", (s["head_dim"] // 2,), trainable=False)]
    if group == "blocks":
        specs = []
        for i in range(s["n_blocks"]):
            p, m = f"blocks.{i}.", s["mlp_hidden"]
            specs += [
                KeySpec(p + "norm1.weight", (h,)),
                KeySpec(p + "attn_qkv.weight", (3 * h, h)),
                KeySpec(p + "attn_out.weight", (h, h)),
                KeySpec(p + "norm2.weight", (h,)),
                KeySpec(p + "mlp.0.weight", (m, h)),
                KeySpec(p + "mlp.0.bias", (m,)),
                KeySpec(p + "mlp.2.weight", (h, m)),
                KeySpec(p + "mlp.2.bias", (h,)),
                KeySpec(p + "adaLN_modulation.weight", (6 * h, c)),
                KeySpec(p + "adaLN_modulation.bias", (6 * h,)),
            ]
        return specs
    if group == "output_layer":
        return [
            KeySpec("output_layer.norm_final.weight", (h,)),
            KeySpec("output_layer.linear.weight", (v, h)),
            KeySpec("output_layer.linear.bias", (v,)),
            KeySpec("output_layer.adaLN_modulation.weight", (2 * h, c)),
            KeySpec("output_layer.adaLN_modulation.bias", (2 * h,)),
        ]
    if group == "embed":
        return [
            KeySpec("embed.0.W", (fourier // 2,), trainable=False),
            KeySpec("embed.1.weight", (fourier, fourier)),
            KeySpec("embed.1.bias", (fourier,)),
        ]
    if group == "linear":
        return [KeySpec("linear.weight", (ch, v + 1, k)), KeySpec("linear.bias", (ch,))]
    if group in ("conv_blocks", "denses", "norms"):
        specs = []
        for i in range(s["conv_blocks"]):
            if group == "conv_blocks":
                specs += [KeySpec(f"conv_blocks.{i}.weight", (ch, ch, k))]
                specs += [KeySpec(f"conv_blocks.{i}.bias", (ch,))]
            elif group == "denses":
                specs += [KeySpec(f"denses.{i}.dense.weight", (ch, dense_in))]
                specs += [KeySpec(f"denses.{i}.dense.bias", (ch,))]
            else:
                specs += [KeySpec(f"norms.{i}.weight", (ch,)), KeySpec(f"norms.{i}.bias", (ch,))]
        return specs
    if group == "final":
        return [
            KeySpec("final.0.weight", (ch, ch, 1)),
            KeySpec("final.0.bias", (ch,)),
            KeySpec("final.2.weight", (v, ch, 1)),
            KeySpec("final.2.bias", (v,)),
        ]
    if group == "label_emb":
        first = free("label_emb.0.weight")
        out = first[0] if first else None
        return [
            KeySpec("label_emb.0.weight", first),
            KeySpec("label_emb.0.bias", (out,) if out else None),
            KeySpec("label_emb.2.weight", (out, out) if out else None),
            KeySpec("label_emb.2.bias", (out,) if out else None),
        ]
    raise ValueError(f"unknown key group {group!r}")


def _group_of(key: str) -> str:
    return key.split(".", 1)[0]


def expected_keys(weights: Mapping[str, Tensor], layout: Layout) -> list[KeySpec]:
    """The entries a file of ``layout`` must hold, in order, with shapes from its sizes.

    Optional groups are expected when the file holds any key of them.
    """
    sizes = layout_sizes(weights)
    present = {_group_of(k) for k in weights}
    groups = [
        g
        for g in RESEARCH_GROUPS
        if g in layout.required or (g in layout.optional and g in present)
    ]
    return [spec for g in groups for spec in _group_keys(g, sizes, weights, layout)]


def check_layout(weights: Mapping[str, Tensor], layout: Layout, source: str) -> list[KeySpec]:
    """Checks a file's model weights against a layout: names, order and every shape.

    Args:
        weights: The file's model state dict, in its stored order.
        layout: What the file claims to be.
        source: The file, for messages.

    Returns:
        The expected entries (the file's order), for `ema_by_name`.

    Raises:
        CheckpointError: Listing the missing, unexpected and mis-shaped keys, or the first key
            out of order (the order names the positional EMA list, so it must be exact).
    """
    expected = expected_keys(weights, layout)
    names = [spec.name for spec in expected]
    missing = [n for n in names if n not in weights]
    unexpected = [k for k in weights if k not in set(names)]
    mismatched = [
        f"{spec.name}: file {tuple(weights[spec.name].shape)} vs expected {spec.shape}"
        for spec in expected
        if spec.name in weights
        and spec.shape is not None
        and tuple(weights[spec.name].shape) != spec.shape
    ]
    if missing or unexpected or mismatched:
        raise CheckpointError(
            f"{source} does not have the layout of a {layout.name} "
            f"(docs/checkpoint-formats.md): missing "
            f"{listing(missing)}; unexpected {listing(unexpected)}; shape mismatches "
            f"{listing(mismatched)}"
        )
    for position, (found, want) in enumerate(zip(weights, names, strict=True)):
        if found != want:
            raise CheckpointError(
                f"{source}: its weights are not in the {layout.name} order: entry {position} is "
                f"{found!r} where {want!r} belongs; the EMA list cannot be named by position"
            )
    return expected


def plain_config(config: Any) -> Any:
    """A config read from a checkpoint (DictConfig, dict, None) as plain containers."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(config, (DictConfig, ListConfig)):
        return OmegaConf.to_container(config, resolve=False)
    return config
