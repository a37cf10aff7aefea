"""d3-core: conditional discrete diffusion (D3 / SEDD) for regulatory DNA.

The public API, imported on first use so that ``import d3_core`` stays light (no torch):

- `load_model_local(path, device)` → ``(model, graph, noise)``: any checkpoint or run directory.
- `load_checkpoint(path)`: the same, with the config, EMA and provenance (`LoadedCheckpoint`).
- `create_lightning_module(cfg, dataset_name)`: the dataset's LightningModule for a config.
- `get_model_class_for_dataset(dataset, arch)`: the dataset's score-model class.
- `load_dataset_plugin(name)` and `DatasetPlugin`: the dataset plugins and their base class.
- `sample(score_fn, labels, length=..., graph=..., noise=...)`: the samplers.
- `sample_sequences(loaded, labels)`: sequences from a loaded checkpoint, as ``d3 sample``.
- `load_oracle(path, spec)`: an oracle checkpoint, strictly by name.
- `evaluate_run(dataset=..., out=..., ...)`: ``d3 evaluate`` as a function. (It is not
  called ``evaluate`` here: that name is the submodule ``d3_core.evaluation.run``.)
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.6.1"

# name -> (module, attribute in it)
_EXPORTS = {
    "load_model_local": ("d3_core.checkpoints.load", "load_model_local"),
    "load_checkpoint": ("d3_core.checkpoints.load", "load_checkpoint"),
    "create_lightning_module": ("d3_core.training.run", "create_lightning_module"),
    "get_model_class_for_dataset": ("d3_core.registry", "get_model_class_for_dataset"),
    "load_dataset_plugin": ("d3_core.registry", "load_dataset_plugin"),
    "DatasetPlugin": ("d3_core.registry", "DatasetPlugin"),
    "sample": ("d3_core.diffusion.sampling", "sample"),
    "sample_sequences": ("d3_core.generation.sequences", "sample_sequences"),
    "load_oracle": ("d3_core.oracles", "load_oracle"),
    "evaluate": ("d3_core.evaluation.run", "evaluate_run"),
    "evaluate_run": ("d3_core.evaluation.run", "evaluate_run"),
    "EvaluateRequest": ("d3_core.evaluation.request", "EvaluateRequest"),
    "resolve_run_config": ("d3_core.config", "resolve_run_config"),
    "RunConfig": ("d3_core.config", "RunConfig"),
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'd3_core' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
