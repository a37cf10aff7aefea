"""Reading d3 checkpoints: the model with its EMA weights, its config and what it was trained on.

Our format is the Lightning ``.ckpt`` that `d3 train` writes; it holds only plain data and
tensors, so it is read with ``torch.load(weights_only=True)`` and nothing in it can run code.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from torch import nn

from d3_core.config import config_from_plain, model_sizes
from d3_core.errors import CheckpointError
from d3_core.graph import Graph, UniformGraph
from d3_core.noise import Noise, build_noise
from d3_core.registry import load_dataset_plugin

__all__ = ["LoadedModel", "file_sha256", "load_checkpoint", "load_model_local", "read_checkpoint"]

CHECKPOINT_FORMAT = 1
"""Version of the ``d3`` block written by `D3LightningModule`; readers refuse newer ones."""

MODEL_PREFIX = "score_model."


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


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_checkpoint(path: str | os.PathLike, *, map_location: Any = "cpu") -> dict[str, Any]:
    """Loads a d3 checkpoint's payload safely (``weights_only=True``) and checks its format.

    Raises:
        CheckpointError: The file is missing, unreadable, truncated, needs unpickling of code
            objects, or is not a d3 checkpoint of a format this version reads.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoints" / "last.ckpt"
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise CheckpointError(
            f"cannot read checkpoint {str(path)!r} (corrupt, truncated, or not a PyTorch file "
            f"that loads with weights_only=True): {reason}"
        ) from None
    block = state.get("d3") if isinstance(state, dict) else None
    if not isinstance(block, dict):
        raise CheckpointError(
            f"{path} is not a d3 checkpoint (it has no 'd3' entry); checkpoints of the research "
            f"code and of d3-dna are read by a later d3-core release"
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


def _strict_load(model: nn.Module, weights: dict[str, torch.Tensor], source: Path) -> None:
    """Loads weights by name; any missing, unexpected or mis-shaped key is an error."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    mismatched = [
        f"{k}: checkpoint {tuple(weights[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in weights and weights[k].shape != v.shape
    ]
    if missing or unexpected or mismatched:
        raise CheckpointError(
            f"{source}: the weights do not match the model: missing {missing or 'none'}; "
            f"unexpected {unexpected or 'none'}; shape mismatches {mismatched or 'none'}"
        )
    model.load_state_dict(weights, strict=True)


def load_checkpoint(path: str | os.PathLike, *, device: Any = "cpu") -> LoadedModel:
    """Restores the score model of a d3 checkpoint with its EMA weights applied.

    Args:
        path: A ``.ckpt`` written by `d3 train`, or a run directory (its ``last.ckpt``).
        device: Where to put the model.

    Raises:
        CheckpointError: See `read_checkpoint`; or weights or EMA that do not match the model.
        PluginError: The checkpoint's dataset package is not installed.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoints" / "last.ckpt"
    state = read_checkpoint(path)
    block = state["d3"]
    plugin = load_dataset_plugin(block["dataset"])
    cfg = config_from_plain(state["hyper_parameters"]["cfg"], plugin)
    model = plugin.score_model_class(cfg.model.architecture)(model_sizes(cfg, plugin))
    weights = {
        k[len(MODEL_PREFIX) :]: v
        for k, v in state["state_dict"].items()
        if k.startswith(MODEL_PREFIX)
    }
    _strict_load(model, weights, path)
    shadow = state.get("ema", {}).get("shadow")
    if not isinstance(shadow, dict):
        raise CheckpointError(f"{path} has no EMA weights ('ema.shadow'); it cannot be sampled")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    if set(shadow) != trainable:
        raise CheckpointError(
            f"{path}: the EMA does not cover the model's parameters: missing "
            f"{sorted(trainable - set(shadow)) or 'none'}; unexpected "
            f"{sorted(set(shadow) - trainable) or 'none'}"
        )
    _strict_load(model, {**model.state_dict(), **shadow}, path)
    noise = {k: v for k, v in cfg.noise.items() if k != "type"}
    return LoadedModel(
        model=model.to(device).eval(),
        graph=UniformGraph(4),
        noise=build_noise(cfg.noise.type, **noise),
        cfg=cfg,
        dataset=plugin.name,
        architecture=cfg.model.architecture,
        step=int(state.get("global_step", 0)),
        precision=str(block.get("precision", "32-true")),
        path=path,
        sha256=file_sha256(path),
    )


def load_model_local(
    path: str | os.PathLike, device: Any = "cpu"
) -> tuple[nn.Module, Graph, Noise]:
    """The original design's loader: ``(model, graph, noise)`` with the EMA weights applied.

    Args:
        path: A d3 checkpoint or run directory.
        device: Where to put the model.
    """
    loaded = load_checkpoint(path, device=device)
    return loaded.model, loaded.graph, loaded.noise
