"""Sets of output files that are replaced together: a sample set, a design set, a report.

``d3 sample``, ``d3 design`` and ``d3 evaluate`` each write several files that only make sense
together (sequences, their labels, their provenance). `replace_set` writes a new set into a
staging directory inside ``--out`` and swaps it in only once every file is complete, so that a
full disk, a read-only directory or any other failure half-way leaves the previous set as it
was and no partial or temporary file behind. `claim` is `d3_core.outputs.claim_output_dir`
(``--out`` must be new, empty or d3's own; one writer at a time) with these staging names
counted as d3's and the disk's errors as one line.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path

from d3_core.errors import D3Error
from d3_core.outputs import LOCK_NAME, D3OutputError, claim_output_dir, disk_error

__all__ = ["SCRATCH_NAMES", "NamePatterns", "claim", "named", "replace_set"]

STAGING = ".d3-staging"
"""Where a new set is written before it replaces the old one."""
PREVIOUS = ".d3-previous"
"""Where the old set waits while the new one is moved in."""
SCRATCH_NAMES = (STAGING, PREVIOUS)
"""The names `replace_set` uses inside an output directory (never left there)."""


class NamePatterns(Collection[str]):
    """Names given as shell patterns (``profiles_*.png``): ``name in patterns`` matches them."""

    def __init__(self, *patterns: str) -> None:
        self.patterns = tuple(patterns)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and any(fnmatch.fnmatchcase(name, p) for p in self.patterns)

    def __iter__(self) -> Iterator[str]:
        return iter(self.patterns)

    def __len__(self) -> int:
        return len(self.patterns)

    def __repr__(self) -> str:
        return f"NamePatterns{self.patterns}"


def _one_line(err: OSError, out: Path, stage: Path | None = None) -> D3OutputError | None:
    """`disk_error` naming the file in `out` (not its staged copy, nor the lock)."""
    where = Path(err.filename) if err.filename else out
    if stage is not None and where.is_relative_to(stage):
        where = out / where.relative_to(stage)
    if where.name in (LOCK_NAME, *SCRATCH_NAMES):
        where = out
    temporary = re.fullmatch(r"\.(.+)\.[^.]+\.tmp", where.name)  # d3_core.io.atomic_path's
    if temporary:
        where = where.with_name(temporary.group(1))
    return disk_error(err, where)


@contextmanager
def named(path: Path) -> Iterator[Path]:
    """Yields `path`; an OSError raised without a file name (``write()`` on a full disk) gets it."""
    try:
        yield path
    except OSError as err:
        if err.filename is None and not isinstance(err, D3Error):
            raise OSError(err.errno, err.strerror, str(path)) from err
        raise


@contextmanager
def claim(out: str | os.PathLike, *, owned: Collection[str], what: str) -> Iterator[Path]:
    """`claim_output_dir` for a set of `owned` names plus the staging names `replace_set` uses.

    A path that cannot be created or locked (read-only, full, forbidden) is one
    `D3OutputError` line naming ``--out``.
    """
    names = owned if isinstance(owned, NamePatterns) else (*owned,)
    names = NamePatterns(*names, *SCRATCH_NAMES)
    try:
        with claim_output_dir(out, owned=names, what=what) as path:
            yield path
    except OSError as err:
        if isinstance(err, D3Error):
            raise
        raise (_one_line(err, Path(out).resolve()) or err) from None


def _clear(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)


@contextmanager
def replace_set(out: str | os.PathLike, *, names: Collection[str]) -> Iterator[Path]:
    """Yields an empty staging directory; what the block writes there replaces `names` in `out`.

    On success every entry of `out` that `names` holds is moved aside, every staged entry moved
    in (renames in one file system: no space is needed), and the old entries deleted. If the
    block or a move fails, the staged files are deleted, the old set is put back, and a full,
    read-only or forbidden disk is one `D3OutputError` line naming the file in `out`. A staging
    directory left by a killed process is removed first. Concurrent writers must be excluded by
    the caller (`claim`).

    Args:
        out: The output directory (created if missing).
        names: The set's names (or `NamePatterns`) directly inside `out`.

    Yields:
        The staging directory, ``out/.d3-staging``.
    """
    out = Path(out)
    stage, previous = out / STAGING, out / PREVIOUS
    try:
        out.mkdir(parents=True, exist_ok=True)
        _clear(stage)
        _clear(previous)
        stage.mkdir()
    except OSError as err:
        raise (_one_line(err, out) or err) from None
    try:
        yield stage
        _swap(out, stage, previous, names)
    except OSError as err:
        if isinstance(err, D3Error):
            raise
        raise (_one_line(err, out, stage) or err) from None
    finally:
        _clear(stage)
        _clear(previous)


def _swap(out: Path, stage: Path, previous: Path, names: Collection[str]) -> None:
    """Moves the old set into `previous` and the staged one into `out`; undoes it on failure."""
    old = sorted(e.name for e in out.iterdir() if e.name in names and e.name not in SCRATCH_NAMES)
    new = sorted(e.name for e in stage.iterdir())
    previous.mkdir()
    moved_old: list[str] = []
    moved_new: list[str] = []
    try:
        for name in old:
            os.replace(out / name, previous / name)
            moved_old.append(name)
        for name in new:
            os.replace(stage / name, out / name)
            moved_new.append(name)
    except BaseException:
        for name in moved_new:
            _clear(out / name)
        for name in moved_old:
            os.replace(previous / name, out / name)
        raise
