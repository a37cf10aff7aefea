#!/usr/bin/env python3
"""The original design's evaluation command, kept working: a thin wrapper over ``d3 evaluate``.

    python scripts/run_evaluate_unified.py --dataset deepstarr --arch Tran --model_path RUN_DIR \\
        --oracle_path oracle.ckpt

Options may be spelt with underscores, as the original script spelt them (``--model_path``,
``--oracle_path``, ``--data_path``, ``--num_samples``); each is passed to ``d3 evaluate`` (see
``d3 evaluate --help``). ``--out`` defaults to ``<model_path>/eval`` (or ``eval`` for samples).
"""

import sys
from pathlib import Path

from d3_core.cli.main import main

RENAMED = {"--oracle_path": "--oracle", "--data_path": "--data", "--oracle-path": "--oracle",
           "--data-path": "--data"}  # fmt: skip


def translate(argv: list[str]) -> list[str]:
    """``d3 evaluate`` arguments from the original script's."""
    out = []
    for arg in argv:
        name, eq, value = arg.partition("=")
        if name.startswith("--"):
            name = RENAMED.get(name, RENAMED.get(name.replace("_", "-"), name.replace("_", "-")))
        out.append(name + eq + value)
    if "--out" not in out and not any(a.startswith("--out=") for a in out):
        model = next((out[i + 1] for i, a in enumerate(out[:-1]) if a == "--model-path"), None)
        folder = Path(model) if model and Path(model).is_dir() else Path(model or ".").parent
        out += ["--out", str(folder / "eval")]
    return ["evaluate", *out]


if __name__ == "__main__":
    sys.exit(main(translate(sys.argv[1:])))
