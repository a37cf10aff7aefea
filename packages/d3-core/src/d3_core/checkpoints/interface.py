"""The one interface every checkpoint format implements, and what reading one gives.

A format is a module of `d3_core.checkpoints` (``native``, ``research``, ``packaged``,
``converted``) that ends with a `CheckpointFormat`: its name, a one-line description, ``detect``
(is this payload mine?) and ``read`` (the payload in d3's terms, a `CheckpointContents`),
optionally ``locate`` (the weights file of a run directory of this format). The loader
(`d3_core.checkpoints.load`) opens a file once with `d3_core.checkpoints.safe_load`, asks the
formats of `d3_core.checkpoints.registry.FORMATS` in order, and lets the first that detects the
payload read it. Adding a format is one new module and one line in the registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from omegaconf import DictConfig
from torch import Tensor

from d3_core.registry import DatasetPlugin

__all__ = ["MODEL_PREFIX", "CheckpointContents", "CheckpointFormat", "Reader"]

MODEL_PREFIX = "score_model."
"""Prefix of the score model's weights in a Lightning checkpoint's ``state_dict`` (d3's own files,
the d3-dna release and the earlier Lightning integration's alike)."""


@dataclass
class CheckpointContents:
    """What any checkpoint holds, in d3's terms: the parts `load_checkpoint` and
    `write_checkpoint` need.

    Attributes:
        format: The name of the `CheckpointFormat` that read it.
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


class Reader(Protocol):
    """``read(path, payload, *, dataset=None, arch=None) -> CheckpointContents``.

    Args:
        path: The file the payload came from (for messages, and files beside it).
        payload: What `safe_load` gave for it; the format's ``detect`` said yes to it.
        dataset: The dataset the caller expects (any case); another is refused.
        arch: The canonical architecture the caller asked for (``"transformer"``, ``"conv"``),
            or None. A file holding both towers loads the one asked for.

    Raises:
        CheckpointError: The payload does not hold what the format requires, strictly by name.
        PluginError: The checkpoint's dataset package is not installed.
    """

    def __call__(
        self, path: Path, payload: Any, *, dataset: str | None = None, arch: str | None = None
    ) -> CheckpointContents: ...


@dataclass(frozen=True)
class CheckpointFormat:
    """One kind of checkpoint file d3 reads.

    Attributes:
        name: Recorded as `CheckpointContents.format` and in provenance (``"d3"``, ...).
        description: One line: what the file is and who writes it.
        expects: What ``detect`` looks for, as the refusal of an unknown file lists it, e.g.
            ``"a research checkpoint ('model', 'ema')"``; formats that share one may repeat it.
        detect: Whether a payload (what `safe_load` gave) is of this format, from its content
            only, never the file name. Cheap, and never raises.
        read: The payload in d3's terms (`Reader`).
        locate: The checkpoint file of a run directory of this format, or None if the directory
            is not one; it may raise `CheckpointError` for a run directory without weights.
        run_directory: What ``locate`` looks for in a directory, for the message when no format
            recognises it, e.g. ``"hydra/config.yaml (a research run)"``.
    """

    name: str
    description: str
    expects: str
    detect: Callable[[Any], bool]
    read: Reader
    locate: Callable[[Path], Path | None] | None = None
    run_directory: Callable[[Path], str] | None = None
