"""A foreign checkpoint in d3's terms: its dataset, model sizes, noise and settings
(docs/checkpoint-formats.md).

Shared by the formats of research, converted and d3-dna files (`d3_core.checkpoints.research`,
`.converted`, `.packaged`); `plugin_for` by d3's own too (`d3_core.checkpoints.native`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from d3_core.checkpoints import layouts
from d3_core.checkpoints.safe_load import first_line
from d3_core.config import config_from_plain, resolve_config, to_plain
from d3_core.config.schema import escape_interpolations
from d3_core.errors import CheckpointError, D3ConfigError
from d3_core.registry import (
    DatasetPlugin,
    list_datasets,
    load_dataset_plugin,
)

# Fixed in the research conv model (docs/models.md#convolutional).
RESEARCH_DILATIONS = (1, 1, 4, 16, 64)


def strip_module_prefix(weights: dict[str, Tensor], notes: list[str]) -> dict[str, Tensor]:
    """Data-parallel wrappers save ``module.``-prefixed names; the layout has none."""
    if weights and all(k.startswith("module.") for k in weights):
        notes.append("stripped the 'module.' prefix of a data-parallel model")
        return {k[len("module.") :]: v for k, v in weights.items()}
    return weights


def load_yaml(path: Path) -> Any:
    try:
        return OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    except Exception as err:
        raise CheckpointError(f"cannot read the run config {path}: {first_line(err)}") from None


def config_value(config: Any, dotted: str, default: Any = None) -> Any:
    node = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def dataset_from_weights(weights: dict[str, Tensor], arch: str) -> tuple[int, str, int | None]:
    """(label width, label mode, sequence length or None) of the trained tower's weights."""
    if arch == "transformer":
        width = int(weights["vocab_embed.signal_embedding.weight"].shape[1])
        return width, "unknown", None
    if "label_emb.0.weight" in weights:
        length, width = weights["label_emb.0.weight"].shape
        return int(width), "global", int(length)
    return 1, "per_position", None


def plugin_for(
    named: Any,
    *,
    asked: str | None,
    source: Path,
    evidence: str,
    width: tuple[int, str, int | None] | None = None,
) -> DatasetPlugin:
    """The dataset plugin of a checkpoint: by its stored name, else by its label width.

    Raises:
        CheckpointError: The stored name is not the one asked for (both named), the label width
            matches no installed dataset or several, or contradicts the named one.
        PluginError: The named dataset's package is not installed.
    """
    asked = asked.strip().lower() if asked else None
    if named:
        name = str(named).strip().lower()
        if asked and name != asked:
            raise CheckpointError(
                f"{source} is a {name} checkpoint ({evidence}); it cannot be used as a "
                f"{asked} model"
            )
        plugin = load_dataset_plugin(name)
    else:
        plugin = None
    if width is None:
        if plugin is None:
            raise CheckpointError(f"{source} does not say which dataset it was trained on")
        return plugin
    labels, mode, length = width

    def fits(p: DatasetPlugin) -> bool:
        return (
            p.label_width == labels
            and (mode == "unknown" or p.label_mode == mode)
            and (length is None or p.sequence_length == length)
        )

    shape = f"{labels} label{'s' if labels > 1 else ''}" + (f", {length} bp" if length else "")
    if plugin is not None:
        if not fits(plugin):
            raise CheckpointError(
                f"{source} says it is a {plugin.name} model ({evidence}) but its weights take "
                f"{shape}; {plugin.name} has {plugin.label_width} labels "
                f"({', '.join(plugin.label_names)}) of {plugin.sequence_length} bp"
            )
        return plugin
    if asked:
        plugin = load_dataset_plugin(asked)
        if not fits(plugin):
            raise CheckpointError(
                f"{source} takes {shape}, so it is not a {asked} model ({asked} has "
                f"{plugin.label_width} labels of {plugin.sequence_length} bp)"
            )
        return plugin
    candidates = [load_dataset_plugin(name) for name in list_datasets()]
    matching = [p for p in candidates if fits(p)]
    if len(matching) == 1:
        return matching[0]
    installed = ", ".join(p.name for p in candidates) or "none"
    found = ", ".join(p.name for p in matching)
    raise CheckpointError(
        f"{source} does not name its dataset and its weights take {shape}, which "
        + (f"several installed datasets fit ({found})" if matching else "no installed dataset fits")
        + f" (installed: {installed}); pass --dataset"
    )


def research_noise(config: Any, notes: list[str]) -> dict[str, Any]:
    """The geometric noise of a run's config (all D3 runs use it;
    docs/method.md#noise-schedules)."""
    noise = config_value(config, "noise") or {}
    graph = str(config_value(config, "graph.type", "uniform")).lower()
    if graph != "uniform":
        raise CheckpointError(
            f"the run was trained with the {graph!r} graph; d3 models D3's uniform graph only"
        )
    kind = str(noise.get("type", "geometric")).lower()
    if kind != "geometric":
        raise CheckpointError(
            f"the run was trained with {kind!r} noise; d3 reads geometric-noise runs (every D3 "
            f"config uses it)"
        )
    if not noise:
        notes.append("no noise section in the config: D3's geometric noise 1e-4..20 assumed")
    bounds = {}
    for key, default in (("sigma_min", 1e-4), ("sigma_max", 20.0)):
        value = noise.get(key, default)
        try:
            bounds[key] = float(value)
        except (TypeError, ValueError):
            raise CheckpointError(
                f"the run's config has noise.{key} = {value!r}, not a number (d3 resolves no "
                f"interpolation of a file's config but a reference to a key of the same config)"
            ) from None
    return {"type": "geometric", **bounds}


# research config key -> d3 config key; each is applied only if it is a valid d3 value.
RESEARCH_TRAINING = {
    "training.batch_size": "training.batch_size",
    "training.n_iters": "training.max_steps",
    "training.ema": "training.ema_decay",
    "optim.lr": "training.lr",
    "optim.warmup": "training.warmup_steps",
    "optim.grad_clip": "training.grad_clip",
    "optim.weight_decay": "training.weight_decay",
    "optim.eps": "training.adam_eps",
}


def foreign_d3_config(
    plugin: DatasetPlugin,
    arch: str,
    sizes: dict[str, Any],
    noise: dict[str, Any],
    settings: dict[str, Any],
    notes: list[str],
) -> DictConfig:
    """A d3 config for a foreign checkpoint: the paper preset, its sizes, noise and settings."""
    cfg = resolve_config(plugin.name, arch, preset="paper")
    for key, value in sizes.items():
        OmegaConf.update(cfg, f"model.{key}", value, merge=False)
    for key, value in noise.items():
        OmegaConf.update(cfg, f"noise.{key}", value, merge=False)
    for key, value in settings.items():
        if value is None:
            continue
        trial = cfg.copy()
        try:
            OmegaConf.update(trial, key, escape_interpolations(value), merge=False)
            config_from_plain(to_plain(trial), plugin)
        except Exception:  # a setting d3 cannot take is skipped, and said so
            notes.append(f"ignored the run's {key} = {value!r}: not a valid d3 value")
            continue
        cfg = trial
    try:
        return config_from_plain(to_plain(cfg), plugin)
    except D3ConfigError as err:
        raise CheckpointError(f"the checkpoint's model does not fit d3's config: {err}") from None


def model_sizes_from(weights: dict[str, Tensor], arch: str, dropout: Any) -> dict[str, Any]:
    s = layouts.layout_sizes(weights)
    if arch == "transformer":
        if s["hidden"] % s["head_dim"] or s["mlp_hidden"] % s["hidden"]:
            raise CheckpointError(
                f"transformer sizes do not fit: hidden {s['hidden']}, head dim {s['head_dim']}, "
                f"MLP {s['mlp_hidden']}"
            )
        return {
            "vocab_size": s["vocab"],
            "hidden_size": s["hidden"],
            "n_blocks": s["n_blocks"],
            "n_heads": s["hidden"] // s["head_dim"],
            "cond_dim": s["cond"],
            "mlp_ratio": s["mlp_hidden"] // s["hidden"],
            "dropout": float(dropout if dropout is not None else 0.1),
        }
    return {
        "vocab_size": s["vocab"],
        "channels": s["channels"],
        "n_blocks": s["conv_blocks"],
        "kernel_size": s["kernel"],
        "dilations": list(RESEARCH_DILATIONS),
        "cond_dim": s["cond"],
    }


def check_config_sizes(config: Any, sizes: dict[str, Any], path: Path, arch: str) -> None:
    """The run config's model sizes must be the weights' (for the trained tower)."""
    keys = ("hidden_size", "n_blocks", "n_heads") if arch == "transformer" else ()
    wrong = [
        f"model.{key} = {config_value(config, f'model.{key}')!r} but the weights have {sizes[key]}"
        for key in (*keys, "cond_dim")
        if config_value(config, f"model.{key}") is not None
        and config_value(config, f"model.{key}") != sizes[key]
    ]
    if wrong:
        raise CheckpointError(
            f"{path}: its config does not describe its weights: {'; '.join(wrong)}"
        )


def check_label_emb_length(model: dict[str, Tensor], plugin: DatasetPlugin, path: Path) -> None:
    """The conv ``label_emb`` maps to one value per position, trained or dead."""
    weight = model.get("label_emb.0.weight")
    if weight is not None and weight.shape[0] != plugin.sequence_length:
        raise CheckpointError(
            f"{path}: label_emb.0.weight is {tuple(weight.shape)}, mapping labels to "
            f"{weight.shape[0]} positions, but {plugin.name} sequences are "
            f"{plugin.sequence_length} bp"
        )


def lightning_precision(value: Any, arch: str, notes: list[str]) -> str:
    names = {
        "32": "32-true",
        "32-true": "32-true",
        "bf16": "bf16-mixed",
        "bf16-mixed": "bf16-mixed",
    }
    names |= {"16": "16-mixed", "16-mixed": "16-mixed", "bf16-true": "bf16-true"}
    if value is not None and str(value) in names:
        return names[str(value)]
    guess = "bf16-mixed" if arch == "transformer" else "32-true"
    notes.append(f"precision not recorded: {guess} assumed, as the research runs")
    return guess
