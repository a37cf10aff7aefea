"""The earlier Lightning integration's files: a research checkpoint in a Lightning envelope
(docs/checkpoint-formats.md#converted-lightning-checkpoints).

Its ``state_dict`` holds the research model under ``score_model.`` (both towers) and the EMA list
as ``ema.shadow_params``; ``hyper_parameters`` holds the research config as a pickled OmegaConf
object (so the file loads only when trusted) and the research step as ``original_step``. It is
read as its research file is (`d3_core.checkpoints.research.from_research_layout`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from d3_core.checkpoints import envelope, layouts
from d3_core.checkpoints.interface import CheckpointContents, CheckpointFormat
from d3_core.checkpoints.research import from_research_layout
from d3_core.config.schema import file_config

__all__ = ["FORMAT", "detect", "read"]


def detect(payload: Any) -> bool:
    """A Lightning envelope around the research layout (both towers, or ``original_step``)."""
    return envelope.holds_research_layout(payload)


def read(
    path: Path, payload: Any, *, dataset: str | None = None, arch: str | None = None
) -> CheckpointContents:
    """A converted file, as the research checkpoint it wraps."""
    model, shadow, meta, hparams = envelope.lightning_parts(payload, path)
    notes = ["a research checkpoint in the earlier Lightning integration's envelope"]
    config = file_config(layouts.plain_config(hparams.get("cfg")), str(path), notes)
    step = hparams.get("original_step", payload.get("global_step", 0))
    return from_research_layout(
        model,
        shadow,
        meta,
        config,
        path=path,
        fmt=FORMAT.name,
        step=int(step),
        dataset=dataset,
        arch=arch,
        notes=notes,
    )


FORMAT = CheckpointFormat(
    name="converted",
    description="the earlier Lightning integration's .ckpt: a research checkpoint in an envelope",
    expects=envelope.EXPECTS,
    detect=detect,
    read=read,
)
