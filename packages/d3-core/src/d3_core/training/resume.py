"""What ``d3 train --resume`` checks in a checkpoint before anything is written: that d3's
trainer wrote it with its optimizer state, at which step, and that the config builds a model its
weights fit (`d3_core.training.run.train` calls these)."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch

from d3_core.errors import CheckpointError

__all__ = ["check_resume_fits", "resume_state", "resume_step"]


def resume_state(checkpoint: Path) -> dict:
    """One of our checkpoints, memory-mapped, checked to hold what a resume needs."""
    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:
        raise CheckpointError(f"cannot read checkpoint {str(checkpoint)!r}: {err}") from None
    if "d3" not in state or "global_step" not in state:
        raise CheckpointError(
            f"{checkpoint} was not written by `d3 train`, so training cannot resume from it"
        )
    origin = state["d3"].get("converted_from") if isinstance(state["d3"], dict) else None
    if "optimizer_states" not in state or origin:
        source = f"converted from a {origin.get('format')} checkpoint and " if origin else ""
        raise CheckpointError(
            f"{checkpoint} was {source}holds no optimizer state: it can be sampled and "
            f"evaluated, but training cannot resume from it"
        )
    return state


def resume_step(checkpoint: Path) -> int:
    """The optimizer step stored in one of our checkpoints."""
    return int(resume_state(checkpoint)["global_step"])


def check_resume_fits(module: L.LightningModule, state: dict, checkpoint: Path) -> None:
    """Refuses, before anything is written, a resume whose config builds other weights.

    The message names the ``model.*`` values that differ from the checkpoint's config and the
    first weight whose name or shape does not match.
    """
    stored = state.get("state_dict", {})
    built = module.state_dict()
    wrong = [
        f"{key} {tuple(stored[key].shape)} in the checkpoint, {tuple(value.shape)} here"
        for key, value in built.items()
        if key in stored and tuple(stored[key].shape) != tuple(value.shape)
    ]
    wrong += [f"{key} missing from the checkpoint" for key in built if key not in stored]
    wrong += [f"{key} not in this model" for key in stored if key not in built]
    if not wrong:
        return
    old = state.get("hyper_parameters", {}).get("cfg", {}).get("model", {})
    new = module.cfg.model
    changed = [
        f"model.{key} = {old[key]!r} in the checkpoint, {new[key]!r} here"
        for key in old
        if key in new and old[key] != new[key]
    ]
    because = f" ({'; '.join(changed)})" if changed else ""
    raise CheckpointError(
        f"cannot resume {checkpoint}: the config builds a model whose weights do not fit "
        f"it{because}: {wrong[0]}; resume without changing the model's keys"
    )
