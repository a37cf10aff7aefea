"""The config schema: its seven sections, every key with its type and default; and how a
config read from a file is made inert.

Every key is declared here (the ``model`` section by the architecture's config dataclass), so a
misspelt key is an error that names its source, never a silently ignored setting.

A config read from a file (a checkpoint's stored config, a research run's ``config.yaml``) never
has an interpolation resolved (docs/checkpoint-formats.md#stored-configs): resolvers such as
``${oc.env:NAME}`` would copy the reader's environment into d3's outputs, and a resolver may do
anything its author registered. `file_config` follows only a plain reference to another key of
the same config (``${model.length}``: the file's own data) and keeps every other ``${...}`` as
literal text; `escape_interpolations` marks every ``${`` of plain data as literal for OmegaConf,
for d3's own stored configs (written resolved, so a ``${`` in them was literal text) and before
a file's value enters a d3 config. The user's own files, ``key=value`` overrides and the packaged
presets are not files of this kind: they may interpolate.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING, DictConfig, OmegaConf

from d3_core.registry import DatasetPlugin, canonical_arch

PRESETS = ("cpu", "paper")
"""Packaged config presets: ``paper`` as the research runs, ``cpu`` sized for a laptop."""

PRECISIONS = ("auto", "32-true", "bf16-mixed")
"""``training.precision`` values. ``auto`` is the per-architecture policy of
`resolve_precision`; half precision (fp16) is not offered: its loss scaling clips unscaled
gradients and docs/method.md#score-entropy-loss keeps the loss out of half precision."""

_MODEL_KEYS_FROM_DATASET = ("length", "signal_dim", "label_mode")


@dataclass
class DatasetSection:
    """What the data is; filled from the dataset plugin, checked against it."""

    name: str = MISSING
    sequence_length: int = MISSING
    label_names: list[str] = MISSING
    label_mode: str = MISSING
    data: str | None = None  # path of the data file; `d3 train --data` sets it


@dataclass
class NoiseSection:
    """Noise schedule (docs/method.md#noise-schedules); D3 uses geometric noise from 1e-4 to 20."""

    type: str = "geometric"
    sigma_min: float = 1e-4
    sigma_max: float = 20.0


@dataclass
class GraphSection:
    """Transition graph (docs/method.md#transition-graphs); D3 uses the uniform graph."""

    type: str = "uniform"


@dataclass
class TrainingSection:
    """Optimisation (docs/models.md#dataset-variants); defaults are the research configs'."""

    batch_size: int = 256  # global: split over all processes
    micro_batch: int | None = None  # sequences per forward/backward; None = whole batch
    max_steps: int = 1_000_000
    lr: float = 3e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    adam_eps: float = 1e-8
    weight_decay: float = 0.0
    warmup_steps: int = 2500  # linear warm-up of the learning rate
    grad_clip: float | None = 1.0  # max global gradient norm; None disables clipping
    ema_decay: float = 0.9999
    time_eps: float = 1e-3  # smallest training time (the research code's; 1e-5 in d3-dna)
    # Classifier-free guidance: train this share of sequences on the null label, so the model
    # also learns the unconditional score (needs model.null_label: true). 0 = the research runs.
    label_dropout: float = 0.0
    seed: int = 42
    precision: str = "auto"
    num_workers: int | None = None  # None: chosen from the CPUs per process
    val_every_n_steps: int = 5000
    val_batches: int | None = None  # validation batches per check; None = the whole split
    checkpoint_every_n_steps: int = 5000
    log_every_n_steps: int = 50
    # Sampling during training (off unless sample_eval_every_n_steps is set): every N steps,
    # design sequences for the first sample_eval_labels validation labels with the EMA weights,
    # log their SP-MSE (val/sp_mse) and keep the best as checkpoints/best_sp_mse.ckpt.
    sample_eval_every_n_steps: int | None = None
    sample_eval_labels: int = 128
    sample_eval_steps: int = 32  # sampler steps (analytic)
    sample_eval_scorer: str = "oracle"  # "oracle" (needs sample_eval_oracle) or "ground_truth"
    sample_eval_oracle: str | None = None  # oracle checkpoint file


@dataclass
class SamplingSection:
    """Defaults of `d3 sample` (docs/method.md#sampling)."""

    predictor: str = "analytic"
    steps: int = 128
    batch_size: int = 64
    # Classifier-free guidance weight w used when the model has a null label (trained with
    # training.label_dropout); models without one sample unguided and say so.
    guidance: float = 0.0
    # The CFG weight when an oracle also guides: its tilt already conditions the samples, and
    # CFG on top overshoots (measured: SP-MSE 0.59 -> 0.71 for Conv, 1.37 -> 1.59 for Tran).
    guidance_with_oracle: float = 0.0
    # Oracle guidance weight and form used when an oracle is given to guide (`--oracle`).
    oracle_guidance: float = 3.0
    oracle_guidance_form: str = "gradient"


@dataclass
class TrainerSection:
    """Where training runs; passed to Lightning's Trainer."""

    accelerator: str = "auto"
    devices: Any = "auto"  # a count, a list of indices or "auto"
    num_nodes: int = 1
    strategy: str = "auto"


def _model_schema(model_class: type) -> Any:
    """An OmegaConf schema of the ``model`` section for a score-model class.

    Its keys are the fields of the class's config dataclass, less those that come from the
    dataset section, plus ``architecture``.
    """
    config_class = model_class.config_class
    hints = typing.get_type_hints(config_class)
    fields = [("architecture", str, MISSING)]
    for f in dataclasses.fields(config_class):
        if f.name in _MODEL_KEYS_FROM_DATASET:
            continue
        fields.append((f.name, hints[f.name], field(default=f.default)))
    return dataclasses.make_dataclass(f"{config_class.__name__}Section", fields)


def build_schema(plugin: DatasetPlugin, arch: str) -> DictConfig:
    """The empty config of a dataset and architecture: every key with its default.

    Args:
        plugin: The dataset plugin (provides the dataset section and the model class).
        arch: Architecture name in any accepted spelling.
    """
    arch = canonical_arch(arch)
    model_class = plugin.score_model_class(arch)
    schema = OmegaConf.create(
        {
            "dataset": OmegaConf.structured(
                DatasetSection(
                    name=plugin.name,
                    sequence_length=plugin.sequence_length,
                    label_names=list(plugin.label_names),
                    label_mode=plugin.label_mode,
                )
            ),
            "model": OmegaConf.structured(_model_schema(model_class)(architecture=arch)),
            "noise": OmegaConf.structured(NoiseSection),
            "graph": OmegaConf.structured(GraphSection),
            "training": OmegaConf.structured(TrainingSection),
            "sampling": OmegaConf.structured(SamplingSection),
            "trainer": OmegaConf.structured(TrainerSection),
        }
    )
    OmegaConf.set_struct(schema, True)
    return schema


def to_plain(cfg: Any) -> Any:
    """A config (or part of one) as plain dicts, lists and scalars."""
    if isinstance(cfg, DictConfig) or OmegaConf.is_config(cfg):
        return OmegaConf.to_container(cfg, resolve=True)
    return cfg


_INTERPOLATION = re.compile(r"(?<!\\)\$\{")
"""The start of an interpolation: ``${`` not escaped with a backslash."""
_REFERENCE = re.compile(r"(?<!\\)\$\{([A-Za-z_][\w-]*(?:\.[\w-]+)*)\}")
"""``${a.b}``: a plain, absolute reference to another key of the same config (no resolver)."""


def escape_interpolations(plain: Any) -> Any:
    """Plain data with every unescaped ``${`` of its strings escaped (``\\${``), so OmegaConf
    hands the text back as it is and never resolves it. Containers are copied, not changed."""
    if isinstance(plain, str):
        return _INTERPOLATION.sub(lambda _: "\\${", plain)
    if isinstance(plain, dict):
        return {key: escape_interpolations(value) for key, value in plain.items()}
    if isinstance(plain, (list, tuple)):
        return [escape_interpolations(value) for value in plain]
    return plain


def _lookup(root: Any, dotted: str) -> tuple[bool, Any]:
    node = root
    for part in dotted.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False, None
    return True, node


def file_config(plain: Any, source: str, notes: list[str] | None = None) -> Any:
    """A config read from a file, as plain data in which nothing will be resolved.

    A plain reference to another key of the same config (``${model.length}``, alone or inside
    text) is replaced by that key's value, as the file's own data. Every other ``${...}``, a
    resolver (``${oc.env:NAME}``, ``${hydra:...}``), a relative or nested one, a reference to a
    missing key or a cycle, is kept as literal text, and `notes` records the key and the file.

    Args:
        plain: The config as plain containers (``OmegaConf.to_container(..., resolve=False)``).
        source: The file, for notes.
        notes: Where to record what was kept as text.

    Returns:
        A copy of `plain`; strings may still hold ``${`` as text (pass a value through
        `escape_interpolations` before giving it to OmegaConf).
    """
    kept: list[str] = []

    def text(value: str, key: str, seen: frozenset[str]) -> Any:
        whole = _REFERENCE.fullmatch(value)
        if whole and whole.group(1) not in seen:
            found, target = _lookup(plain, whole.group(1))
            if found and not isinstance(target, (dict, list)):
                return walk(target, key, seen | {whole.group(1)})

        def one(match: re.Match) -> str:
            found, target = _lookup(plain, match.group(1))
            if match.group(1) in seen or not found or isinstance(target, (dict, list)):
                return match.group(0)
            followed = walk(target, key, seen | {match.group(1)})
            unresolved = isinstance(followed, str) and _INTERPOLATION.search(followed)
            return match.group(0) if unresolved else str(followed)

        value = _REFERENCE.sub(one, value)
        if _INTERPOLATION.search(value):
            kept.append(key)
        return value

    def walk(node: Any, key: str, seen: frozenset[str]) -> Any:
        if isinstance(node, str):
            return text(node, key, seen)
        if isinstance(node, dict):
            return {k: walk(v, f"{key}.{k}" if key else str(k), seen) for k, v in node.items()}
        if isinstance(node, (list, tuple)):
            return [walk(v, f"{key}.{i}", seen) for i, v in enumerate(node)]
        return node

    result = walk(plain, "", frozenset())
    if kept and notes is not None:
        notes.append(
            f"kept {', '.join(sorted(set(kept)))} of {source} as literal text: d3 never resolves "
            f"an interpolation other than a reference to a key of the same config"
        )
    return result
