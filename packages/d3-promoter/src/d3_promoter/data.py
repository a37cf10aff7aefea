"""Loads the Promoter NPZ file (SPEC §11) as train/valid/test datasets of tokens and CAGE tracks."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from d3_core.data import TokenDataset, onehot_to_tokens
from d3_core.errors import D3InputError
from d3_promoter.plugin import PLUGIN

__all__ = ["CAGE_CHANNEL", "CHANNELS", "SPLITS", "load_data"]

SPLITS = ("train", "valid", "test")
"""The NPZ keys, one per split."""

CHANNELS = 6
"""Channels per position: 0-3 one-hot A, C, G, T; 4 CAGE on the TSS strand; 5 opposite strand."""

CAGE_CHANNEL = 4
"""The channel used as the label; channel 5 (the opposite strand) is not used."""

_LAYOUT = (
    f"(N, {PLUGIN.sequence_length}, {CHANNELS}) float32: channels 0-3 one-hot A, C, G, T, "
    f"channel 4 the CAGE signal, channel 5 the opposite strand"
)


def _open_archive(path: Path) -> np.lib.npyio.NpzFile:
    """Opens an NPZ file without pickle, or says why it cannot."""
    if not path.is_file():
        raise D3InputError(
            f"{path}: no such file; the Promoter data is an NPZ file with keys "
            f"{', '.join(SPLITS)}, each {_LAYOUT}"
        )
    reason = None
    try:
        archive = np.load(path, allow_pickle=False)
    except ValueError:  # numpy takes unknown content for a pickle, which is never loaded here
        reason = "neither a zip archive nor a .npy array; pickled data is never loaded"
    except (OSError, EOFError, zipfile.BadZipFile) as err:
        reason = f"{type(err).__name__}: {err}"
    if reason is not None:
        raise D3InputError(
            f"{path}: not an NPZ archive ({reason}); expected an NPZ file with keys "
            f"{', '.join(SPLITS)} (np.savez)"
        )
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise D3InputError(
            f"{path}: holds a single array of shape {archive.shape}, not an NPZ archive; "
            f"expected an NPZ file with keys {', '.join(SPLITS)} (np.savez)"
        )
    return archive


def _check_cage(cage: np.ndarray, source: str) -> None:
    """Rejects a CAGE track (N, L, 1) with NaN or infinite values, naming the first."""
    finite = np.isfinite(cage[..., 0])
    if not finite.all():
        row, position = np.argwhere(~finite)[0]
        raise D3InputError(
            f"{source}: the CAGE signal (channel {CAGE_CHANNEL}) of sequence {row} is "
            f"{cage[row, position, 0]} at position {position}; it must be finite"
        )


def _load_split(archive: np.lib.npyio.NpzFile, key: str, source: str) -> TokenDataset:
    """One split as a `TokenDataset` of (tokens (L,) int64, CAGE (L, 1) float32)."""
    try:
        array = archive[key]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:  # object arrays: ValueError
        raise D3InputError(
            f"{source}: cannot be read ({type(err).__name__}: {err}); expected {_LAYOUT}, "
            f"never pickled objects"
        ) from None
    if array.ndim != 3 or array.shape[1:] != (PLUGIN.sequence_length, CHANNELS):
        raise D3InputError(f"{source}: expected shape {_LAYOUT}; got shape {array.shape}")
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise D3InputError(f"{source}: expected float32 values; got dtype {array.dtype}")
    # A float32 copy of the label alone, so that the six-channel array can be freed.
    cage = np.array(array[..., CAGE_CHANNEL : CAGE_CHANNEL + 1], dtype=np.float32)  # (N, L, 1)
    _check_cage(cage, source)
    tokens = onehot_to_tokens(array[..., :4], layout="NLC", source=source)  # (N, L) uint8
    del array
    return TokenDataset(tokens, cage, source=source)


def load_data(path: str | os.PathLike) -> dict[str, TokenDataset]:
    """Reads the Promoter NPZ file of SPEC §11 (the published file or `write_synthetic`'s).

    The file holds keys ``train``, ``valid`` and ``test``, each (N, 1024, 6) float32: channels
    0-3 one-hot A, C, G, T, channel 4 the CAGE signal on the TSS strand (the label), channel 5
    the opposite strand (not used). Splits are converted one at a time; each keeps only uint8
    tokens and its float32 CAGE track. Pickled data is never loaded.

    Args:
        path: The ``.npz`` file.

    Returns:
        ``{"train", "valid", "test"}`` datasets whose items are (tokens (1024,) int64 in [0, 4),
        CAGE labels (1024, 1) float32), labels as stored (no standardisation).

    Raises:
        D3InputError: The file is missing or not an NPZ archive, lacks a split, has an array of
            another shape or dtype, a non-finite CAGE value, or a position that is not one-hot
            A/C/G/T; the message names the file, the key and what is expected.
    """
    path = Path(path)
    with _open_archive(path) as archive:
        missing = [key for key in SPLITS if key not in archive.files]
        if missing:
            found = ", ".join(archive.files) if archive.files else "none"
            raise D3InputError(
                f"{path}: missing key(s) {', '.join(missing)}; expected keys "
                f"{', '.join(SPLITS)} (found: {found})"
            )
        return {key: _load_split(archive, key, f"{path}:{key}") for key in SPLITS}
