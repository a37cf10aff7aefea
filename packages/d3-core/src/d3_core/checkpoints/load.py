"""Reading every checkpoint a user has, and writing d3's own format from any of them.

Four kinds of file are read, recognised by their content, never by their file name:

* ``d3``: the Lightning ``.ckpt`` that `d3 train` writes (or `d3 convert`): plain data and
  tensors only, EMA by parameter name, the config, dataset, architecture and precision.
* ``research``: the published D3 code's ``checkpoint.pth`` (SPEC §10 A), alone or in its run
  directory (``hydra/config.yaml`` beside ``checkpoints/``). Both towers, a positional EMA list.
* ``packaged``: the d3-dna release's Lightning ``.ckpt`` (SPEC §10 B).
* ``converted``: the earlier Lightning integration's files (SPEC §10 C): a research checkpoint
  in a Lightning envelope.

Files are opened with ``torch.load(weights_only=True)``, which cannot run code. The packaged and
converted files store their configs as pickled OmegaConf objects, which only a full unpickler
reads, and unpickling can execute code hidden in a file: those load only with ``trusted=True``
(``--trust-checkpoint``). Converting such a file once gives a d3 file that loads safely.

Every format is read strictly by name: a missing, unexpected or mis-shaped tensor is an error
that lists them, and a positional EMA list is named through SPEC's key order before use.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from torch import Tensor, nn

from d3_core.checkpoints.files import (
    CHECKPOINT_FORMAT,
    FORMATS,
    MODEL_PREFIX,
    CheckpointContents,
    check_d3_payload,
    file_sha256,
    find_checkpoints,
    load_payload,
    locate_checkpoint,
    payload_kind,
    read_checkpoint,
)
from d3_core.checkpoints.foreign import plugin_for
from d3_core.checkpoints.readers import (
    read_converted,
    read_packaged,
    read_research,
)
from d3_core.config import config_from_plain, model_sizes, to_plain
from d3_core.diffusion.graph import Graph, UniformGraph
from d3_core.diffusion.noise import Noise, build_noise
from d3_core.errors import CheckpointError
from d3_core.registry import (
    arch_label,
    canonical_arch,
)

__all__ = [
    "CHECKPOINT_FORMAT",
    "FORMATS",
    "CheckpointContents",
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
        format: Which kind of file it was (`FORMATS`).
        notes: How it was read (architecture evidence, dropped tensors).
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
    kind = payload_kind(state, file)
    reader = {
        "d3": _read_d3,
        "research": read_research,
        "packaged": read_packaged,
        "converted": read_converted,
    }[kind]
    wanted_arch = canonical_arch(arch) if arch else None
    contents = reader(state, file, dataset=dataset, arch=wanted_arch)  # checks the dataset
    if wanted_arch and contents.architecture != wanted_arch:
        raise CheckpointError(
            f"{file} is a {arch_label(contents.architecture)} checkpoint, but "
            f"{arch_label(wanted_arch)} was asked for"
        )
    return contents


# -- d3 ---------------------------------------------------------------------------------------------


def _read_d3(state: dict, path: Path, *, dataset: str | None, arch: str | None):
    state = check_d3_payload(state, path)
    block = state["d3"]
    plugin = plugin_for(block.get("dataset"), asked=dataset, source=path, evidence="its d3 block")
    cfg = config_from_plain(state["hyper_parameters"]["cfg"], plugin)
    weights = {
        k[len(MODEL_PREFIX) :]: v
        for k, v in state["state_dict"].items()
        if k.startswith(MODEL_PREFIX)
    }
    ema = state.get("ema") or {}
    shadow = ema.get("shadow")
    if not isinstance(shadow, dict):
        raise CheckpointError(f"{path} has no EMA weights ('ema.shadow'); it cannot be sampled")
    notes = []
    if "converted_from" in block:
        origin = block["converted_from"]
        notes.append(f"converted from the {origin.get('format')} checkpoint {origin.get('file')}")
    return CheckpointContents(
        format="d3",
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


# -- writing --------------------------------------------------------------------------------


def write_checkpoint(contents: CheckpointContents, out: str | os.PathLike) -> Path:
    """Writes checkpoint contents in d3's format, atomically (a crash leaves no partial file).

    The raw weights and the EMA are stored by name, the config as plain data; the ``d3`` block
    records where it came from. Loading the result gives bit-identical tensors.
    """
    import lightning

    from d3_core import __version__
    from d3_core.io import atomic_path

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
    with atomic_path(out) as tmp:
        torch.save(state, tmp)
    return out
