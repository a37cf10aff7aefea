"""Opening a PyTorch file safely: ``torch.load(weights_only=True)`` unless the caller trusts it.

`safe_load` is the one place d3 calls ``torch.load`` on a file a user hands it (checkpoints of
every format, oracle weights, Sei). The weights-only unpickler cannot run code; a file that stores
Python objects (or is in torch's legacy ``.tar`` format) is read with a full unpickle only when
the caller passes ``trusted=True``, because unpickling can run code hidden in the file. Every
failure is a `CheckpointError` that names the file and says why.
"""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from d3_core.errors import CheckpointError

__all__ = [
    "TRUST_HINT",
    "SafeLoadError",
    "UnreadableFileError",
    "UntrustedFileError",
    "first_line",
    "safe_load",
]

TRUST_HINT = "Pass trusted=True only if you trust where the file came from"
"""The advice `safe_load` gives with a refusal, unless its caller gives its own."""

_MMAP_REFUSED = "mmap can only be used"
MMAP_NOTE = "not in torch's zipfile format, so read whole (mmap=False)"
"""The note `safe_load` records when a file asked to be memory-mapped cannot be."""


class SafeLoadError(CheckpointError):
    """A file `safe_load` could not read.

    Attributes:
        path: The file.
        reason: Why, in one line.
    """

    def __init__(self, message: str, *, path: Path, reason: str) -> None:
        super().__init__(message)
        self.path, self.reason = path, reason


class UnreadableFileError(SafeLoadError):
    """The file is corrupt, truncated or not a PyTorch file.

    Attributes:
        weights_only: The weights-only unpickler refused it for a reason other than a Python
            object, and no full unpickle was tried (the caller did not trust the file), so a
            full unpickle might still read it.
    """

    def __init__(self, message: str, *, path: Path, reason: str, weights_only: bool) -> None:
        super().__init__(message, path=path, reason=reason)
        self.weights_only = weights_only


class UntrustedFileError(SafeLoadError):
    """Only a full unpickle reads the file, and the caller did not trust it."""


def first_line(err: BaseException) -> str:
    """The first line of an exception's message, or its type's name when it has none."""
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def _unpickler_reason(err: BaseException) -> str:
    """The line of a weights-only unpickling error that says what was wrong."""
    text = str(err)
    if "WeightsUnpickler error:" in text:
        tail = text.split("WeightsUnpickler error:", 1)[1].strip().splitlines()
        if tail and tail[0].strip():
            return tail[0].strip()
    return first_line(err)


def _needs_unpickle(err: BaseException) -> str | None:
    """What makes a file readable only by a full unpickle, from torch's weights-only error."""
    refused = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
    if isinstance(err, pickle.UnpicklingError) and refused is not None:
        return f"stores Python objects ({refused.group(1)})"
    if "legacy .tar format" in str(err):
        return "is in torch's legacy .tar format"
    return None


def safe_load(
    path: str | os.PathLike,
    *,
    trusted: bool = False,
    mmap: bool = False,
    map_location: Any = "cpu",
    what: str = "checkpoint",
    trust_hint: str = TRUST_HINT,
    notes: list[str] | None = None,
) -> Any:
    """``torch.load`` with ``weights_only=True``; a full unpickle only when `trusted`.

    A trusted file is still tried with the weights-only unpickler first: only a file it refuses
    is unpickled in full.

    Args:
        path: The file.
        trusted: Allow a full unpickle (it can run code hidden in the file).
        mmap: Memory-map the tensors (no second copy of a large file). A file not in torch's
            zipfile format cannot be memory-mapped: it is read whole, and `notes` says so.
        map_location: Where tensors go, as for ``torch.load``.
        what: The kind of file, in messages: ``"cannot read {what} 'path' ..."``.
        trust_hint: The advice a refusal ends with: how to pass the trust, and when to.
        notes: A list to record how the file was read in (memory-mapping given up).

    Returns:
        The payload.

    Raises:
        UntrustedFileError: Only a full unpickle reads the file and `trusted` is false: the
            message names the first Python object found, ends with `trust_hint`.
        UnreadableFileError: The file is corrupt, truncated or not a PyTorch file.
    """
    path = Path(path)
    use_mmap = [mmap]

    def load(weights_only: bool) -> Any:
        try:
            return torch.load(
                path, map_location=map_location, weights_only=weights_only, mmap=use_mmap[0]
            )
        except RuntimeError as err:
            if not (use_mmap[0] and _MMAP_REFUSED in str(err)):
                raise
        use_mmap[0] = False
        if notes is not None:
            notes.append(MMAP_NOTE)
        return torch.load(path, map_location=map_location, weights_only=weights_only)

    try:
        return load(weights_only=True)
    except Exception as err:
        needs = _needs_unpickle(err)
        if not trusted and needs is not None:
            raise UntrustedFileError(
                f"{path} {needs}, which torch.load can read only by unpickling, and unpickling "
                f"can run code hidden in a file. {trust_hint}",
                path=path,
                reason=needs,
            ) from None
        unpickler = isinstance(err, pickle.UnpicklingError)
        if not trusted or not (unpickler or needs is not None):
            reason = _unpickler_reason(err) if unpickler else first_line(err)
            raise _unreadable(path, what, reason, weights_only=unpickler) from None
    try:
        return load(weights_only=False)
    except Exception as err:
        raise _unreadable(path, what, first_line(err), weights_only=False) from None


def _unreadable(path: Path, what: str, reason: str, *, weights_only: bool) -> UnreadableFileError:
    return UnreadableFileError(
        f"cannot read {what} {str(path)!r} (corrupt, truncated, or not a PyTorch file): {reason}",
        path=path,
        reason=reason,
        weights_only=weights_only,
    )
