"""``d3 bench``: every argument after ``bench`` goes to `d3_core.bench.main`."""

from __future__ import annotations

import argparse

__all__ = ["FORWARDS", "add_parser", "run"]

FORWARDS = True
"""The command takes no options of its own (not even -h): unknown arguments are its own."""


def add_parser(commands) -> argparse.ArgumentParser:
    """Registers ``d3 bench``."""
    return commands.add_parser(
        "bench", add_help=False, help="run the benchmarks (see `d3 bench --help`)"
    )


def run(args: argparse.Namespace) -> int:
    """Runs the benchmarks with the forwarded arguments."""
    from d3_core.bench import main as bench_main

    return bench_main(args.forwarded) or 0
