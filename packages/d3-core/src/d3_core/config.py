"""Run configuration: schema → dataset package preset → user files → ``key=value`` overrides.

A config is an OmegaConf tree with six sections: ``dataset``, ``model``, ``noise``, ``graph``,
``training``, ``sampling`` and ``trainer``. Every key is declared by the schema below (the
``model`` section by the architecture's config dataclass), so a misspelt key is an error that
names its source, never a silently ignored setting. The resolved tree is stored as plain data in
the run directory and in every checkpoint.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from d3_core.errors import D3ConfigError
from d3_core.io import atomic_write
from d3_core.registry import DatasetPlugin, canonical_arch, load_dataset_plugin

__all__ = [
    "PRECISIONS",
    "PRESETS",
    "apply_layers",
    "build_schema",
    "check_config",
    "config_from_plain",
    "load_config_file",
    "model_sizes",
    "resolve_config",
    "resolve_precision",
    "save_config",
    "to_plain",
]

PRESETS = ("cpu", "paper")
"""Packaged config presets: ``paper`` as the research runs, ``cpu`` sized for a laptop."""

PRECISIONS = ("auto", "32-true", "bf16-mixed")
"""``training.precision`` values. ``auto`` is the per-architecture policy of
`resolve_precision`; half precision (fp16) is not offered: its loss scaling clips unscaled
gradients and SPEC §4 keeps the loss out of half precision."""

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
    """Noise schedule (SPEC §2); D3 uses geometric noise from 1e-4 to 20."""

    type: str = "geometric"
    sigma_min: float = 1e-4
    sigma_max: float = 20.0


@dataclass
class GraphSection:
    """Transition graph (SPEC §3); D3 uses the uniform graph."""

    type: str = "uniform"


@dataclass
class TrainingSection:
    """Optimisation (SPEC §8); defaults are the research configs'."""

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
    """Defaults of `d3 sample` (SPEC §5)."""

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


def _merge(base: DictConfig, layer: Any, source: str) -> DictConfig:
    """Merges one layer into the config; errors name the source and the offending key."""
    try:
        return OmegaConf.merge(base, layer)
    except ConfigKeyError as err:
        parent = str(err.full_key).rpartition(".")[0]
        node = OmegaConf.select(base, parent) if parent else base
        allowed = ", ".join(node.keys()) if isinstance(node, DictConfig) else "none"
        raise D3ConfigError(
            f"{source}: unknown config key {err.full_key!r}; the keys of "
            f"{parent or 'the top level'!r} are: {allowed}"
        ) from None
    except OmegaConfBaseException as err:
        reason = str(err).splitlines()[0]
        key = getattr(err, "full_key", None)
        where = f" at {key!r}" if key else ""
        raise D3ConfigError(f"{source}: invalid value{where}: {reason}") from None


def load_config_file(path: str | os.PathLike) -> DictConfig:
    """Reads a YAML config file.

    Raises:
        D3ConfigError: The file is missing, is not YAML, or is not a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise D3ConfigError(f"config file {str(path)!r} does not exist")
    try:
        loaded = OmegaConf.load(path)
    except Exception as err:  # yaml.YAMLError and friends, without importing yaml here
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise D3ConfigError(f"config file {str(path)!r} is not valid YAML: {first}") from None
    if not isinstance(loaded, DictConfig):
        raise D3ConfigError(f"config file {str(path)!r} must hold a mapping of sections")
    return loaded


def _parse_overrides(overrides: Iterable[str]) -> list[tuple[str, DictConfig]]:
    """Each ``key=value`` as a one-key config, checked for its form."""
    parsed = []
    for item in overrides:
        key, sep, _ = item.partition("=")
        if not sep or not key.strip() or " " in key.strip():
            raise D3ConfigError(
                f"override {item!r} is not of the form section.key=value, "
                f"e.g. training.max_steps=1000"
            )
        try:
            parsed.append((item, OmegaConf.from_dotlist([item])))
        except OmegaConfBaseException as err:
            raise D3ConfigError(f"override {item!r}: {str(err).splitlines()[0]}") from None
    return parsed


def preset_file(plugin: DatasetPlugin, arch: str, preset: str) -> Any:
    """The packaged config file of a dataset, architecture and preset (a resource path)."""
    if preset not in PRESETS:
        raise D3ConfigError(f"unknown preset {preset!r}; use one of {', '.join(PRESETS)}")
    plugin.require("configs")
    arch = canonical_arch(arch)
    resource = resources.files(plugin.configs) / arch / f"{preset}.yaml"
    if not resource.is_file():
        raise D3ConfigError(
            f"{plugin.distribution} {plugin.version} has no {preset!r} config for {arch} "
            f"(expected {plugin.configs}/{arch}/{preset}.yaml)"
        )
    return resource


def resolve_config(
    dataset: str,
    arch: str,
    *,
    preset: str = "cpu",
    config_files: Iterable[str | os.PathLike] = (),
    overrides: Iterable[str] = (),
) -> DictConfig:
    """The full config of a run: schema → packaged preset → each file → each override.

    Args:
        dataset: Dataset name, any case.
        arch: Architecture name, any accepted spelling.
        preset: ``"cpu"`` or ``"paper"``.
        config_files: YAML files merged in order (``--config``).
        overrides: ``section.key=value`` strings merged last, in order.

    Returns:
        The validated config (struct mode: unknown keys cannot be added).

    Raises:
        D3ConfigError: An unknown key, a wrongly typed or out-of-range value, or a dataset
            section that contradicts the installed plugin; the message names the source.
        PluginError: Unknown dataset or architecture.
    """
    plugin = load_dataset_plugin(dataset)
    arch = canonical_arch(arch)
    cfg = build_schema(plugin, arch)
    resource = preset_file(plugin, arch, preset)
    with resources.as_file(resource) as path:
        source = f"packaged config {plugin.configs}/{arch}/{preset}.yaml"
        cfg = _merge(cfg, load_config_file(path), source)
    return apply_layers(cfg, plugin, config_files=config_files, overrides=overrides)


def apply_layers(
    cfg: DictConfig,
    plugin: DatasetPlugin,
    *,
    config_files: Iterable[str | os.PathLike] = (),
    overrides: Iterable[str] = (),
) -> DictConfig:
    """Merges user files, then ``key=value`` overrides, into a config and validates the result.

    Raises:
        D3ConfigError: As `resolve_config`.
    """
    for file in config_files:
        cfg = _merge(cfg, load_config_file(file), f"config file {str(file)!r}")
    for item, layer in _parse_overrides(overrides):
        cfg = _merge(cfg, layer, f"override {item!r}")
    check_config(cfg, plugin)
    cfg.model.architecture = canonical_arch(cfg.model.architecture)
    return cfg


def config_from_plain(plain: Mapping[str, Any], plugin: DatasetPlugin | None = None) -> DictConfig:
    """Rebuilds a validated config from the plain data stored in a run or checkpoint.

    Args:
        plain: The stored mapping (`to_plain` of a resolved config).
        plugin: The dataset's plugin; looked up from ``plain["dataset"]["name"]`` if omitted.

    Raises:
        D3ConfigError: The mapping lacks the dataset or architecture, or does not fit the schema.
    """
    try:
        name = plain["dataset"]["name"]
        arch = plain["model"]["architecture"]
    except (KeyError, TypeError):
        raise D3ConfigError("the stored config lacks dataset.name or model.architecture") from None
    plugin = plugin or load_dataset_plugin(name)
    cfg = _merge(build_schema(plugin, arch), OmegaConf.create(dict(plain)), "the stored config")
    check_config(cfg, plugin)
    return cfg


def _fail(key: str, value: Any, expected: str) -> None:
    raise D3ConfigError(f"config {key} = {value!r} is invalid: expected {expected}")


def check_config(cfg: DictConfig, plugin: DatasetPlugin) -> None:
    """Checks values the schema's types cannot: ranges, choices and agreement with the plugin.

    Raises:
        D3ConfigError: naming the key, the value and what is allowed.
    """
    from d3_core.diffusion.noise import build_noise
    from d3_core.diffusion.sampling import PREDICTORS

    ds = cfg.dataset
    if ds.name != plugin.name:
        _fail("dataset.name", ds.name, f"{plugin.name!r} (the dataset being configured)")
    if ds.sequence_length != plugin.sequence_length:
        _fail(
            "dataset.sequence_length",
            ds.sequence_length,
            f"{plugin.sequence_length} for {plugin.name}",
        )
    if ds.label_mode != plugin.label_mode:
        _fail("dataset.label_mode", ds.label_mode, f"{plugin.label_mode!r} for {plugin.name}")
    if len(ds.label_names) != plugin.label_width:
        _fail(
            "dataset.label_names",
            list(ds.label_names),
            f"{plugin.label_width} names for {plugin.name}",
        )
    _check_architecture(cfg, plugin)
    model_sizes(cfg, plugin)  # the model's own dataclass validates its sizes

    tr = cfg.training
    for key in (
        "batch_size",
        "max_steps",
        "val_every_n_steps",
        "checkpoint_every_n_steps",
        "log_every_n_steps",
    ):
        if tr[key] < 1:
            _fail(f"training.{key}", tr[key], "a positive integer")
    if tr.micro_batch is not None and tr.micro_batch < 1:
        _fail("training.micro_batch", tr.micro_batch, "a positive integer or null")
    if tr.val_batches is not None and tr.val_batches < 1:
        _fail("training.val_batches", tr.val_batches, "a positive integer or null")
    if tr.warmup_steps < 0:
        _fail("training.warmup_steps", tr.warmup_steps, "an integer >= 0")
    if not tr.lr > 0:
        _fail("training.lr", tr.lr, "a positive number")
    if len(tr.betas) != 2 or not all(0 <= b < 1 for b in tr.betas):
        _fail("training.betas", list(tr.betas), "two numbers in [0, 1)")
    if not 0 <= tr.ema_decay < 1:
        _fail("training.ema_decay", tr.ema_decay, "a number in [0, 1)")
    if not 0 < tr.time_eps < 1:
        _fail("training.time_eps", tr.time_eps, "a number in (0, 1)")
    if not 0 <= tr.label_dropout < 1:
        _fail("training.label_dropout", tr.label_dropout, "a number in [0, 1)")
    if tr.label_dropout > 0 and not cfg.model.get("null_label", False):
        _fail("training.label_dropout", tr.label_dropout,
              "0 unless model.null_label is true (dropped labels use the learned null label)")  # fmt: skip
    if tr.grad_clip is not None and not tr.grad_clip > 0:
        _fail("training.grad_clip", tr.grad_clip, "a positive number or null")
    if tr.sample_eval_every_n_steps is not None:
        if tr.sample_eval_every_n_steps < 1:
            _fail("training.sample_eval_every_n_steps", tr.sample_eval_every_n_steps,
                  "a positive integer or null")  # fmt: skip
        if tr.sample_eval_labels < 2 or tr.sample_eval_steps < 1:
            _fail("training.sample_eval_labels/steps",
                  [tr.sample_eval_labels, tr.sample_eval_steps],
                  "at least 2 labels and 1 step")  # fmt: skip
        if tr.sample_eval_scorer not in ("oracle", "ground_truth"):
            _fail("training.sample_eval_scorer", tr.sample_eval_scorer,
                  "'oracle' or 'ground_truth'")  # fmt: skip
        if tr.sample_eval_scorer == "oracle" and not tr.sample_eval_oracle:
            _fail("training.sample_eval_oracle", tr.sample_eval_oracle,
                  "an oracle checkpoint file when sample_eval_scorer is 'oracle'")  # fmt: skip
    if tr.precision not in PRECISIONS:
        _fail("training.precision", tr.precision, f"one of {', '.join(PRECISIONS)}")
    if cfg.graph.type != "uniform":
        _fail("graph.type", cfg.graph.type, "'uniform' (the graph D3 trains with)")
    build_noise(cfg.noise.type, **{k: v for k, v in cfg.noise.items() if k != "type"})
    if cfg.sampling.predictor not in PREDICTORS:
        _fail("sampling.predictor", cfg.sampling.predictor, f"one of {', '.join(PREDICTORS)}")
    if cfg.sampling.oracle_guidance < 0:
        _fail("sampling.oracle_guidance", cfg.sampling.oracle_guidance, "a number >= 0")
    if cfg.sampling.oracle_guidance_form not in ("gradient", "exact"):
        _fail("sampling.oracle_guidance_form", cfg.sampling.oracle_guidance_form,
              "'gradient' or 'exact'")  # fmt: skip
    if cfg.sampling.steps < 1 or cfg.sampling.batch_size < 1:
        _fail("sampling", dict(cfg.sampling), "positive steps and batch_size")


def _check_architecture(cfg: DictConfig, plugin: DatasetPlugin) -> None:
    """The model section must be the one built for ``model.architecture``."""
    arch = canonical_arch(cfg.model.architecture)
    config_class = plugin.score_model_class(arch).config_class
    fields = {f.name for f in dataclasses.fields(config_class)} - set(_MODEL_KEYS_FROM_DATASET)
    if set(cfg.model) - {"architecture"} != fields:
        raise D3ConfigError(
            f"config model.architecture = {cfg.model.architecture!r} does not match the model "
            f"section, which was built for the other architecture; choose the architecture with "
            f"--arch, not in a config file or override"
        )


def model_sizes(cfg: DictConfig, plugin: DatasetPlugin) -> Any:
    """The score model's config dataclass for a config (validated by the dataclass).

    Raises:
        D3ConfigError: A size is out of range.
    """
    model_class = plugin.score_model_class(cfg.model.architecture)
    sizes = {k: v for k, v in to_plain(cfg.model).items() if k != "architecture"}
    return model_class.config_class(
        length=cfg.dataset.sequence_length,
        signal_dim=len(cfg.dataset.label_names),
        label_mode=cfg.dataset.label_mode,
        **sizes,
    )


def resolve_precision(requested: str, arch: str, accelerator: str) -> str:
    """The Lightning precision of a run.

    ``auto`` follows the research runs: the transformer trains under bfloat16 autocast on GPUs,
    in float32 elsewhere (bfloat16 matmuls are slower than float32 on most CPUs); the conv model
    always trains in float32.

    Args:
        requested: ``training.precision``.
        arch: Architecture name.
        accelerator: ``"cuda"``/``"gpu"``, ``"cpu"``, ``"mps"``...
    """
    if requested != "auto":
        return requested
    on_gpu = accelerator in ("cuda", "gpu")
    return "bf16-mixed" if canonical_arch(arch) == "transformer" and on_gpu else "32-true"


def to_plain(cfg: Any) -> Any:
    """A config (or part of one) as plain dicts, lists and scalars."""
    if isinstance(cfg, DictConfig) or OmegaConf.is_config(cfg):
        return OmegaConf.to_container(cfg, resolve=True)
    return cfg


def save_config(cfg: DictConfig, path: str | os.PathLike) -> Path:
    """Writes a config as YAML atomically (a crash leaves the old file or none, never half)."""
    with atomic_write(path) as out:
        out.write(OmegaConf.to_yaml(OmegaConf.create(to_plain(cfg))))
    return Path(path)
