"""Run configuration: schema → dataset package preset → user files → ``key=value`` overrides.

A config is an OmegaConf tree with six sections: ``dataset``, ``model``, ``noise``, ``graph``,
``training``, ``sampling`` and ``trainer``. Every key is declared by the schema below (the
``model`` section by the architecture's config dataclass), so a misspelt key is an error that
names its source, never a silently ignored setting. The resolved tree is stored as plain data in
the run directory and in every checkpoint.
"""

from d3_core.config.checks import check_config, model_sizes
from d3_core.config.resolve import (
    RunConfig,
    apply_layers,
    config_from_plain,
    load_config_file,
    preset_file,
    resolve_config,
    resolve_precision,
    resolve_run_config,
    save_config,
)
from d3_core.config.schema import PRECISIONS, PRESETS, build_schema, to_plain

__all__ = [
    "PRECISIONS",
    "PRESETS",
    "RunConfig",
    "apply_layers",
    "build_schema",
    "check_config",
    "config_from_plain",
    "load_config_file",
    "model_sizes",
    "preset_file",
    "resolve_config",
    "resolve_precision",
    "resolve_run_config",
    "save_config",
    "to_plain",
]
