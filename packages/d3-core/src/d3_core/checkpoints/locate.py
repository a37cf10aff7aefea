"""Finding checkpoint files on disk: the file a path or run directory stands for, every PyTorch
file under a directory, and a file's SHA-256 for provenance.

A run directory is recognised by the formats of `d3_core.checkpoints.registry.FORMATS` that
``locate`` one (a d3 run's ``checkpoints/last.ckpt``, a research run's ``hydra/config.yaml``).
"""

from __future__ import annotations

import os
from pathlib import Path

from d3_core.errors import CheckpointError
from d3_core.io import file_sha256

__all__ = ["file_sha256", "find_checkpoints", "locate_checkpoint", "looks_like_torch_file"]


def locate_checkpoint(path: str | os.PathLike) -> Path:
    """The checkpoint file a path stands for.

    A file is itself. A directory is asked of each format in `FORMATS` order: a d3 run directory
    gives ``checkpoints/last.ckpt``; a research run directory (``hydra/config.yaml`` or
    ``.hydra/config.yaml``) gives ``checkpoints/checkpoint.pth``, else the highest
    ``checkpoints/checkpoint_<k>.pth``, else ``checkpoints-meta/checkpoint.pth``.

    Raises:
        CheckpointError: Nothing is there, naming what was looked for.
    """
    from d3_core.checkpoints.registry import FORMATS

    path = Path(path)
    if path.is_file():
        return path
    if not path.exists():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    if not path.is_dir():
        raise CheckpointError(f"{path} is neither a checkpoint file nor a run directory")
    for fmt in FORMATS:
        found = fmt.locate(path) if fmt.locate is not None else None
        if found is not None:
            return found
    looked = [fmt.run_directory(path) for fmt in FORMATS if fmt.run_directory is not None]
    has = f"neither {' nor '.join(looked)}" if len(looked) > 1 else f"no {''.join(looked)}"
    raise CheckpointError(f"{path} is not a run directory d3 reads: it has {has}")


_TORCH_MAGIC = (b"PK\x03\x04", b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")


def looks_like_torch_file(path: Path) -> bool:
    """Whether a file starts like a ``torch.save`` output (a zip archive or a pickle)."""
    try:
        with open(path, "rb") as file:
            head = file.read(4)
    except OSError:
        return False
    return any(head.startswith(magic) for magic in _TORCH_MAGIC)


def find_checkpoints(directory: str | os.PathLike) -> list[Path]:
    """Every file under a directory that starts like a PyTorch file, sorted by path.

    Content decides, not the name: ``.pth``, ``.ckpt``, ``.pt`` and ``.tar`` alike.
    """

    def unfinished(path: Path) -> bool:  # a write in progress (`d3_core.io.atomic_path`)
        return path.name.startswith(".") and path.name.endswith(".tmp")

    return [
        p
        for p in sorted(Path(directory).rglob("*"))
        if p.is_file() and not unfinished(p) and looks_like_torch_file(p)
    ]
