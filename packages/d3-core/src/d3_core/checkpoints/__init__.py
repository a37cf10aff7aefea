"""Checkpoint files: every format a user owns, read safely and strictly by name.

One module per format, each behind one interface (`interface.CheckpointFormat`: a name, a
description, ``detect`` and ``read``): ``native`` (d3's own ``.ckpt``), ``research`` (the
published D3 code's ``checkpoint.pth`` and its run directory), ``packaged`` (the d3-dna
release's ``.ckpt``) and ``converted`` (the earlier Lightning integration's files), asked in the
order of `registry.FORMATS`. Around them: ``safe_load`` (the one ``torch.load``, weights only
unless trusted), ``locate`` (the file a path or run directory stands for), ``layouts`` and
``ema_names`` (key layouts checked by name; a positional EMA list named through them),
``towers``, ``foreign`` (a foreign file in d3's terms) and ``load`` (the model, and the public
names below).

The main names are importable from here and load on first use: `load_checkpoint`,
`load_model_local`, `read_contents`, `write_checkpoint`, `LoadedModel` (`LoadedCheckpoint`),
`CheckpointContents`, `CheckpointFormat` and `FORMATS`. (The safe loader is
``d3_core.checkpoints.safe_load.safe_load``: the submodule's name is taken here.)
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> (module, attribute in it)
_EXPORTS = {
    "load_checkpoint": ("d3_core.checkpoints.load", "load_checkpoint"),
    "load_model_local": ("d3_core.checkpoints.load", "load_model_local"),
    "read_contents": ("d3_core.checkpoints.load", "read_contents"),
    "LoadedModel": ("d3_core.checkpoints.load", "LoadedModel"),
    "LoadedCheckpoint": ("d3_core.checkpoints.load", "LoadedCheckpoint"),
    "write_checkpoint": ("d3_core.checkpoints.native", "write_checkpoint"),
    "CheckpointContents": ("d3_core.checkpoints.interface", "CheckpointContents"),
    "CheckpointFormat": ("d3_core.checkpoints.interface", "CheckpointFormat"),
    "FORMATS": ("d3_core.checkpoints.registry", "FORMATS"),
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'd3_core.checkpoints' has no attribute {name!r}") from None
    return getattr(importlib.import_module(module), attribute)


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
