"""``d3 datasets``: the installed dataset plugins, as a table or JSON."""

from __future__ import annotations

import argparse
import json
import sys

from d3_core.errors import PluginError

__all__ = ["add_parser", "run"]


def add_parser(commands) -> argparse.ArgumentParser:
    """Registers ``d3 datasets``."""
    datasets = commands.add_parser("datasets", help="list the installed dataset plugins")
    datasets.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return datasets


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
        records.append(_record(plugin))
    return records, errors


def _record(plugin) -> dict:
    """What ``d3 datasets --json`` reports about a plugin."""
    return {
        "name": plugin.name,
        "distribution": plugin.distribution,
        "version": plugin.version,
        "sequence_length": plugin.sequence_length,
        "label_names": list(plugin.label_names),
        "label_mode": plugin.label_mode,
        "architectures": sorted(plugin.score_models),
        "ready": plugin.ready,
        "description": plugin.description,
    }


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


def run(args: argparse.Namespace) -> int:
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
