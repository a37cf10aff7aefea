"""Reading every checkpoint a user has, and writing d3's own format from any of them.

Four kinds of file are read, recognised by their content, never by their file name; each is one
module behind one interface (`d3_core.checkpoints.interface.CheckpointFormat`), asked in the
order of `d3_core.checkpoints.registry.FORMATS`:

* ``d3``: the Lightning ``.ckpt`` that `d3 train` writes (or `d3 convert`): plain data and
  tensors only, EMA by parameter name, the config, dataset, architecture and precision
  (`d3_core.checkpoints.native`).
* ``research``: the published D3 code's ``checkpoint.pth``
  (docs/checkpoint-formats.md#research-checkpoints), alone or in its run directory
  (``hydra/config.yaml`` beside ``checkpoints/``). Both towers, a positional EMA list
  (`d3_core.checkpoints.research`).
* ``packaged``: the d3-dna release's Lightning ``.ckpt``
  (docs/checkpoint-formats.md#packaged-release-checkpoints; `d3_core.checkpoints.packaged`).
* ``converted``: the earlier Lightning integration's files
  (docs/checkpoint-formats.md#converted-lightning-checkpoints): a research checkpoint in a Lightning
  envelope (`d3_core.checkpoints.converted`).

Files are opened with ``torch.load(weights_only=True)``, which cannot run code, with a short
allowlist of plain-data classes (`d3_core.checkpoints.safe_load.PLAIN_DATA_GLOBALS`: the
OmegaConf configs of packaged and converted files, Lightning's hyper-parameters, paths), so every
format loads without trust; ``trusted=True`` (``--trust-checkpoint``) is only for a file holding
other objects. No interpolation of a file's config is resolved
(`d3_core.config.schema.file_config`), and d3's own files are checked against their content
digest (`d3_core.checkpoints.digest`).

Every format is read strictly by name: a missing, unexpected or mis-shaped tensor is an error
that lists them, and a positional EMA list is named through the published key order before use
(`d3_core.checkpoints.ema_names`). This module turns what a format read into a model.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from torch import Tensor, nn

from d3_core.checkpoints import registry
from d3_core.checkpoints.digest import verify_content_digest
from d3_core.checkpoints.interface import CheckpointContents
from d3_core.checkpoints.locate import file_sha256, find_checkpoints, locate_checkpoint
from d3_core.checkpoints.native import CHECKPOINT_FORMAT, check_d3_payload, write_checkpoint
from d3_core.checkpoints.registry import FORMATS
from d3_core.checkpoints.safe_load import safe_load
from d3_core.config import model_sizes
from d3_core.diffusion.graph import Graph, UniformGraph
from d3_core.diffusion.noise import Noise, build_noise
from d3_core.errors import CheckpointError
from d3_core.registry import DatasetPlugin, arch_label, canonical_arch

__all__ = [
    "CHECKPOINT_FORMAT",
    "FORMATS",
    "CheckpointContents",
    "LoadedCheckpoint",
    "LoadedModel",
    "file_sha256",
    "find_checkpoints",
    "load_checkpoint",
    "load_model_local",
    "load_payload",
    "locate_checkpoint",
    "read_checkpoint",
    "read_contents",
    "weight_mismatches",
    "write_checkpoint",
]

CHECKPOINT_TRUST_HINT = (
    "If you trust where the file came from, pass --trust-checkpoint (trusted=True in Python), "
    "then `d3 convert` it once to get a file that loads without it"
)
"""How a refused checkpoint tells its user to trust it, and what to do after."""


@dataclass(frozen=True)
class LoadedModel:
    """A score model restored from a checkpoint, in eval mode, with its EMA weights.

    Attributes:
        model: The score model.
        graph: The transition graph it was trained with.
        noise: The noise schedule it was trained with.
        cfg: The run's full config.
        dataset: Dataset name.
        architecture: ``"transformer"`` or ``"conv"``.
        step: Optimizer steps trained.
        precision: The Lightning precision it was trained under.
        path: The checkpoint file.
        sha256: Hex digest of the file, for provenance.
        format: Which kind of file it was (a name of `FORMATS`).
        notes: How it was read (architecture evidence, dropped tensors).
        plugin: The dataset's plugin, resolved once from the file, for callers to pass on.
    """

    model: nn.Module
    graph: Graph
    noise: Noise
    cfg: DictConfig
    dataset: str
    architecture: str
    step: int
    precision: str
    path: Path
    sha256: str
    format: str = "d3"
    notes: tuple[str, ...] = ()
    plugin: DatasetPlugin | None = None


LoadedCheckpoint = LoadedModel
"""What `load_checkpoint` returns, by the name the d3_core docs give it."""


def read_checkpoint(path: str | os.PathLike, *, map_location: Any = "cpu") -> dict[str, Any]:
    """Loads a d3 checkpoint's payload safely (``weights_only=True``), checks its format and its
    content digest. Its stored config is resolved text: ``config_from_plain`` resolves nothing in
    it (docs/checkpoint-formats.md#stored-configs).

    Raises:
        CheckpointError: The file is missing, unreadable, truncated, holds objects that are not
            plain data, changed since it was written, or is not a d3 checkpoint of a format
            this version reads.
    """
    path = locate_checkpoint(path)
    state = check_d3_payload(safe_load(path, map_location=map_location), path)
    verify_content_digest(state, path)
    return state


def load_payload(path: str | os.PathLike, *, trusted: bool = False) -> Any:
    """A checkpoint file's payload: `safe_load` with ``--trust-checkpoint``'s advice.

    Raises:
        CheckpointError: The file is unreadable or truncated, or needs unpickling of Python
            objects and ``trusted`` is false (the message names the first such object).
    """
    return safe_load(path, trusted=trusted, trust_hint=CHECKPOINT_TRUST_HINT)


def read_contents(
    path: str | os.PathLike,
    *,
    trusted: bool = False,
    dataset: str | None = None,
    arch: str | None = None,
) -> CheckpointContents:
    """Reads any checkpoint a user has into d3's terms, strictly and by name.

    Args:
        path: A checkpoint file of any of the four formats, a d3 run directory or a research
            run directory.
        trusted: Allow a full unpickle for files that need one (packaged and converted files).
        dataset: The dataset the caller expects; a checkpoint of another dataset is refused.
        arch: The architecture the caller expects (any spelling). For a research file, the
            tower to load; otherwise a checkpoint of the other architecture is refused.

    Raises:
        CheckpointError: Unreadable, not a checkpoint, untrusted pickles, weights or EMA that
            do not match their layout, or a dataset or architecture other than expected.
        PluginError: The checkpoint's dataset package is not installed.
    """
    file = locate_checkpoint(path)
    state = load_payload(file, trusted=trusted)
    fmt = registry.format_of(state, file)
    wanted_arch = canonical_arch(arch) if arch else None
    contents = fmt.read(file, state, dataset=dataset, arch=wanted_arch)  # checks the dataset
    if wanted_arch and contents.architecture != wanted_arch:
        raise CheckpointError(
            f"{file} is a {arch_label(contents.architecture)} checkpoint, but "
            f"{arch_label(wanted_arch)} was asked for"
        )
    return contents


# -- the model --------------------------------------------------------------------------------


def weight_mismatches(
    expected: dict[str, Tensor], weights: dict[str, Tensor]
) -> tuple[list[str], list[str], list[str]]:
    """(missing, unexpected, mis-shaped) keys of `weights` against a module's state dict."""
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    mismatched = [
        f"{k}: checkpoint {tuple(weights[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in weights and weights[k].shape != v.shape
    ]
    return missing, unexpected, mismatched


def _strict_load(model: nn.Module, weights: dict[str, Tensor], source: Path, what: str) -> None:
    """Loads weights by name; any missing, unexpected or mis-shaped key is an error."""
    missing, unexpected, mismatched = weight_mismatches(model.state_dict(), weights)
    if missing or unexpected or mismatched:
        raise CheckpointError(
            f"{source}: the {what} do not match the model: missing {missing or 'none'}; "
            f"unexpected {unexpected or 'none'}; shape mismatches {mismatched or 'none'}"
        )
    bad = [
        name
        for name, tensor in weights.items()
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())
    ]
    if bad:
        raise CheckpointError(
            f"{source}: the {what} hold NaN or infinite values ({len(bad)} tensors, first "
            f"{bad[0]}), so the run that wrote them had diverged and every design would be "
            f"noise; use an earlier checkpoint of that run"
        )
    model.load_state_dict(weights, strict=True)


def build_model(contents: CheckpointContents, *, ema: bool = True) -> nn.Module:
    """The dataset's score model holding a checkpoint's weights (EMA applied by default).

    Raises:
        CheckpointError: The weights or the EMA do not match the model, by name and shape.
    """
    plugin, cfg, path = contents.plugin, contents.cfg, contents.path
    model = plugin.score_model_class(cfg.model.architecture)(model_sizes(cfg, plugin))
    _strict_load(model, contents.weights, path, "weights")
    if ema:
        trainable = {n for n, p in model.named_parameters() if p.requires_grad}
        if set(contents.ema) != trainable:
            raise CheckpointError(
                f"{path}: the EMA does not cover the model's parameters: missing "
                f"{sorted(trainable - set(contents.ema)) or 'none'}; unexpected "
                f"{sorted(set(contents.ema) - trainable) or 'none'}"
            )
        _strict_load(model, {**model.state_dict(), **contents.ema}, path, "EMA weights")
    return model.eval()


def load_checkpoint(
    path: str | os.PathLike,
    *,
    device: Any = "cpu",
    trusted: bool = False,
    dataset: str | None = None,
    arch: str | None = None,
) -> LoadedModel:
    """Restores the score model of any checkpoint a user has, with its EMA weights applied.

    Args:
        path: A checkpoint of any format in `FORMATS`, a d3 run directory (its ``last.ckpt``)
            or a research run directory.
        device: Where to put the model.
        trusted: Allow a full unpickle (packaged and converted files need it).
        dataset: Refuse a checkpoint of another dataset.
        arch: The tower to load from a research file; refuse another architecture otherwise.

    Raises:
        CheckpointError: See `read_contents`; or weights or EMA that do not match the model.
        PluginError: The checkpoint's dataset package is not installed.
    """
    contents = read_contents(path, trusted=trusted, dataset=dataset, arch=arch)
    model = build_model(contents)
    cfg = contents.cfg
    noise = {k: v for k, v in cfg.noise.items() if k != "type"}
    return LoadedModel(
        model=model.to(device).eval(),
        graph=UniformGraph(4),
        noise=build_noise(cfg.noise.type, **noise),
        cfg=cfg,
        dataset=contents.plugin.name,
        architecture=contents.architecture,
        step=contents.step,
        precision=contents.precision,
        path=contents.path,
        sha256=file_sha256(contents.path),
        format=contents.format,
        notes=tuple(contents.notes),
        plugin=contents.plugin,
    )


def load_model_local(
    path: str | os.PathLike, device: Any = "cpu", *, trusted: bool = False
) -> tuple[nn.Module, Graph, Noise]:
    """The original design's loader: ``(model, graph, noise)`` with the EMA weights applied.

    The model also takes the research call ``model(tokens, labels, train, sigma)``.

    Args:
        path: A checkpoint of any format, or a d3 or research run directory.
        device: Where to put the model.
        trusted: Allow a full unpickle (packaged and converted files need it).
    """
    loaded = load_checkpoint(path, device=device, trusted=trusted)
    return loaded.model, loaded.graph, loaded.noise
