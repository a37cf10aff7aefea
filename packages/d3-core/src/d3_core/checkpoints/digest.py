"""The content digest d3 stores in its own files and verifies on loading
(docs/checkpoint-formats.md#content-digest).

torch does not check a zip entry's CRC when it reads a tensor, so one flipped byte in a stored
tensor loads silently. d3's checkpoints (`d3_core.checkpoints.native`, and the
`d3_core.training.module` hook) and d3-trained oracle files (`d3_core.oracles.training`) carry
a SHA-256 of their content in their own block (``d3.content_digest``, ``d3_oracle.content_digest``)
and every load recomputes it. The content is read by value, not as file bytes, so it does not
depend on how torch lays the zip out: every tensor by its entry's name, with its dtype, shape
and bytes, and every plain value (config, block, step) with its type.

What is covered: the entries results are made from, `COVERED` (weights, EMA, config, the d3
block less the digest, the step). Lightning's optimizer, scheduler, loop and callback state are
not: only ``d3 train --resume`` reads them, a damaged optimizer moment shows in the resumed run's
loss instead of in a released model, and AdamW's two moments per parameter would double the
hashing time of every load for sampling.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from d3_core.errors import CheckpointError

__all__ = [
    "ALGORITHM",
    "COVERED",
    "DIGEST_KEY",
    "ORACLE_COVERED",
    "add_content_digest",
    "content_digest",
    "verify_content_digest",
]

ALGORITHM = "sha256/d3-content-1"
"""The hash and the version of the encoding below; a reader refuses one it does not know."""

DIGEST_KEY = "content_digest"
"""The entry of a file's own block (``d3``, ``d3_oracle``) that holds the digest."""

COVERED = ("state_dict", "ema", "hyper_parameters", "d3", "global_step")
"""The top-level entries of a d3 checkpoint the digest covers (the ``d3`` block less the digest)."""

ORACLE_COVERED = ("state_dict", "d3_oracle")
"""The top-level entries of a d3-trained oracle file the digest covers."""


def _feed(hasher: Any, value: Any) -> None:
    """Adds one value to the hash: a type tag, then its content (tensors by dtype, shape, bytes)."""
    if isinstance(value, torch.Tensor):
        tensor = value.detach().to("cpu").contiguous()
        header = f"T{tensor.dtype}{tuple(tensor.shape)}".encode()
        hasher.update(len(header).to_bytes(8, "little") + header)
        if tensor.numel():
            hasher.update(memoryview(tensor.reshape(-1).view(torch.uint8).numpy()))
        return
    if isinstance(value, Mapping):
        items = sorted(value.items(), key=lambda item: (type(item[0]).__name__, str(item[0])))
        hasher.update(b"{" + len(items).to_bytes(8, "little"))
        for key, item in items:
            _feed(hasher, key)
            _feed(hasher, item)
        hasher.update(b"}")
        return
    if isinstance(value, (list, tuple)):
        hasher.update(b"[" + len(value).to_bytes(8, "little"))
        for item in value:
            _feed(hasher, item)
        hasher.update(b"]")
        return
    if isinstance(value, bool) or value is None:
        text = f"b{value}"
    elif isinstance(value, int):
        text = f"i{value}"
    elif isinstance(value, float):
        text = f"f{value.hex()}"
    elif isinstance(value, str):
        text = f"s{value}"
    elif isinstance(value, bytes):
        hasher.update(b"y" + len(value).to_bytes(8, "little") + value)
        return
    else:  # torch.dtype, torch.Size's elements, paths: by type and text
        text = f"o{type(value).__qualname__}:{value}"
    data = text.encode("utf-8", "surrogatepass")
    hasher.update(len(data).to_bytes(8, "little") + data)


def content_digest(payload: Mapping[str, Any], covered: tuple[str, ...], block: str) -> str:
    """The hex SHA-256 of a payload's `covered` entries, `block`'s digest entry left out."""
    hasher = hashlib.sha256(ALGORITHM.encode() + b"\0")
    for key in covered:
        if key not in payload:
            continue
        value = payload[key]
        if key == block and isinstance(value, Mapping):
            value = {k: v for k, v in value.items() if k != DIGEST_KEY}
        _feed(hasher, key)
        _feed(hasher, value)
    return hasher.hexdigest()


def add_content_digest(
    payload: dict[str, Any], *, block: str = "d3", covered: tuple[str, ...] = COVERED
) -> dict[str, Any]:
    """Stores the digest of `payload` in its `block` (changed in place; returned)."""
    payload[block][DIGEST_KEY] = {
        "algorithm": ALGORITHM,
        "sha256": content_digest(payload, covered, block),
    }
    return payload


def verify_content_digest(
    payload: Mapping[str, Any],
    source: str | Path,
    *,
    block: str = "d3",
    covered: tuple[str, ...] = COVERED,
    notes: list[str] | None = None,
) -> bool:
    """Checks a d3 file's content against the digest stored in it.

    A file written before d3 stored digests has none: it loads, and `notes` says it was not
    verified.

    Returns:
        Whether a digest was there (and matched).

    Raises:
        CheckpointError: The content does not match (one line: the file, what happened, what to
            do), or the digest is of an algorithm this d3-core does not know.
    """
    stored = payload.get(block, {}).get(DIGEST_KEY) if isinstance(payload, Mapping) else None
    if stored is None:
        if notes is not None:
            notes.append("written before d3 stored a content digest, so its tensors are unverified")
        return False
    algorithm = stored.get("algorithm") if isinstance(stored, Mapping) else None
    if algorithm != ALGORITHM:
        raise CheckpointError(
            f"{source} has a content digest of kind {algorithm!r}; this d3-core knows "
            f"{ALGORITHM!r}: upgrade d3-core to verify and load it"
        )
    if content_digest(payload, covered, block) != stored.get("sha256"):
        raise CheckpointError(
            f"{source} changed after it was written: its content no longer matches the digest "
            f"d3 stored in it (bit rot or an edit); copy it again from its source or a backup, "
            f"or write it again (train, or d3 convert its source)"
        )
    return True
