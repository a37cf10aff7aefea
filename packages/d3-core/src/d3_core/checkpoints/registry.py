"""The checkpoint formats d3 reads, in the order the loader asks them (`FORMATS`).

`load_checkpoint` opens a file once (`d3_core.checkpoints.safe_load`) and gives its payload to
`format_of`: the first format whose ``detect`` says yes reads it; if none does, the error names
the file, what it holds and what each format looks for. A run directory is asked of the formats
in the same order (`d3_core.checkpoints.locate.locate_checkpoint`).

To add a format: write a module beside these that ends with a
`d3_core.checkpoints.interface.CheckpointFormat` named ``FORMAT``, and add it to `FORMATS`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from d3_core.checkpoints import converted, native, packaged, research
from d3_core.checkpoints.interface import CheckpointFormat
from d3_core.errors import CheckpointError

__all__ = ["FORMATS", "FORMAT_NAMES", "detected_formats", "format_named", "format_of"]

FORMATS: tuple[CheckpointFormat, ...] = (
    native.FORMAT,
    research.FORMAT,
    packaged.FORMAT,
    converted.FORMAT,
)
"""Every format d3 reads, in the order they are asked."""

FORMAT_NAMES = tuple(fmt.name for fmt in FORMATS)
"""Their names: ``("d3", "research", "packaged", "converted")``."""


def detected_formats(payload: Any) -> list[CheckpointFormat]:
    """Every format that detects a payload, in `FORMATS` order (one, for any file d3 writes or
    reads)."""
    return [fmt for fmt in FORMATS if fmt.detect(payload)]


def format_named(name: str) -> CheckpointFormat:
    """The format of a name in `FORMAT_NAMES`.

    Raises:
        CheckpointError: No format has that name (the message lists them).
    """
    for fmt in FORMATS:
        if fmt.name == name:
            return fmt
    names = ", ".join(fmt.name for fmt in FORMATS)
    raise CheckpointError(f"no checkpoint format is named {name!r}; the formats are {names}")


def format_of(payload: Any, path: Path) -> CheckpointFormat:
    """The first format in `FORMATS` that detects a payload.

    Raises:
        CheckpointError: None does; the message names the file, its top-level entries and what
            each format looks for.
    """
    for fmt in FORMATS:
        if fmt.detect(payload):
            return fmt
    keys = sorted(map(str, payload)) if isinstance(payload, dict) else type(payload).__name__
    expected = list(dict.fromkeys(fmt.expects for fmt in FORMATS))  # shared ones once
    listed = ", ".join(expected[:-1]) + (" or " if len(expected) > 1 else "") + expected[-1]
    raise CheckpointError(
        f"{path} is not a checkpoint d3 reads (top-level entries: {keys}); expected {listed}"
    )
