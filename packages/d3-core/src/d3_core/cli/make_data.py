"""``d3 make-data``: a dataset's synthetic data, with its planted rule, in its real file format."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from d3_core.cli.options import say
from d3_core.errors import D3InputError

__all__ = ["add_parser", "run"]


def add_parser(commands) -> argparse.ArgumentParser:
    """Registers ``d3 make-data``."""
    make = commands.add_parser(
        "make-data",
        help="write a dataset's synthetic data in its real file format",
        description="Synthetic data with a planted label-sequence rule, in the format the "
        "dataset's loader reads.",
    )
    make.add_argument("--dataset", required=True, help="dataset plugin name")
    make.add_argument("--out", required=True, help="file to write")
    make.add_argument(
        "--size", choices=("tiny", "small", "full"), default="small", help="default: small"
    )
    make.add_argument("--seed", type=int, default=0, help="default: 0")
    make.add_argument("--force", action="store_true", help="overwrite --out")
    return make


def run(args: argparse.Namespace) -> int:
    """Writes the file and says where, how large and how fast."""
    from d3_core.registry import load_dataset_plugin

    plugin = load_dataset_plugin(args.dataset)
    out = Path(args.out)
    if out.is_dir():
        raise D3InputError(
            f"--out {out} is a directory; name the file to write, e.g. "
            f"--out {out / (plugin.name + plugin.data_suffix)}"
        )
    if out.exists() and not args.force:
        raise D3InputError(f"{out} already exists; choose another --out or pass --force")
    writer = plugin.load("synthetic_data")
    started = time.perf_counter()
    writer(out, seed=args.seed, size=args.size)
    megabytes = out.stat().st_size / 2**20
    say(
        f"wrote synthetic {plugin.name} data ({args.size}, seed {args.seed}) to {out.resolve()} "
        f"({megabytes:.1f} MiB, {time.perf_counter() - started:.1f} s)"
    )
    return 0
