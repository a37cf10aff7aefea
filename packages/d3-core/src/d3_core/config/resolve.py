"""Resolving a run's config: schema → dataset package preset → user files → ``key=value``.

`resolve_run_config` returns the config with its plugin (`RunConfig`); the resolved tree is
stored as plain data (`to_plain`, `save_config`) in the run directory and in every checkpoint,
and rebuilt from it by `config_from_plain`.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from d3_core.config.checks import check_config
from d3_core.config.schema import PRESETS, build_schema, escape_interpolations, to_plain
from d3_core.errors import D3ConfigError
from d3_core.io import atomic_write
from d3_core.registry import DatasetPlugin, as_plugin, canonical_arch, load_dataset_plugin

_SYNONYMS = {
    "learning_rate": "lr",
    "steps": "max_steps",
    "num_steps": "max_steps",
    "epochs": "max_steps",
    "bs": "batch_size",
    "arch": "architecture",
    "gpus": "devices",
}
"""Names other tools give d3's keys, for the "did you mean" of an unknown key."""


def _merge(base: DictConfig, layer: Any, source: str) -> DictConfig:
    """Merges one layer into the config; errors name the source and the offending key."""
    try:
        return OmegaConf.merge(base, layer)
    except ConfigKeyError as err:
        parent, _, name = str(err.full_key).rpartition(".")
        node = OmegaConf.select(base, parent) if parent else base
        keys = [str(key) for key in node] if isinstance(node, DictConfig) else []
        close = [_SYNONYMS[name]] if _SYNONYMS.get(name) in keys else []
        close = close or difflib.get_close_matches(name, keys, n=1, cutoff=0.6)
        hint = f"did you mean {'.'.join(filter(None, (parent, close[0])))!r}? " if close else ""
        raise D3ConfigError(
            f"{source}: unknown config key {err.full_key!r}; {hint}the keys of "
            f"{parent or 'the top level'!r} are: {', '.join(keys) or 'none'}"
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


def literal(value: Any) -> Any:
    """`value` as OmegaConf will hand it back: a string's ``${`` escaped, so it is never resolved."""
    return value.replace("${", "\\${") if isinstance(value, str) else value


def _literal_layer(key: str, value: Any) -> DictConfig:
    """A one-key config that sets ``key`` (dotted) to `value` as it is, without YAML parsing."""
    layer = OmegaConf.create()
    OmegaConf.update(layer, key, literal(value), force_add=True)
    return layer


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


class RunConfig(NamedTuple):
    """A resolved config and the dataset plugin it was resolved against, passed on together."""

    cfg: DictConfig
    plugin: DatasetPlugin


def resolve_run_config(
    dataset: str | DatasetPlugin,
    arch: str,
    *,
    preset: str = "cpu",
    config_files: Iterable[str | os.PathLike] = (),
    overrides: Iterable[str] = (),
    values: Mapping[str, Any] | None = None,
) -> RunConfig:
    """The full config of a run and its plugin: schema → packaged preset → files → overrides.

    The dataset name is turned into its plugin here, once; what runs the config takes the
    plugin from the result instead of looking the name up again.

    Args:
        dataset: Dataset name, any case, or its plugin.
        arch: Architecture name, any accepted spelling.
        preset: ``"cpu"`` or ``"paper"``.
        config_files: YAML files merged in order (``--config``).
        overrides: ``section.key=value`` strings merged after the files, in order.
        values: ``{"section.key": (value, source)}`` set last, as they are: never parsed as
            YAML nor resolved, so a path holding ``" #"`` or ``"${"`` stays that path
            (``d3 train --data`` passes its file this way). The source names the value in
            errors, e.g. ``"--data"``.

    Returns:
        The validated config (struct mode: unknown keys cannot be added) and the plugin.

    Raises:
        D3ConfigError: An unknown key, a wrongly typed or out-of-range value, or a dataset
            section that contradicts the installed plugin; the message names the source.
        PluginError: Unknown dataset or architecture.
    """
    plugin = as_plugin(dataset)
    arch = canonical_arch(arch)
    cfg = build_schema(plugin, arch)
    resource = preset_file(plugin, arch, preset)
    with resources.as_file(resource) as path:
        source = f"packaged config {plugin.configs}/{arch}/{preset}.yaml"
        cfg = _merge(cfg, load_config_file(path), source)
    return RunConfig(
        apply_layers(cfg, plugin, config_files=config_files, overrides=overrides, values=values),
        plugin,
    )


def resolve_config(
    dataset: str | DatasetPlugin,
    arch: str,
    *,
    preset: str = "cpu",
    config_files: Iterable[str | os.PathLike] = (),
    overrides: Iterable[str] = (),
    values: Mapping[str, Any] | None = None,
) -> DictConfig:
    """The config alone of `resolve_run_config` (same arguments, same errors)."""
    return resolve_run_config(
        dataset, arch, preset=preset, config_files=config_files, overrides=overrides,
        values=values,
    ).cfg  # fmt: skip


def apply_layers(
    cfg: DictConfig,
    plugin: DatasetPlugin,
    *,
    config_files: Iterable[str | os.PathLike] = (),
    overrides: Iterable[str] = (),
    values: Mapping[str, Any] | None = None,
) -> DictConfig:
    """Merges user files, ``key=value`` overrides, then literal values, and validates the result.

    Raises:
        D3ConfigError: As `resolve_config`.
    """
    for file in config_files:
        cfg = _merge(cfg, load_config_file(file), f"config file {str(file)!r}")
    for item, layer in _parse_overrides(overrides):
        cfg = _merge(cfg, layer, f"override {item!r}")
    for key, (value, source) in (values or {}).items():
        cfg = _merge(cfg, _literal_layer(key, value), source)
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
    # stored plain data is resolved text: a "${" in it is literal, never resolved again
    # (docs/checkpoint-formats.md#stored-configs)
    stored = OmegaConf.create(escape_interpolations(dict(plain)))
    cfg = _merge(build_schema(plugin, arch), stored, "the stored config")
    check_config(cfg, plugin)
    return cfg


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


def save_config(cfg: DictConfig, path: str | os.PathLike) -> Path:
    """Writes a config as YAML atomically (a crash leaves the old file or none, never half)."""
    with atomic_write(path) as out:
        out.write(OmegaConf.to_yaml(OmegaConf.create(to_plain(cfg))))
    return Path(path)
