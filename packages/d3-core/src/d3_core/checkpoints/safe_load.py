"""Opening a PyTorch file safely: ``torch.load(weights_only=True)`` with a plain-data allowlist.

`safe_load` is the one place d3 calls ``torch.load`` on a file a user hands it (checkpoints of
every format, oracle weights, Sei). torch's weights-only unpickler rebuilds only tensors,
containers and the classes allowed for the call, so it cannot run code a file chooses. The
formats users have also hold a few plain-data classes (docs/checkpoint-formats.md#safe-loading):
d3-dna and the earlier Lightning converter keep their configs as OmegaConf objects, Lightning
keeps hyper-parameters that may hold paths and loop state in ``defaultdict``. `PLAIN_DATA_GLOBALS` names them, and they are
allowed for the one ``torch.load`` call through ``torch.serialization.safe_globals`` (a context
manager: nothing is added to the process's global allowlist).

Why each entry is safe: the weights-only unpickler makes an allowed class's object in one of
three ways, and none runs a callable the file chooses. (1) ``NEWOBJ`` calls ``cls.__new__(cls)``
of the allowed class itself; (2) ``BUILD`` then calls that class's own ``__setstate__`` (or
updates its ``__dict__``) with data the file gives, and dict items go in through ``__setitem__``;
(3) ``REDUCE`` calls an allowed global with arguments from the file. Every callable reached is
therefore code of torch, Python or OmegaConf chosen by d3, fed plain values; any other global
the file names (``builtins.eval``, ``os.system``, ``__main__.Foo``) is refused before it is
looked up.

* OmegaConf ``DictConfig``, ``ListConfig``, ``Metadata``, ``ContainerMetadata`` and the value
  nodes (``AnyNode``, ``StringNode``, ``IntegerNode``, ``FloatNode``, ``BooleanNode``,
  ``BytesNode``, ``PathNode``): ways (1) and (2); their ``__setstate__`` stores the fields it is
  given. A structured config's dataclass or an ``EnumNode``'s enum is another global, so still
  refused. Interpolations inside them are not resolved by loading; d3 reads them without
  resolving (`d3_core.config.schema.file_config`).
* ``typing.Any``: OmegaConf's metadata stores it as a key or element type; unpickling it is a
  reference to the object (no call at all).
* ``collections.defaultdict``: way (3), ``defaultdict(factory)``; the factory is itself a global
  of the file, so it must be on this list too (Lightning's loop state uses ``dict``).
* ``pathlib.PosixPath``, ``PurePosixPath``, ``PureWindowsPath``: way (3) with the path's parts as
  strings; building a path object touches no file.

Lightning's ``AttributeDict`` cannot be on the list: torch's unpickler sets items only on
``dict``, ``OrderedDict`` and ``Counter``, never on a subclass. Lightning 2.x stores
hyper-parameters as ``dict(hparams)`` (or the ``DictConfig`` itself), so its files do not hold
one; a file that does needs ``trusted=True``.

A file that holds anything else is a readable pickle d3 will not run: `UntrustedFileError`
names the global torch refused, says why, and how to proceed (``trusted=True`` reads it with a
full unpickle). Only a file whose pickle cannot be parsed at all (random bytes, a truncated or
damaged zip) is `UnreadableFileError`, which names the file and what was wrong.
"""

from __future__ import annotations

import collections
import os
import pathlib
import pickletools
import re
import typing
import zipfile
from pathlib import Path
from typing import Any

import torch

from d3_core.errors import CheckpointError

__all__ = [
    "PLAIN_DATA_GLOBALS",
    "TRUST_HINT",
    "SafeLoadError",
    "UnreadableFileError",
    "UntrustedFileError",
    "first_line",
    "plain_data_globals",
    "safe_load",
]

TRUST_HINT = (
    "If you trust where the file came from, pass trusted=True to read it with a full unpickle"
)
"""The advice `safe_load` gives with a refusal, unless its caller gives its own."""

_MMAP_REFUSED = "mmap can only be used"
MMAP_NOTE = "not in torch's zipfile format, so read whole (mmap=False)"
"""The note `safe_load` records when a file asked to be memory-mapped cannot be."""


LEGACY_TAR = "torch's legacy .tar format"


PLAIN_DATA_GLOBALS: tuple[tuple[str, str], ...] = (
    ("omegaconf.dictconfig", "DictConfig"),
    ("omegaconf.listconfig", "ListConfig"),
    ("omegaconf.base", "Metadata"),
    ("omegaconf.base", "ContainerMetadata"),
    ("omegaconf.nodes", "AnyNode"),
    ("omegaconf.nodes", "StringNode"),
    ("omegaconf.nodes", "IntegerNode"),
    ("omegaconf.nodes", "FloatNode"),
    ("omegaconf.nodes", "BooleanNode"),
    ("omegaconf.nodes", "BytesNode"),
    ("omegaconf.nodes", "PathNode"),
    ("typing", "Any"),
    ("collections", "defaultdict"),
    ("collections", "OrderedDict"),
    ("builtins", "dict"),
    ("pathlib", "PosixPath"),
    ("pathlib", "PurePosixPath"),
    ("pathlib", "PureWindowsPath"),
)
"""The plain-data globals `safe_load` allows, as (module, name): why each is safe is in this
module's docstring; docs/checkpoint-formats.md#safe-loading lists them."""


def plain_data_globals() -> list[Any]:
    """`PLAIN_DATA_GLOBALS` as ``torch.serialization.safe_globals`` takes them."""
    import omegaconf.base
    import omegaconf.dictconfig
    import omegaconf.listconfig
    import omegaconf.nodes

    modules = {
        "omegaconf.dictconfig": omegaconf.dictconfig,
        "omegaconf.listconfig": omegaconf.listconfig,
        "omegaconf.base": omegaconf.base,
        "omegaconf.nodes": omegaconf.nodes,
        "typing": typing,
        "collections": collections,
        "builtins": __builtins__ if isinstance(__builtins__, dict) else vars(__builtins__),
        "pathlib": pathlib,
    }
    allowed: list[Any] = []
    for module, name in PLAIN_DATA_GLOBALS:
        namespace = modules[module]
        obj = namespace[name] if isinstance(namespace, dict) else getattr(namespace, name)
        # typing.Any is not a class: torch names it by the string the pickle uses
        allowed.append((obj, f"{module}.{name}") if module == "typing" else obj)
    return allowed


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
    """The file is not a readable PyTorch file: random bytes, a truncated or damaged archive."""


class UntrustedFileError(SafeLoadError):
    """The file is a readable pickle that names a global outside `PLAIN_DATA_GLOBALS`, and the
    caller did not trust it.

    Attributes:
        refused: The global torch refused, as ``module.name`` (e.g. ``"builtins.eval"``).
    """

    def __init__(self, message: str, *, path: Path, reason: str, refused: str) -> None:
        super().__init__(message, path=path, reason=reason)
        self.refused = refused


def first_line(err: BaseException) -> str:
    """The first line of an exception's message, or its type's name when it has none."""
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def _refused_by_torch(err: BaseException) -> str | None:
    """The object the weights-only unpickler refused, from its message, or None."""
    text = str(err)
    for pattern in (
        r"Unsupported global: GLOBAL (\S+)",
        r"unsupported GLOBAL (\S+) whose module",
        r"but got <class '([^']+)'>",
    ):
        found = re.search(pattern, text)
        if found:
            return found.group(1)
    return None


def _pickle_globals(path: Path) -> list[str]:
    """Every global the pickle of a file names, in order, read from its opcodes without running
    any: ``data.pkl`` of torch's zip format, else the first pickle of the file.

    Raises:
        ValueError: The pickle is missing or incomplete (the message says what was wrong).
    """
    found, strings = [], []
    try:
        with open(path, "rb") as stream:
            if zipfile.is_zipfile(stream):
                archive = zipfile.ZipFile(stream)
                names = [n for n in archive.namelist() if n.endswith("data.pkl")]
                if not names:
                    raise ValueError("a zip archive without torch's data.pkl")
                stream = archive.open(names[0])  # checks the entry's CRC as it reads
            for op, arg, _ in pickletools.genops(stream):
                if op.name in ("GLOBAL", "INST"):
                    found.append(str(arg).replace(" ", ".").replace("__builtin__.", "builtins."))
                elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                    found.append(f"{strings[-2]}.{strings[-1]}")
                if isinstance(arg, str):
                    strings.append(arg)
    except ValueError as err:
        if "data.pkl" in str(err):
            raise
        raise ValueError(first_line(err)) from None
    except Exception as err:  # zipfile.BadZipFile, EOFError, ... on a damaged stream
        raise ValueError(first_line(err)) from None
    return found


def _diagnose(path: Path, err: BaseException) -> tuple[str | None, str | None]:
    """(the global d3 will not load, why the file is unreadable): exactly one is set.

    A file whose pickle parses is readable: what torch refused in it is named (from torch's
    message, else the first global outside the allowlist). Otherwise it is unreadable.
    """
    if "legacy .tar format" in str(err):
        return LEGACY_TAR, None
    with open(path, "rb") as stream:
        head = stream.read(4)
    if head == b"PK\x03\x04" and not zipfile.is_zipfile(path):
        return None, "a truncated zip archive: its end (the central directory) is missing"
    try:
        names = _pickle_globals(path)
    except ValueError as why:
        if zipfile.is_zipfile(path):
            return None, f"a damaged zip archive: its pickle cannot be read ({why})"
        return None, f"not a PyTorch file: neither a zip archive nor a pickle ({why})"
    refused = _refused_by_torch(err)
    if refused is not None and "." not in refused:  # torch drops "builtins."; the pickle has it
        refused = next((n for n in names if n.rpartition(".")[2] == refused), refused)
    if refused is None:
        allowed = {f"{m}.{n}" for m, n in PLAIN_DATA_GLOBALS}
        outside = [n for n in names if n not in allowed and not n.startswith("torch")]
        refused = outside[0] if outside else None
    if refused is None:  # parses, names only allowed globals, yet torch refused it
        return None, f"torch.load(weights_only=True) failed: {first_line(err)}"
    return refused, None


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
    """``torch.load(weights_only=True)`` with `PLAIN_DATA_GLOBALS` allowed for this call only; a
    full unpickle only when `trusted` and only for a file the allowlist cannot express.

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
        UntrustedFileError: The file names a global outside the allowlist and `trusted` is
            false: the message names it, says why it is refused, ends with `trust_hint`.
        UnreadableFileError: The file is not a readable PyTorch file (random bytes, a
            truncated or damaged archive): the message names the file and what was wrong.
    """
    path = Path(path)
    use_mmap = [mmap]

    def load(weights_only: bool) -> Any:
        kwargs = {"map_location": map_location, "weights_only": weights_only}
        try:
            return torch.load(path, mmap=use_mmap[0], **kwargs)
        except RuntimeError as err:
            if not (use_mmap[0] and _MMAP_REFUSED in str(err)):
                raise
        use_mmap[0] = False
        if notes is not None:
            notes.append(MMAP_NOTE)
        return torch.load(path, **kwargs)

    try:
        with torch.serialization.safe_globals(plain_data_globals()):
            return load(weights_only=True)
    except Exception as err:
        if isinstance(err, OSError) and not path.is_file():
            raise _unreadable(path, what, f"cannot open it ({first_line(err)})") from None
        refused, unreadable = _diagnose(path, err)
    if unreadable is not None:
        raise _unreadable(path, what, unreadable) from None
    if not trusted:
        reason = (
            "it is in torch's legacy .tar format, which only a full unpickle reads"
            if refused == LEGACY_TAR
            else f"it holds {refused}, which is not plain data"
        )
        raise UntrustedFileError(
            f"refusing to load {what} {str(path)!r}: {reason}, so loading it would run code "
            f"named by the file (torch.load(weights_only=True) allows only tensors and plain "
            f"data). {trust_hint}",
            path=path,
            reason=reason,
            refused=refused,
        )
    try:
        return load(weights_only=False)
    except Exception as err:
        raise _unreadable(path, what, f"a full unpickle failed: {first_line(err)}") from None


def _unreadable(path: Path, what: str, reason: str) -> UnreadableFileError:
    return UnreadableFileError(
        f"cannot read {what} {str(path)!r}: {reason}", path=path, reason=reason
    )
