"""File writing that never leaves half a file behind: write beside the target, then rename."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

__all__ = ["atomic_path", "atomic_write", "file_sha256", "torch_save"]


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` that replaces it when the block ends without error.

    Args:
        path: The final file. Its folder is created if needed.

    Yields:
        Where to write; on an exception it is deleted and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    # mkstemp makes the file private (0600); give it the mode a plain open() would.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w") -> Iterator[IO]:
    """Opens a temporary file beside ``path`` that replaces it when the block ends without error.

    Args:
        path: The final file.
        mode: ``"w"`` for text (UTF-8) or ``"wb"`` for bytes.
    """
    with atomic_path(path) as tmp:
        encoding = None if "b" in mode else "utf-8"
        with open(tmp, mode, encoding=encoding) as out:
            yield out


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


FULL_DISK_BYTES = 1 << 20
"""Free space under which a failed write is taken for a full disk."""


def torch_save(obj: object, tmp: str | os.PathLike, *, target: str | os.PathLike) -> None:
    """``torch.save(obj, tmp)``, where a full disk is an ``OSError(ENOSPC)`` naming `target`.

    torch's zip writer reports a full disk as a bare RuntimeError ("unexpected pos ..."), with no
    errno and no file name. The space left is measured while the partial file still fills it, so
    the error is one `d3_core.outputs.disk_error` line naming the checkpoint, not a traceback.

    Args:
        obj: What to save.
        tmp: The temporary file being written (`atomic_path`).
        target: The file it will become, for the message.
    """
    import torch

    try:
        torch.save(obj, tmp)
    except RuntimeError as err:
        try:
            free = shutil.disk_usage(Path(tmp).parent).free
        except OSError:
            raise err from None
        if free >= FULL_DISK_BYTES:
            raise
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target)) from err
