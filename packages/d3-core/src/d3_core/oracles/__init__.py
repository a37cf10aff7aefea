"""Oracles: the activity predictors that score designed sequences (docs/oracles.md).

A dataset package declares its oracle as an `OracleSpec` (`d3_core.oracles.spec`: the network,
its output names, the key prefixes of published checkpoints, the published training recipe).
`d3_core.oracles.model` loads published checkpoints strictly by name (`load_oracle`) and runs
one in batches on token arrays (`Oracle`); `d3_core.oracles.training` trains one on a data file
with the recipe (`train_oracle`, ``d3 oracle train``). The names of all three are here too.
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> submodule; imported on first use, so declaring an oracle imports neither torch nor
# Lightning
_EXPORTS = {
    "ORACLE_FORMAT": "spec",
    "OracleRecipe": "spec",
    "OracleSpec": "spec",
    "recipe_with": "spec",
    "Oracle": "model",
    "Rescaled": "model",
    "load_oracle": "model",
    "tokens_to_input": "model",
    "OracleTraining": "training",
    "train_oracle": "training",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'd3_core.oracles' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(f"d3_core.oracles.{module}"), name)
    globals()[name] = value
    return value
