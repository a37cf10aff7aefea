"""Naming a positional EMA list through a checked key order (docs/checkpoint-formats.md).

The research code and the d3-dna release store their EMA as ``shadow_params``: one tensor per
trainable parameter, in the order the module registers them, with no names. `ema_by_name` gives
each its name through the key order `d3_core.checkpoints.layouts.check_layout` has verified, and
checks every shape, so nothing is ever copied into a module by position.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from torch import Tensor

from d3_core.errors import CheckpointError

if TYPE_CHECKING:
    from d3_core.checkpoints.layouts import KeySpec

__all__ = ["ema_by_name", "listing"]


def listing(items: Sequence[str], limit: int = 12) -> str:
    """Items for a message, at most `limit` of them: ``"a, b and 3 more"``; ``"none"`` if none."""
    if not items:
        return "none"
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def ema_by_name(
    shadow: Sequence[Tensor], expected: Sequence[KeySpec], source: str
) -> dict[str, Tensor]:
    """Names a positional EMA list through a checked layout, verifying every shape.

    Args:
        shadow: ``ema.shadow_params``, one tensor per trainable parameter in module order.
        expected: `check_layout`'s result for the same file.
        source: The file, for messages.

    Raises:
        CheckpointError: The list has another length than the trainable parameters, or an entry
            has the wrong shape (both named).
    """
    trainable = [spec for spec in expected if spec.trainable]
    if not isinstance(shadow, (list, tuple)) or not all(isinstance(t, Tensor) for t in shadow):
        raise CheckpointError(f"{source}: ema.shadow_params must be a list of tensors")
    if len(shadow) != len(trainable):
        raise CheckpointError(
            f"{source}: the EMA list has {len(shadow)} tensors but the model has "
            f"{len(trainable)} trainable parameters; it belongs to another model"
        )
    named: dict[str, Tensor] = {}
    wrong = []
    for index, (spec, tensor) in enumerate(zip(trainable, shadow, strict=True)):
        if spec.shape is not None and tuple(tensor.shape) != spec.shape:
            wrong.append(f"[{index}] {spec.name}: EMA {tuple(tensor.shape)} vs {spec.shape}")
        named[spec.name] = tensor
    if wrong:
        raise CheckpointError(
            f"{source}: EMA entries do not match the parameters they stand for: {listing(wrong)}"
        )
    return named
