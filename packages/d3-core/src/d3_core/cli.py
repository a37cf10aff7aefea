"""The ``d3`` command line; each subcommand imports what it needs only when it runs."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import textwrap
from collections.abc import Sequence

from d3_core import __version__
from d3_core.errors import D3Error, PluginError

_TABLE_COLUMNS = ("name", "package", "version", "length", "labels", "status")


def _dataset_rows(entry_points: dict) -> tuple[list[dict], list[str]]:
    """Loads each listed plugin; returns one record per plugin and the load errors met."""
    from d3_core.registry import load_dataset_plugin

    records, errors = [], []
    for name, entry_point in entry_points.items():
        try:
            plugin = load_dataset_plugin(name)
        except PluginError as err:
            dist = getattr(entry_point, "dist", None)
            records.append({"name": name, "distribution": dist and dist.name, "error": str(err)})
            errors.append(str(err))
            continue
        records.append(dataclasses.asdict(plugin))
    return records, errors


def _table_row(record: dict) -> tuple[str, ...]:
    """One line of the ``d3 datasets`` table for a record of `_dataset_rows`."""
    if "error" in record:
        return (record["name"], record["distribution"] or "?", "-", "-", "-", "broken")
    labels = f"{', '.join(record['label_names'])} ({record['label_mode'].replace('_', ' ')})"
    status = "ready" if record["ready"] else "placeholder"
    return (
        record["name"],
        record["distribution"],
        record["version"],
        str(record["sequence_length"]),
        labels,
        status,
    )


def _print_table(rows: list[tuple[str, ...]]) -> None:
    """Prints rows under `_TABLE_COLUMNS`, each column as wide as its widest cell."""
    table = [_TABLE_COLUMNS, *rows]
    widths = [max(map(len, column)) for column in zip(*table, strict=True)]
    for row in table:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
        print("  ".join(cells).rstrip())


def _run_datasets(args: argparse.Namespace, forwarded: list[str]) -> int:
    """``d3 datasets``: lists installed dataset plugins; exit 1 if one fails to load."""
    from d3_core.registry import KNOWN_DISTRIBUTIONS, list_datasets

    records, errors = _dataset_rows(list_datasets())
    if args.json:
        print(json.dumps(records, indent=2))
    elif records:
        _print_table([_table_row(record) for record in records])
    else:
        packages = ", ".join(KNOWN_DISTRIBUTIONS.values())
        print(f"no dataset plugins installed; install one with pip, e.g. one of: {packages}")
    for message in errors:
        print(f"d3: error: {message}", file=sys.stderr)
    return 1 if errors else 0


def _run_demo(args: argparse.Namespace, forwarded: list[str]) -> int:
    """``d3 demo``: for now, says what the demo will do and what is installed."""
    from d3_core.registry import load_dataset_plugin

    plugin = load_dataset_plugin(args.dataset)
    state = "ready" if plugin.ready else "an empty placeholder"
    message = (
        f"d3 demo: not yet. The demo (make synthetic {plugin.name} data -> train a CPU-sized "
        f"model -> sample sequences -> score them) arrives with the training release of "
        f"d3-core; this release has the engine only, with no training loop to run. "
        f"Installed: d3-core {__version__}, {plugin.distribution} {plugin.version} ({state})."
    )
    print(textwrap.fill(message, width=100))
    return 0


def _run_bench(args: argparse.Namespace, forwarded: list[str]) -> int:
    """``d3 bench``: hands every argument after ``bench`` to `d3_core.bench.main`."""
    from d3_core.bench import main as bench_main

    return bench_main(forwarded) or 0


def _build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``d3`` and its subcommands."""
    parser = argparse.ArgumentParser(
        prog="d3",
        description="Conditional discrete diffusion (D3) for regulatory DNA.",
        epilog="Set D3_DEBUG=1 to see the full traceback of an error.",
    )
    parser.add_argument("--version", action="version", version=f"d3 (d3-core {__version__})")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    datasets = commands.add_parser("datasets", help="list the installed dataset plugins")
    datasets.add_argument("--json", action="store_true", help="print JSON instead of a table")
    datasets.set_defaults(run=_run_datasets, forwards=False)

    demo = commands.add_parser("demo", help="the end-to-end demo (arrives with training)")
    demo.add_argument(
        "--dataset", default="deepstarr", help="dataset plugin name (default: deepstarr)"
    )
    demo.set_defaults(run=_run_demo, forwards=False)

    # No options of its own (not even -h): everything after `bench` belongs to d3_core.bench.
    bench = commands.add_parser(
        "bench", add_help=False, help="run the benchmarks (see `d3 bench --help`)"
    )
    bench.set_defaults(run=_run_bench, forwards=True)
    return parser


def _debug_requested() -> bool:
    """Whether D3_DEBUG asks for full tracebacks."""
    return os.environ.get("D3_DEBUG", "") not in ("", "0")


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ``d3`` with ``argv`` (default: ``sys.argv[1:]``).

    Args:
        argv: Command-line arguments without the program name.

    Returns:
        The exit status: 0 on success, 1 when a d3 error was reported. Usage errors exit with
        status 2 through `SystemExit`, as argparse does.
    """
    parser = _build_parser()
    args, forwarded = parser.parse_known_args(argv)
    if forwarded and not args.forwards:
        parser.error(f"unrecognized arguments: {' '.join(forwarded)}")
    try:
        return args.run(args, forwarded)
    except D3Error as err:
        if _debug_requested():
            raise
        print(f"d3: error: {err}", file=sys.stderr)
        return 1
