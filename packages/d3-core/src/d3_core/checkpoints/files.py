"""Checkpoint files on disk: finding them, reading their payload safely, and what they hold.

`CheckpointContents` is what every reader of `d3_core.checkpoints.load` returns. Payloads are opened
with ``torch.load(weights_only=True)``, which cannot run code; a full unpickle happens only when
the caller trusts the file.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from torch import Tensor

from d3_core.checkpoints import towers
from d3_core.errors import CheckpointError
from d3_core.registry import (
    DatasetPlugin,
)

CHECKPOINT_FORMAT = 1
"""Version of the ``d3`` block written by `D3LightningModule`; readers refuse newer ones."""

MODEL_PREFIX = "score_model."
FORMATS = ("d3", "research", "packaged", "converted")
RESEARCH_CONFIGS = ("hydra/config.yaml", ".hydra/config.yaml")
TRUST_HINT = (
    "Pass --trust-checkpoint (trusted=True in Python) only if you trust where the file came "
    "from, then `d3 convert` it once to get a file that loads safely"
)


@dataclass
class CheckpointContents:
    """What any checkpoint holds, in d3's terms: the parts `load_checkpoint` and
    `write_checkpoint` need.

    Attributes:
        format: One of `FORMATS`.
        path: The file read.
        plugin: The dataset's plugin.
        cfg: A d3 config describing the model (sizes read from the weights).
        weights: The trained (raw) weights of the score model, by d3 parameter name.
        ema: The EMA shadow of every trainable parameter, by name.
        ema_decay: The EMA decay.
        ema_updates: EMA updates so far.
        step: Optimizer steps trained.
        precision: The precision the model was trained under (Lightning's names).
        notes: How the file was read: evidence for the architecture, what was dropped.
        source_config: The file's own config as plain data (None for d3 files and bare files).
        state: The whole payload, for d3 files only.
    """

    format: str
    path: Path
    plugin: DatasetPlugin
    cfg: DictConfig
    weights: dict[str, Tensor]
    ema: dict[str, Tensor]
    ema_decay: float
    ema_updates: int
    step: int
    precision: str
    notes: list[str] = field(default_factory=list)
    source_config: Any = None
    state: dict[str, Any] | None = None

    @property
    def architecture(self) -> str:
        return str(self.cfg.model.architecture)


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# -- finding the file ---------------------------------------------------------------------------


def _research_weights_in(run: Path) -> Path | None:
    """The weights of a research run directory, in SPEC §10 A's order of preference."""
    final = run / "checkpoints" / "checkpoint.pth"
    if final.is_file():
        return final
    numbered = []
    for candidate in (run / "checkpoints").glob("checkpoint_*.pth"):
        match = re.fullmatch(r"checkpoint_(\d+)\.pth", candidate.name)
        if match and candidate.is_file():
            numbered.append((int(match.group(1)), candidate))
    if numbered:
        return max(numbered)[1]
    meta = run / "checkpoints-meta" / "checkpoint.pth"
    return meta if meta.is_file() else None


def research_config_for(run: Path) -> Path | None:
    for name in RESEARCH_CONFIGS:
        if (run / name).is_file():
            return run / name
    return None


def locate_checkpoint(path: str | os.PathLike) -> Path:
    """The checkpoint file a path stands for.

    A file is itself. A d3 run directory gives ``checkpoints/last.ckpt``; a research run
    directory (``hydra/config.yaml`` or ``.hydra/config.yaml``) gives
    ``checkpoints/checkpoint.pth``, else the highest ``checkpoints/checkpoint_<k>.pth``, else
    ``checkpoints-meta/checkpoint.pth``.

    Raises:
        CheckpointError: Nothing is there, naming what was looked for.
    """
    path = Path(path)
    if path.is_file():
        return path
    if not path.exists():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    if not path.is_dir():
        raise CheckpointError(f"{path} is neither a checkpoint file nor a run directory")
    ours = path / "checkpoints" / "last.ckpt"
    if ours.is_file():
        return ours
    if research_config_for(path) is not None:
        weights = _research_weights_in(path)
        if weights is None:
            raise CheckpointError(
                f"{path} is a research run directory without weights: none of "
                f"checkpoints/checkpoint.pth, checkpoints/checkpoint_<k>.pth, "
                f"checkpoints-meta/checkpoint.pth exists"
            )
        return weights
    raise CheckpointError(
        f"{path} is not a run directory d3 reads: it has neither {ours} (a d3 run) nor "
        f"hydra/config.yaml or .hydra/config.yaml (a research run)"
    )


_TORCH_MAGIC = (b"PK\x03\x04", b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")


def looks_like_torch_file(path: Path) -> bool:
    """Whether a file starts like a ``torch.save`` output (a zip archive or a pickle)."""
    try:
        with open(path, "rb") as file:
            head = file.read(4)
    except OSError:
        return False
    return any(head.startswith(magic) for magic in _TORCH_MAGIC)


def find_checkpoints(directory: str | os.PathLike) -> list[Path]:
    """Every file under a directory that starts like a PyTorch file, sorted by path.

    Content decides, not the name: ``.pth``, ``.ckpt``, ``.pt`` and ``.tar`` alike.
    """

    def unfinished(path: Path) -> bool:  # a write in progress (`d3_core.io.atomic_path`)
        return path.name.startswith(".") and path.name.endswith(".tmp")

    return [
        p
        for p in sorted(Path(directory).rglob("*"))
        if p.is_file() and not unfinished(p) and looks_like_torch_file(p)
    ]


# -- reading the payload ------------------------------------------------------------------------


def load_payload(path: Path, *, trusted: bool = False) -> Any:
    """``torch.load`` with weights_only=True; a full unpickle only when trusted.

    Raises:
        CheckpointError: The file is unreadable or truncated, or needs unpickling of Python
            objects and ``trusted`` is false (the message names the first such object).
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        refused = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
        if refused is None and not trusted:
            raise _unreadable(path, _unpickler_reason(err)) from None
        if refused is not None and not trusted:
            raise CheckpointError(
                f"{path} stores Python objects ({refused.group(1)}), which torch.load can read "
                f"only by unpickling, and unpickling can run code hidden in a file. The d3-dna "
                f"packaged release and the earlier Lightning converter store their configs this "
                f"way. {TRUST_HINT}"
            ) from None
    except Exception as err:
        raise _unreadable(path, err) from None
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:
        raise _unreadable(path, err) from None


def _unpickler_reason(err: BaseException) -> BaseException:
    """The line of a weights-only unpickling error that says what was wrong."""
    text = str(err)
    if "WeightsUnpickler error:" in text:
        tail = text.split("WeightsUnpickler error:", 1)[1].strip().splitlines()
        if tail and tail[0].strip():
            return ValueError(tail[0].strip())
    return err


def _unreadable(path: Path, err: BaseException) -> CheckpointError:
    reason = str(err).splitlines()[0] if str(err) else type(err).__name__
    return CheckpointError(
        f"cannot read checkpoint {str(path)!r} (corrupt, truncated, or not a PyTorch file): "
        f"{reason}"
    )


def payload_kind(state: Any, path: Path) -> str:
    """Which format a loaded payload is, from its keys."""
    if isinstance(state, dict):
        if "d3" in state:
            return "d3"
        if isinstance(state.get("model"), dict) and isinstance(state.get("ema"), dict):
            return "research"
        weights = state.get("state_dict")
        if isinstance(weights, dict) and any(str(k).startswith(MODEL_PREFIX) for k in weights):
            model = [k[len(MODEL_PREFIX) :] for k in weights if str(k).startswith(MODEL_PREFIX)]
            both = any(k.startswith(towers.TRANSFORMER_PREFIXES) for k in model) and any(
                k.startswith(towers.CONV_PREFIXES) for k in model
            )
            hparams = state.get("hyper_parameters") or {}
            return "converted" if both or "original_step" in hparams else "packaged"
    keys = sorted(map(str, state)) if isinstance(state, dict) else type(state).__name__
    raise CheckpointError(
        f"{path} is not a checkpoint d3 reads (top-level entries: {keys}); expected a d3 "
        f"checkpoint ('d3'), a research checkpoint ('model', 'ema') or a Lightning checkpoint "
        f"of the packaged release ('state_dict' with 'score_model.*')"
    )


def read_checkpoint(path: str | os.PathLike, *, map_location: Any = "cpu") -> dict[str, Any]:
    """Loads a d3 checkpoint's payload safely (``weights_only=True``) and checks its format.

    Raises:
        CheckpointError: The file is missing, unreadable, truncated, needs unpickling of code
            objects, or is not a d3 checkpoint of a format this version reads.
    """
    path = locate_checkpoint(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise CheckpointError(
            f"cannot read checkpoint {str(path)!r} (corrupt, truncated, or not a PyTorch file "
            f"that loads with weights_only=True): {first_line(err)}"
        ) from None
    return check_d3_payload(state, path)


def first_line(err: BaseException) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def check_d3_payload(state: Any, path: Path) -> dict[str, Any]:
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
