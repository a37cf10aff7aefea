"""The directories d3 writes into: one writer at a time, only d3's files, nothing left by a failed start.

`claim_output_dir` is how ``d3 train``, ``d3 sample`` and the other writing commands take their
``--out``:

* it refuses a path that is a file, and a directory holding files d3 did not write there (a
  run's or a sample set's own names are the caller's `owned` names), so that outputs never land
  among a user's unrelated files;
* it holds an exclusive lock (``.d3.lock``, an ``flock`` the kernel releases when the process
  dies, even by ``kill -9``) for as long as the block runs, so a second writer is refused instead
  of interleaving its files with the first's;
* when the block fails, a directory it created is removed again unless `keep_on_error` says
  something in it is worth keeping (a checkpoint to resume from), so a failed start leaves no
  empty run directory behind.

`disk_error` turns the operating system's "no space", "read-only" and "permission" errors into a
`D3OutputError` that names the path and the fix.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from pathlib import Path

from d3_core.errors import D3Error

try:  # POSIX; on Windows the lock is skipped (documented in claim_output_dir)
    import fcntl
except ImportError:  # pragma: no cover - exercised only on Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_NAME", "D3OutputError", "OutputBusyError", "claim_output_dir", "disk_error"]

LOCK_NAME = ".d3.lock"
"""The lock file inside an output directory while a d3 process writes there."""

_DISK_ERRORS = {
    errno.ENOSPC: "the disk is full; free some space or choose another --out",
    errno.EDQUOT: "the disk quota is used up; free some space or choose another --out",
    errno.EROFS: "the file system is read-only; choose another --out",
    errno.EACCES: "permission denied; choose a directory you can write to",
    errno.EPERM: "permission denied; choose a directory you can write to",
}


class D3OutputError(D3Error, OSError):
    """An output path cannot be used or written."""


class OutputBusyError(D3OutputError):
    """Another process holds the output directory's lock."""


def disk_error(err: OSError, path: str | os.PathLike | None = None) -> D3OutputError | None:
    """A one-line `D3OutputError` for a full, read-only or forbidden disk; None for other errors.

    Args:
        err: The error the write raised.
        path: The file or directory being written (default: the error's own filename).
    """
    fix = _DISK_ERRORS.get(err.errno)
    if fix is None:
        return None
    where = path if path is not None else (err.filename or "the output")
    return D3OutputError(f"cannot write {str(where)!r}: {fix}")


def _foreign_entries(path: Path, owned: Collection[str]) -> list[str]:
    """The entries of `path` that are neither d3's lock nor one of the `owned` names."""
    return sorted(
        entry.name
        for entry in path.iterdir()
        if entry.name != LOCK_NAME and entry.name not in owned
    )


def _lock(path: Path, what: str):
    """Takes ``path/.d3.lock`` exclusively, or raises `OutputBusyError`; returns the open file."""
    lock_path = path / LOCK_NAME
    while True:
        handle = open(lock_path, "a+", encoding="utf-8")  # noqa: SIM115 (held past this function)
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise OutputBusyError(
                f"another d3 process (pid {holder}) is writing {what} into {path}; wait for it "
                f"to finish or choose another --out"
            ) from None
        # The holder before us may have removed the file between our open and our lock: then
        # we hold a lock nobody else can see, and must take the new file's instead.
        try:
            same = os.stat(lock_path).st_ino == os.fstat(handle.fileno()).st_ino
        except FileNotFoundError:
            same = False
        if same:
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            return handle
        handle.close()


@contextmanager
def claim_output_dir(
    path: str | os.PathLike,
    *,
    owned: Collection[str],
    what: str,
    keep_on_error: Callable[[Path], bool] | None = None,
    lock: bool = True,
) -> Iterator[Path]:
    """Checks, creates and locks an output directory for the duration of the block.

    Args:
        path: The directory (``--out``).
        owned: The names d3 writes directly inside it; any other entry makes it "not ours".
        what: What is written, in messages ("a run", "samples").
        keep_on_error: Given the directory after the block failed, whether to keep it; a
            directory this call created is otherwise removed (one that existed is never removed).
        lock: Take the lock (a process that a launcher started beside the one holding it passes
            False). On a system without ``fcntl`` (Windows) there is no lock.

    Yields:
        The directory, resolved.

    Raises:
        D3OutputError: `path` is a file, holds entries d3 did not write, or cannot be created.
        OutputBusyError: Another process is writing into it.
    """
    path = Path(path).resolve()
    if path.exists() and not path.is_dir():
        raise D3OutputError(f"--out {path} is a file; give a directory for {what}")
    created = not path.exists()
    if not created:
        foreign = _foreign_entries(path, owned)
        if foreign:
            listed = ", ".join(foreign[:3]) + (
                f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
            )
            raise D3OutputError(
                f"--out {path} holds files d3 did not write ({listed}); choose a new or empty "
                f"directory for {what}"
            )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise disk_error(err, path) or D3OutputError(
            f"cannot create {path}: {err.strerror}"
        ) from None
    handle = None
    try:
        if lock and fcntl is not None:
            handle = _lock(path, what)
        yield path
    except BaseException:
        if created and not (keep_on_error is not None and keep_on_error(path)):
            shutil.rmtree(path, ignore_errors=True)
        raise
    finally:
        if handle is not None:
            (path / LOCK_NAME).unlink(missing_ok=True)
            handle.close()
