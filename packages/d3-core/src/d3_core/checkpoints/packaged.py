"""The d3-dna release's Lightning ``.ckpt``, the "packaged" format
(docs/checkpoint-formats.md#packaged-release-checkpoints).

One tower (transformer or conv) under ``score_model.`` with its own unused tensors, a positional
EMA list over that model's parameters, and the run's config as a pickled OmegaConf object (so the
file loads only when trusted). Its layout is checked strictly by name
(`d3_core.checkpoints.layouts`), the EMA list named through it
(`d3_core.checkpoints.ema_names`), and the model described as a d3 config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from d3_core.checkpoints import envelope, layouts, towers
from d3_core.checkpoints.ema_names import ema_by_name
from d3_core.checkpoints.foreign import (
    check_config_sizes,
    config_value,
    dataset_from_weights,
    foreign_d3_config,
    lightning_precision,
    model_sizes_from,
    plugin_for,
    research_noise,
    strip_module_prefix,
)
from d3_core.checkpoints.interface import CheckpointContents, CheckpointFormat
from d3_core.config.schema import file_config
from d3_core.errors import CheckpointError
from d3_core.registry import arch_label, canonical_arch

__all__ = ["FORMAT", "detect", "read"]


def detect(payload: Any) -> bool:
    """A Lightning envelope with ``score_model.*`` weights that is not a wrapped research file."""
    return envelope.score_model_keys(payload) is not None and not envelope.holds_research_layout(
        payload
    )


def read(
    path: Path, payload: Any, *, dataset: str | None = None, arch: str | None = None
) -> CheckpointContents:
    """A d3-dna checkpoint (`arch` is checked by the loader: the file has one tower)."""
    model, shadow, meta, hparams = envelope.lightning_parts(payload, path)
    notes: list[str] = []
    model = strip_module_prefix(model, notes)
    config = file_config(layouts.plain_config(hparams.get("cfg")), str(path), notes) or {}
    stored = config_value(config, "model.architecture")
    if stored is not None:
        found = canonical_arch(stored)
        notes.append(f"architecture {arch_label(found)}: model.architecture = {stored!r}")
    else:
        found = "transformer" if "vocab_embed.embedding" in model else "conv"
        notes.append(f"architecture {arch_label(found)}: from its weights' names")
    layout = layouts.PACKAGED_TRANSFORMER if found == "transformer" else layouts.PACKAGED_CONV
    expected = layouts.check_layout(model, layout, str(path))
    named_ema = ema_by_name(shadow, expected, str(path))
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
        format=FORMAT.name,
        path=path,
        plugin=plugin,
        cfg=cfg,
        weights=kept,
        ema=ema,
        ema_decay=float(meta.get("decay", cfg.training.ema_decay)),
        ema_updates=int(meta.get("num_updates", 0)),
        step=int(payload.get("global_step", 0)),
        precision=precision,
        notes=notes,
        source_config=config or None,
    )


FORMAT = CheckpointFormat(
    name="packaged",
    description="the d3-dna release's Lightning .ckpt: one tower, a positional EMA list",
    expects=envelope.EXPECTS,
    detect=detect,
    read=read,
)
