"""Which keys of a research or d3-dna checkpoint belong to which tower
(docs/checkpoint-formats.md#research-checkpoints).

Research files hold both towers, transformer and conv, whatever was trained; ``sigma_map`` is
shared by both and three tensors (``scale``, ``label_embed``, ``embed``) are used by neither.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import Tensor

__all__ = [
    "CONV_PREFIXES",
    "SHARED_PREFIXES",
    "TRANSFORMER_PREFIXES",
    "UNUSED_PREFIXES",
    "adaln_untrained",
    "describe_dropped",
    "tower_weights",
]

TRANSFORMER_PREFIXES = ("vocab_embed.", "rotary_emb.", "blocks.", "output_layer.")
"""Keys only the transformer tower uses."""
CONV_PREFIXES = ("linear.", "conv_blocks.", "denses.", "norms.", "final.", "label_emb.")
"""Keys only the conv tower uses."""
SHARED_PREFIXES = ("sigma_map.",)
"""Keys both towers use: the same tensors, never dropped with a dead tower."""
UNUSED_PREFIXES = ("scale", "label_embed.", "embed.")
"""Keys no forward pass uses: ``scale``, the DiT label table, the DeepSTARR Fourier embedding."""


def tower_weights(weights: Mapping[str, Tensor], arch: str) -> tuple[dict[str, Tensor], list[str]]:
    """The entries one tower uses, and the names of those it does not.

    Args:
        weights: Model weights (or EMA shadows) by name.
        arch: ``"transformer"`` or ``"conv"``; ``sigma_map`` belongs to both.

    Returns:
        (kept entries by name, in order; dropped names).
    """
    own = TRANSFORMER_PREFIXES if arch == "transformer" else CONV_PREFIXES
    keep = own + SHARED_PREFIXES
    kept = {k: v for k, v in weights.items() if k.startswith(keep)}
    return kept, [k for k in weights if k not in kept]


def adaln_untrained(weights: Mapping[str, Tensor]) -> bool | None:
    """Whether every transformer adaLN weight is still exactly zero (its initial value).

    An untrained transformer tower keeps them zero: the optimizer never moves a parameter that
    gets no gradient. Returns None when the file has no such weights.
    """
    keys = [k for k in weights if k.endswith("adaLN_modulation.weight")]
    if not keys:
        return None
    return all(not bool(weights[k].any()) for k in keys)


def describe_dropped(names: Sequence[str]) -> str:
    """A short account of dropped keys by group, e.g. ``"conv tower (126), scale, embed (3)"``."""
    groups: dict[str, int] = {}
    for name in names:
        if name.startswith(TRANSFORMER_PREFIXES):
            label = "untrained transformer tower"
        elif name.startswith(CONV_PREFIXES):
            label = "untrained conv tower"
        else:
            label = name.split(".", 1)[0]
        groups[label] = groups.get(label, 0) + 1
    return ", ".join(f"{g} ({n} tensors)" if n > 1 else g for g, n in groups.items())
