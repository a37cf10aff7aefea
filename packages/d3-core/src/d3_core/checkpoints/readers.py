"""Readers of the checkpoints users already have: research, converted and d3-dna (SPEC §10).

Each checks the file's layout strictly by name (`d3_core.checkpoints.layouts`), names its positional EMA list,
keeps the trained tower (`d3_core.checkpoints.towers`) and describes the model as a d3 config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import Tensor

from d3_core.checkpoints import layouts as formats
from d3_core.checkpoints import towers
from d3_core.checkpoints.files import (
    MODEL_PREFIX,
    CheckpointContents,
    research_config_for,
)
from d3_core.checkpoints.foreign import (
    RESEARCH_TRAINING,
    check_config_sizes,
    check_label_emb_length,
    config_value,
    dataset_from_weights,
    foreign_d3_config,
    lightning_precision,
    load_yaml,
    model_sizes_from,
    plugin_for,
    research_noise,
    strip_module_prefix,
)
from d3_core.errors import CheckpointError, D3Error
from d3_core.registry import (
    arch_label,
    canonical_arch,
)


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


def _research_arch(
    weights: dict[str, Tensor], config: Any, path: Path, asked: str | None
) -> tuple[str, str]:
    """Which tower of a research file was trained, and the evidence, in SPEC §10 A's order.

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


def _from_research_layout(
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
    """Formats A and C: check the both-tower layout, name the EMA, keep the trained tower."""
    model = strip_module_prefix(dict(model), notes)
    expected = formats.check_layout(model, formats.RESEARCH, str(path))
    named_ema = formats.ema_by_name(shadow, expected, str(path))
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
        # SPEC §6: the research transformer ran its blocks under bfloat16 autocast (on GPU).
        precision="bf16-mixed" if arch == "transformer" else "32-true",
        notes=notes,
        source_config=config,
    )


def read_research(state: dict, path: Path, *, dataset: str | None, arch: str | None):
    notes: list[str] = []
    config_file = research_config_for(path.parent) or research_config_for(path.parent.parent)
    config = load_yaml(config_file) if config_file else None
    if config_file:
        notes.append(f"run config {config_file}")
    ema = state["ema"]
    if "shadow_params" not in ema:
        raise CheckpointError(f"{path}: its 'ema' entry has no 'shadow_params' list")
    return _from_research_layout(
        state["model"],
        ema["shadow_params"],
        ema,
        config,
        path=path,
        fmt="research",
        step=int(state.get("step", 0)),
        dataset=dataset,
        arch=arch,
        notes=notes,
    )


def _lightning_parts(state: dict, path: Path) -> tuple[dict, Any, dict, Any]:
    """(model weights, EMA list, EMA metadata, hyper-parameters) of a Lightning envelope."""
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
    hparams = state.get("hyper_parameters") or {}
    return model, shadow, meta, hparams


def read_converted(state: dict, path: Path, *, dataset: str | None, arch: str | None):
    model, shadow, meta, hparams = _lightning_parts(state, path)
    config = formats.plain_config(hparams.get("cfg"))
    step = hparams.get("original_step", state.get("global_step", 0))
    return _from_research_layout(
        model,
        shadow,
        meta,
        config,
        path=path,
        fmt="converted",
        step=int(step),
        dataset=dataset,
        arch=arch,
        notes=["a research checkpoint in the earlier Lightning integration's envelope"],
    )


# -- packaged ---------------------------------------------------------------------------------


def read_packaged(state: dict, path: Path, *, dataset: str | None, arch: str | None):
    model, shadow, meta, hparams = _lightning_parts(state, path)
    notes: list[str] = []
    model = strip_module_prefix(model, notes)
    config = formats.plain_config(hparams.get("cfg")) or {}
    stored = config_value(config, "model.architecture")
    if stored is not None:
        found = canonical_arch(stored)
        notes.append(f"architecture {arch_label(found)}: model.architecture = {stored!r}")
    else:
        found = "transformer" if "vocab_embed.embedding" in model else "conv"
        notes.append(f"architecture {arch_label(found)}: from its weights' names")
    layout = formats.PACKAGED_TRANSFORMER if found == "transformer" else formats.PACKAGED_CONV
    expected = formats.check_layout(model, layout, str(path))
    named_ema = formats.ema_by_name(shadow, expected, str(path))
    kept, dropped = towers.tower_weights(model, found)
    ema, _ = towers.tower_weights(named_ema, found)
    if dropped:
        notes.append(f"dropped {towers.describe_dropped(dropped)}")
    named = hparams.get("dataset_name") or config_value(config, "dataset.name")
    plugin = plugin_for(
        named,
        asked=dataset,
        source=path,
        evidence="dataset_name in its hyper-parameters",
        # A packaged conv model's label mode is fixed; a named dataset is checked just below.
        width=None if named and found == "conv" else dataset_from_weights(kept, found),
    )
    if found == "conv" and plugin.label_width != 1:
        raise CheckpointError(
            f"{path} is a d3-dna conv model, which takes one label channel (a per-position "
            f"track, or one global value broadcast over the positions; it has no label_emb), so "
            f"it cannot model {plugin.name}'s {plugin.label_width} labels "
            f"({', '.join(plugin.label_names)})"
        )
    length = config_value(config, "dataset.sequence_length")
    if length is not None and length != plugin.sequence_length:
        raise CheckpointError(
            f"{path}: its config says dataset.sequence_length = {length}, but {plugin.name} "
            f"sequences are {plugin.sequence_length} bp"
        )
    sizes = model_sizes_from(kept, found, config_value(config, "model.dropout"))
    check_config_sizes(config, sizes, path, found)
    if found == "conv" and plugin.label_mode == "global":
        sizes["label_embedding"] = False
        notes.append("its one global label is broadcast over the positions, as d3-dna's conv does")
    precision = config_value(config, "training.precision") or config_value(
        config, "trainer.precision"
    )
    precision = lightning_precision(precision, found, notes)
    settings = {
        "training.ema_decay": config_value(config, "training.ema"),
        "training.batch_size": config_value(config, "training.batch_size"),
        "training.lr": config_value(config, "optim.lr"),
    }
    cfg = foreign_d3_config(plugin, found, sizes, research_noise(config, notes), settings, notes)
    return CheckpointContents(
        format="packaged",
        path=path,
        plugin=plugin,
        cfg=cfg,
        weights=kept,
        ema=ema,
        ema_decay=float(meta.get("decay", cfg.training.ema_decay)),
        ema_updates=int(meta.get("num_updates", 0)),
        step=int(state.get("global_step", 0)),
        precision=precision,
        notes=notes,
        source_config=config or None,
    )
