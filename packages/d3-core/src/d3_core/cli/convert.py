"""``d3 convert``: d3's own checkpoint format from any checkpoint a user has, or a tree of them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from d3_core.cli.options import add_checkpoint_options, say
from d3_core.errors import D3InputError

__all__ = ["add_parser", "run"]


def add_parser(commands) -> argparse.ArgumentParser:
    """Registers ``d3 convert``."""
    convert = commands.add_parser(
        "convert",
        help="write d3's checkpoint format from any checkpoint",
        description="Convert a research checkpoint (.pth or run directory), a d3-dna .ckpt or "
        "a converted Lightning file into d3's format, which loads safely (weights_only). Given "
        "a directory, converts every checkpoint found under it and reports each file.",
    )
    convert.add_argument("source", metavar="SRC|DIR", help="a checkpoint file or a directory")
    convert.add_argument(
        "--out",
        help="for a file: the file to write (default: <name>.d3.ckpt beside it); for a "
        "directory: where to mirror its tree (default: beside each checkpoint)",
    )
    add_checkpoint_options(convert)
    convert.add_argument("--force", action="store_true", help="overwrite converted files")
    convert.add_argument("--json", action="store_true", help="print a JSON report")
    return convert


def _converted_name(source: Path) -> str:
    return f"{source.stem.removesuffix('.d3')}.d3.ckpt"


def _convert_one(
    source: Path, out: Path, args: argparse.Namespace, *, single: bool
) -> dict[str, Any]:
    """Converts one file; returns its report record (never raises a d3 error)."""
    from d3_core.checkpoints.load import read_contents, write_checkpoint
    from d3_core.errors import CheckpointError, D3Error

    record: dict[str, Any] = {"source": str(source)}
    try:
        contents = read_contents(
            source, trusted=args.trust_checkpoint, dataset=args.dataset, arch=args.arch
        )
    except CheckpointError as err:
        not_ours = "is not a checkpoint d3 reads" in str(err)
        return record | {"status": "skipped" if not_ours else "failed", "reason": str(err)}
    except D3Error as err:
        return record | {"status": "failed", "reason": str(err)}
    record |= {
        "format": contents.format,
        "dataset": contents.plugin.name,
        "architecture": contents.architecture,
        "step": contents.step,
        "notes": contents.notes,
    }
    if contents.format == "d3":
        return record | {"status": "skipped", "reason": "already in d3's format"}
    if out.exists() and not args.force:
        # Converting a directory again skips what is done; one file asked for is an error.
        status = "failed" if single else "skipped"
        return record | {"status": status, "reason": f"{out} exists; pass --force to overwrite it"}
    write_checkpoint(contents, out)
    return record | {"status": "converted", "out": str(out)}


def run(args: argparse.Namespace) -> int:
    """``d3 convert``: d3's format from one checkpoint, or from every one under a directory."""
    from d3_core.checkpoints.load import find_checkpoints

    source = Path(args.source)
    if not source.exists():
        raise D3InputError(f"{source} does not exist")
    if source.is_file():
        out = Path(args.out) if args.out else source.with_name(_converted_name(source))
        records = [_convert_one(source, out, args, single=True)]
    else:
        found = find_checkpoints(source)
        if not found:
            raise D3InputError(f"no PyTorch files under {source}; nothing to convert")
        base = Path(args.out) if args.out else None
        records = []
        for path in found:
            folder = base / path.parent.relative_to(source) if base else path.parent
            records.append(_convert_one(path, folder / _converted_name(path), args, single=False))
    if args.json:
        print(json.dumps(records, indent=2))
    else:
        for record in records:
            status = record["status"]
            detail = record.get("out") or record.get("reason")
            what = (
                f" ({record['format']}, {record['dataset']}, "
                f"{record['architecture']}, step {record['step']})"
                if "format" in record
                else ""
            )
            say(f"{status:9} {record['source']}{what}: {detail}")
    counts = {s: sum(r["status"] == s for r in records) for s in ("converted", "skipped", "failed")}
    if not args.json:
        say(", ".join(f"{n} {s}" for s, n in counts.items()))
    if len(records) == 1 and counts["failed"]:
        raise D3InputError(records[0]["reason"])
    return 1 if counts["failed"] else 0
