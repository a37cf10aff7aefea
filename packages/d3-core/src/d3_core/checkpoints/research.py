"""The published D3 code's ``checkpoint.pth`` and its run directory
(docs/checkpoint-formats.md#research-checkpoints).

A research file holds ``model`` (both towers, transformer and conv, whatever was trained, plus
three tensors nothing uses) and ``ema`` (a positional ``shadow_params`` list). Its run directory
has ``hydra/config.yaml`` (or ``.hydra/config.yaml``) beside ``checkpoints/``. This module finds
the weights of such a directory (`locate`), reads the config beside a file, checks the both-tower
layout strictly by name (`d3_core.checkpoints.layouts`), names the EMA list
(`d3_core.checkpoints.ema_names`), decides which tower was trained and keeps it
(`d3_core.checkpoints.towers`). `from_research_layout` is shared with the converted format,
which wraps the same layout in a Lightning envelope.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from torch import Tensor

from d3_core.checkpoints import layouts, towers
from d3_core.checkpoints.ema_names import ema_by_name
from d3_core.checkpoints.foreign import (
    RESEARCH_TRAINING,
    check_config_sizes,
    check_label_emb_length,
    config_value,
    dataset_from_weights,
    foreign_d3_config,
    load_yaml,
    model_sizes_from,
    plugin_for,
    research_noise,
    strip_module_prefix,
)
from d3_core.checkpoints.interface import CheckpointContents, CheckpointFormat
from d3_core.config.schema import file_config
from d3_core.errors import CheckpointError, D3Error
from d3_core.registry import arch_label, canonical_arch

__all__ = [
    "FORMAT",
    "RESEARCH_CONFIGS",
    "detect",
    "from_research_layout",
    "locate",
    "read",
    "research_config_for",
]

RESEARCH_CONFIGS = ("hydra/config.yaml", ".hydra/config.yaml")
"""Where a research run directory keeps its config, in order of preference."""


def detect(payload: Any) -> bool:
    """A research checkpoint has ``model`` and ``ema`` mappings at the top level."""
    return (
        isinstance(payload, dict)
        and isinstance(payload.get("model"), dict)
        and isinstance(payload.get("ema"), dict)
    )


# -- the run directory ----------------------------------------------------------------------


def research_config_for(run: Path) -> Path | None:
    """The config file of a research run directory, or None if it has none."""
    for name in RESEARCH_CONFIGS:
        if (run / name).is_file():
            return run / name
    return None


def _research_weights_in(run: Path) -> Path | None:
    """The weights of a research run directory, in docs/checkpoint-formats.md#research-checkpoints's
    order of preference."""
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


def locate(directory: Path) -> Path | None:
    """A research run directory's weights: ``checkpoints/checkpoint.pth``, else the highest
    ``checkpoints/checkpoint_<k>.pth``, else ``checkpoints-meta/checkpoint.pth``.

    Raises:
        CheckpointError: The directory has a research config but none of those files.
    """
    if research_config_for(directory) is None:
        return None
    weights = _research_weights_in(directory)
    if weights is None:
        raise CheckpointError(
            f"{directory} is a research run directory without weights: none of "
            f"checkpoints/checkpoint.pth, checkpoints/checkpoint_<k>.pth, "
            f"checkpoints-meta/checkpoint.pth exists"
        )
    return weights


def _run_directory(directory: Path) -> str:
    return f"{' or '.join(RESEARCH_CONFIGS)} (a research run)"


def _run_folder(path: Path) -> Path:
    """The run a checkpoint file belongs to: the folder above ``checkpoints/`` or
    ``checkpoints-meta/`` for a research run's weights, else the file's own folder."""
    folder = path.resolve().parent
    return folder.parent if folder.name in ("checkpoints", "checkpoints-meta") else folder


def _arch_in_path(path: Path) -> tuple[str, str] | None:
    """The architecture the run folder's own name gives (``Tran`` or ``Conv``), if it gives one.

    Only the run folder counts: the folders above it (``model_zoo/conv_runs/...``) name
    projects, not the file's architecture.
    """
    name = _run_folder(path).name
    try:
        return canonical_arch(name), name
    except D3Error:
        return None


# -- the trained tower ----------------------------------------------------------------------


def _research_arch(
    weights: dict[str, Tensor], config: Any, path: Path, asked: str | None
) -> tuple[str, str]:
    """Which tower of a research file was trained, and the evidence, in
    docs/checkpoint-formats.md#research-checkpoints's order.

    The first available of: what the caller asked, the run folder's name, ``cond_dim``. The
    transformer's adaLN weights (all exactly zero = never trained) are checked against it.

    Raises:
        CheckpointError: The evidence contradicts itself, or there is none.
    """
    evidence: list[tuple[str, str]] = []
    if asked:
        evidence.append((asked, f"--arch {arch_label(asked)} was asked for"))
    named = _arch_in_path(path)
    if named:
        evidence.append((named[0], f"the run folder is named {named[1]!r}"))
    cond = config_value(config, "model.cond_dim")
    if cond is None and "sigma_map.mlp.0.weight" in weights:
        cond = int(weights["sigma_map.mlp.0.weight"].shape[0])
    if cond in (128, 256):
        evidence.append(("transformer" if cond == 128 else "conv", f"cond_dim is {cond}"))
    untrained = towers.adaln_untrained(weights)
    content = None
    if untrained is not None:
        content = (
            ("conv", "the transformer's adaLN weights are all zero (never trained)")
            if untrained
            else ("transformer", "the transformer's adaLN weights have been trained")
        )
    if not evidence and content is None:
        raise CheckpointError(
            f"{path}: cannot tell which tower was trained; pass --arch Tran or --arch Conv"
        )
    chosen, reason = evidence[0] if evidence else content
    if content is not None and content[0] != chosen:
        raise CheckpointError(
            f"{path}: {reason}, so the {arch_label(chosen)} tower would be loaded, but "
            f"{content[1]}; the {arch_label(chosen)} tower of this file is not a trained model"
        )
    agreeing = [why for arch, why in evidence[1:] if arch == chosen]
    if content is not None and evidence:
        agreeing.append(content[1])
    note = f"architecture {arch_label(chosen)}: {reason}"
    if agreeing:
        note += f" (agrees: {'; '.join(agreeing)})"
    return chosen, note


def from_research_layout(
    model: dict[str, Tensor],
    shadow: Any,
    ema_meta: dict[str, Any],
    config: Any,
    *,
    path: Path,
    fmt: str,
    step: int,
    dataset: str | None,
    arch: str | None,
    notes: list[str],
) -> CheckpointContents:
    """Formats A and C: check the both-tower layout, name the EMA, keep the trained tower.

    Args:
        model: The file's model weights, in stored order.
        shadow: Its positional EMA list.
        ema_meta: ``decay`` and ``num_updates`` of the EMA, where the file has them.
        config: The run's config as plain data, or None.
        path: The file, for messages.
        fmt: The format's name, recorded in the contents.
        step: The stored step.
        dataset: The dataset the caller expects, or None.
        arch: The tower the caller asked for (canonical), or None.
        notes: How the file was read so far; appended to.
    """
    model = strip_module_prefix(dict(model), notes)
    expected = layouts.check_layout(model, layouts.RESEARCH, str(path))
    named_ema = ema_by_name(shadow, expected, str(path))
    arch, evidence = _research_arch(model, config, path, arch)
    notes.append(evidence)
    kept, dropped = towers.tower_weights(model, arch)
    ema, _ = towers.tower_weights(named_ema, arch)
    notes.append(f"dropped {towers.describe_dropped(dropped)}")
    data_name = config_value(config, "data.train")
    plugin = plugin_for(
        data_name,
        asked=dataset,
        source=path,
        evidence="data.train in its config",
        width=dataset_from_weights(kept, arch),
    )
    check_label_emb_length(model, plugin, path)
    sizes = model_sizes_from(kept, arch, config_value(config, "model.dropout"))
    check_config_sizes(config, sizes, path, arch)
    length = config_value(config, "model.length")
    if length is not None and length != plugin.sequence_length:
        raise CheckpointError(
            f"{path}: its config says model.length = {length}, but {plugin.name} sequences are "
            f"{plugin.sequence_length} bp"
        )
    settings = {d3: config_value(config, key) for key, d3 in RESEARCH_TRAINING.items()}
    betas = (config_value(config, "optim.beta1"), config_value(config, "optim.beta2"))
    if None not in betas:
        settings["training.betas"] = [float(b) for b in betas]
    if config is None:
        notes.append("no run config found: sizes from the weights, d3's paper settings otherwise")
    cfg = foreign_d3_config(plugin, arch, sizes, research_noise(config, notes), settings, notes)
    return CheckpointContents(
        format=fmt,
        path=path,
        plugin=plugin,
        cfg=cfg,
        weights=kept,
        ema=ema,
        ema_decay=float(ema_meta.get("decay", cfg.training.ema_decay)),
        ema_updates=int(ema_meta.get("num_updates", 0)),
        step=step,
        # docs/models.md#transformer: the research transformer ran its blocks under bfloat16
        # autocast (on GPU).
        precision="bf16-mixed" if arch == "transformer" else "32-true",
        notes=notes,
        source_config=config,
    )


def read(
    path: Path, payload: Any, *, dataset: str | None = None, arch: str | None = None
) -> CheckpointContents:
    """A research checkpoint, with the config of its run directory if it is in one."""
    notes: list[str] = []
    config_file = research_config_for(path.parent) or research_config_for(path.parent.parent)
    config = file_config(load_yaml(config_file), str(config_file), notes) if config_file else None
    if config_file:
        notes.append(f"run config {config_file}")
    ema = payload["ema"]
    if "shadow_params" not in ema:
        raise CheckpointError(f"{path}: its 'ema' entry has no 'shadow_params' list")
    return from_research_layout(
        payload["model"],
        ema["shadow_params"],
        ema,
        config,
        path=path,
        fmt=FORMAT.name,
        step=int(payload.get("step", 0)),
        dataset=dataset,
        arch=arch,
        notes=notes,
    )


FORMAT = CheckpointFormat(
    name="research",
    description="the published D3 code's checkpoint.pth, alone or in its hydra run directory",
    expects="a research checkpoint ('model', 'ema')",
    detect=detect,
    read=read,
    locate=locate,
    run_directory=_run_directory,
)
