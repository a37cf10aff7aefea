"""The Lightning envelope that the d3-dna release and the earlier Lightning integration share.

Both store the score model's weights in ``state_dict`` under ``score_model.``, a positional EMA
list (``ema.shadow_params`` in the state dict, or an ``ema`` entry beside it) and their config as
a pickled OmegaConf object in ``hyper_parameters`` (so they load only when trusted). What is
inside tells them apart: the earlier integration wrapped a research checkpoint, both towers and
all (`holds_research_layout`); d3-dna's holds one tower. d3's own files are Lightning checkpoints
too, but their ``d3`` block makes them d3's (`d3_core.checkpoints.native`), not this envelope.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import Tensor

from d3_core.checkpoints import layouts, towers
from d3_core.checkpoints.interface import MODEL_PREFIX
from d3_core.errors import CheckpointError

__all__ = ["EXPECTS", "holds_research_layout", "lightning_parts", "score_model_keys"]

EXPECTS = "a Lightning checkpoint of the packaged release ('state_dict' with 'score_model.*')"
"""What the refusal of an unknown file says both envelope formats look for."""


def score_model_keys(payload: Any) -> list[str] | None:
    """The score model's parameter names of a Lightning envelope (prefix removed), or None if
    the payload is not one (no ``state_dict`` with ``score_model.*``, or a d3 file)."""
    if not isinstance(payload, dict) or "d3" in payload:
        return None
    weights = payload.get("state_dict")
    if not isinstance(weights, dict):
        return None
    keys = [str(k)[len(MODEL_PREFIX) :] for k in weights if str(k).startswith(MODEL_PREFIX)]
    return keys or None


def holds_research_layout(payload: Any) -> bool:
    """Whether an envelope wraps a research checkpoint: both towers' weights, or the earlier
    integration's ``hyper_parameters.original_step``."""
    keys = score_model_keys(payload)
    if keys is None:
        return False
    both = any(k.startswith(towers.TRANSFORMER_PREFIXES) for k in keys) and any(
        k.startswith(towers.CONV_PREFIXES) for k in keys
    )
    hparams = payload.get("hyper_parameters") or {}
    try:
        return both or "original_step" in hparams
    except TypeError:  # hyper-parameters of a kind that holds no keys
        return both


def lightning_parts(state: dict, path: Path) -> tuple[dict, Any, dict, Any]:
    """(model weights, EMA list, EMA metadata, hyper-parameters) of a Lightning envelope.

    Raises:
        CheckpointError: No EMA list, in the state dict or beside it.
    """
    weights = state["state_dict"]
    model = {k[len(MODEL_PREFIX) :]: v for k, v in weights.items() if k.startswith(MODEL_PREFIX)}
    if "ema.shadow_params" in weights:
        meta = {
            k[len("ema.") :]: weights[k] for k in ("ema.decay", "ema.num_updates") if k in weights
        }
        shadow = weights["ema.shadow_params"]
    elif isinstance(state.get("ema"), dict) and "shadow_params" in state["ema"]:
        meta, shadow = state["ema"], state["ema"]["shadow_params"]
    else:
        raise CheckpointError(
            f"{path} has no EMA list ('ema.shadow_params'); it cannot be loaded with its EMA "
            f"weights"
        )
    meta = {k: (v.item() if isinstance(v, Tensor) else v) for k, v in meta.items()}
    hparams = layouts.plain_config(state.get("hyper_parameters")) or {}
    return model, shadow, meta, dict(hparams) if isinstance(hparams, dict) else {}
