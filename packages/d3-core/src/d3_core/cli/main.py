"""The ``d3`` command line: one parser, one dispatch.

Each command is a module of `d3_core.cli` with ``add_parser(commands)`` and ``run(args) -> int``
(and ``FORWARDS = True`` when it takes the arguments it does not declare, as ``bench`` does).
`COMMANDS` lists them in the order ``d3 --help`` shows. Command modules import only argparse at
the top; what a command needs (torch, Lightning) is imported when it runs.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from d3_core import __version__
from d3_core.errors import D3Error
from d3_core.outputs import disk_error

__all__ = ["COMMANDS", "build_parser", "main"]

COMMANDS = (
    "datasets",
    "train",
    "sample",
    "design",
    "convert",
    "oracle",
    "evaluate",
    "make_data",
    "demo",
    "bench",
)
"""The command modules of `d3_core.cli`, in help order."""


class D3ArgumentParser(argparse.ArgumentParser):
    """An argparse parser whose usage errors end in one ``d3: error:`` line, as d3's own do."""

    def error(self, message: str):
        self.print_usage(sys.stderr)
        command = self.prog.partition(" ")[2]
        see = f" (see d3 {command} --help)" if command else ""
        self.exit(2, f"d3: error: {message}{see}\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``d3`` and its subcommands."""
    parser = D3ArgumentParser(
        prog="d3",
        description="Conditional discrete diffusion (D3) for regulatory DNA.",
        epilog="Set D3_DEBUG=1 to see the full traceback of an error.",
    )
    parser.add_argument("--version", action="version", version=f"d3 (d3-core {__version__})")
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=D3ArgumentParser
    )
    for name in COMMANDS:
        module = importlib.import_module(f"d3_core.cli.{name}")
        module.add_parser(commands).set_defaults(
            run=module.run, forwards=getattr(module, "FORWARDS", False)
        )
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
    parser = build_parser()
    args, forwarded = parser.parse_known_args(argv)
    forwarded = _gather_overrides(args, forwarded)
    if forwarded and not args.forwards:
        parser.error(f"unrecognized arguments: {' '.join(forwarded)}")
    args.forwarded = forwarded
    try:
        return args.run(args)
    except Exception as err:
        if _debug_requested():
            raise
        if isinstance(err, OSError) and not isinstance(err, D3Error):
            err = disk_error(err) or err  # a full or read-only disk, wherever it was met
        if not _is_user_error(err):
            raise
        message = " ".join(str(err).split())  # one line, whatever the source formatted
        print(f"d3: error: {message}", file=sys.stderr)
        return 1


def _gather_overrides(args: argparse.Namespace, rest: list[str]) -> list[str]:
    """Moves the ``key=value`` overrides argparse left over into ``args.overrides``.

    argparse takes a command's positional overrides from one run of arguments only, so in
    ``d3 train a=1 --data F b=2`` it leaves ``b=2`` over. Overrides may stand on either side of
    options, in any order; what is left is returned (options nobody declared).
    """
    if not isinstance(getattr(args, "overrides", None), list):
        return rest
    taken = [item for item in rest if "=" in item and not item.startswith("-")]
    args.overrides += taken
    return [item for item in rest if item not in taken]


def _is_user_error(err: Exception) -> bool:
    """Our errors, and Lightning's complaints about a configuration (e.g. --gpus without GPUs)."""
    if isinstance(err, D3Error):
        return True
    return type(err).__name__ == "MisconfigurationException" and "lightning" in type(err).__module__
