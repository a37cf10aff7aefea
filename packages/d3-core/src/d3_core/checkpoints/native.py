"""d3's own checkpoint format: the Lightning ``.ckpt`` that `d3 train` and `d3 convert` write.

Plain data and tensors only, so it loads with ``torch.load(weights_only=True)``: the score
model's weights under ``score_model.``, the EMA by parameter name (``ema.shadow``), the resolved
config as plain data, and a ``d3`` block with the dataset, architecture, precision, versions and,
for a converted file, where it came from. A d3 run directory holds it as
``checkpoints/last.ckpt``. This module reads it (`FORMAT`), checks it (`check_d3_payload`; resuming reads it with
`d3_core.checkpoints.load.read_checkpoint`) and writes it from any format's contents
(`write_checkpoint`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from d3_core.checkpoints.digest import add_content_digest, verify_content_digest
from d3_core.checkpoints.foreign import plugin_for
from d3_core.checkpoints.interface import MODEL_PREFIX, CheckpointContents, CheckpointFormat
from d3_core.config import config_from_plain, to_plain
from d3_core.config.schema import escape_interpolations
from d3_core.errors import CheckpointError
from d3_core.io import file_sha256

__all__ = [
    "CHECKPOINT_FORMAT",
    "FORMAT",
    "check_d3_payload",
    "detect",
    "locate",
    "read",
    "write_checkpoint",
]

CHECKPOINT_FORMAT = 1
"""Version of the ``d3`` block written by `D3LightningModule`; readers refuse newer ones."""


def detect(payload: Any) -> bool:
    """A d3 checkpoint has a top-level ``d3`` entry (checked in full by `read`)."""
    return isinstance(payload, dict) and "d3" in payload


def locate(directory: Path) -> Path | None:
    """A d3 run directory's checkpoint: ``checkpoints/last.ckpt``."""
    ours = directory / "checkpoints" / "last.ckpt"
    return ours if ours.is_file() else None


def _run_directory(directory: Path) -> str:
    return f"{directory / 'checkpoints' / 'last.ckpt'} (a d3 run)"


def check_d3_payload(state: Any, path: Path) -> dict[str, Any]:
    """A d3 checkpoint's payload, checked: its ``d3`` block, weights, config and format version.

    Raises:
        CheckpointError: Not a d3 checkpoint, an incomplete one, or of a newer format.
    """
    block = state.get("d3") if isinstance(state, dict) else None
    if not isinstance(block, dict):
        raise CheckpointError(
            f"{path} is not a d3 checkpoint (its 'd3' entry is missing or not a mapping); read "
            f"research and d3-dna "
            f"checkpoints with load_checkpoint, or convert them with `d3 convert`"
        )
    missing = [k for k in ("state_dict", "hyper_parameters") if k not in state]
    if missing or "cfg" not in state.get("hyper_parameters", {}):
        raise CheckpointError(
            f"{path} is an incomplete d3 checkpoint: it lacks "
            f"{', '.join(missing) or 'hyper_parameters.cfg'}"
        )
    version = block.get("format_version")
    if not isinstance(version, int) or version > CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path} has checkpoint format {version!r}; this d3-core reads formats up to "
            f"{CHECKPOINT_FORMAT}: upgrade d3-core"
        )
    return state


def read(
    path: Path, payload: Any, *, dataset: str | None = None, arch: str | None = None
) -> CheckpointContents:
    """A d3 checkpoint in d3's terms (`arch` is checked by the loader: a d3 file has one)."""
    state = check_d3_payload(payload, path)
    notes: list[str] = []
    verify_content_digest(state, path, notes=notes)
    block = state["d3"]
    plugin = plugin_for(block.get("dataset"), asked=dataset, source=path, evidence="its d3 block")
    # written resolved by d3, so any "${" in it is literal text: never resolved on reading
    cfg = config_from_plain(escape_interpolations(state["hyper_parameters"]["cfg"]), plugin)
    weights = {
        k[len(MODEL_PREFIX) :]: v
        for k, v in state["state_dict"].items()
        if k.startswith(MODEL_PREFIX)
    }
    ema = state.get("ema") or {}
    shadow = ema.get("shadow")
    if not isinstance(shadow, dict):
        raise CheckpointError(f"{path} has no EMA weights ('ema.shadow'); it cannot be sampled")
    if "converted_from" in block:
        origin = block["converted_from"]
        notes.append(f"converted from the {origin.get('format')} checkpoint {origin.get('file')}")
    return CheckpointContents(
        format=FORMAT.name,
        path=path,
        plugin=plugin,
        cfg=cfg,
        weights=weights,
        ema=dict(shadow),
        ema_decay=float(ema.get("decay", cfg.training.ema_decay)),
        ema_updates=int(ema.get("num_updates", 0)),
        step=int(state.get("global_step", 0)),
        precision=str(block.get("precision", "32-true")),
        notes=notes,
        state=state,
    )


def write_checkpoint(contents: CheckpointContents, out: str | os.PathLike) -> Path:
    """Writes checkpoint contents in d3's format, atomically (a crash leaves no partial file).

    The raw weights and the EMA are stored by name, the config as plain data; the ``d3`` block
    records where it came from and a digest of the content (`d3_core.checkpoints.digest`).
    Loading the result gives bit-identical tensors.
    """
    import lightning

    from d3_core import __version__
    from d3_core.io import atomic_path, torch_save

    out = Path(out)
    plugin, cfg = contents.plugin, contents.cfg
    source = {
        "format": contents.format,
        "file": str(contents.path.resolve()),
        "sha256": file_sha256(contents.path),
        "step": contents.step,
        "notes": list(contents.notes),
        "config": contents.source_config,
    }
    state = {
        "epoch": 0,
        "global_step": contents.step,
        "pytorch-lightning_version": lightning.__version__,
        "state_dict": {MODEL_PREFIX + k: v for k, v in contents.weights.items()},
        "ema": {
            "decay": contents.ema_decay,
            "num_updates": contents.ema_updates,
            "shadow": dict(contents.ema),
        },
        "hyper_parameters": {"cfg": to_plain(cfg), "dataset_name": plugin.name},
        "d3": {
            "format_version": CHECKPOINT_FORMAT,
            "dataset": plugin.name,
            "architecture": contents.architecture,
            "sequence_length": int(cfg.dataset.sequence_length),
            "label_names": list(cfg.dataset.label_names),
            "label_mode": str(cfg.dataset.label_mode),
            "precision": contents.precision,
            "versions": {
                "d3-core": __version__,
                plugin.distribution: plugin.version,
                "torch": str(torch.__version__),
                "lightning": lightning.__version__,
            },
            "converted_from": source,
        },
    }
    add_content_digest(state)
    with atomic_path(out) as tmp:
        torch_save(state, tmp, target=out)
    return out


FORMAT = CheckpointFormat(
    name="d3",
    description="d3's own Lightning .ckpt (d3 train, d3 convert): plain data, EMA by name",
    expects="a d3 checkpoint ('d3')",
    detect=detect,
    read=read,
    locate=locate,
    run_directory=_run_directory,
)
