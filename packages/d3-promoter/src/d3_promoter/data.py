"""Loads the Promoter NPZ file (docs/data-formats.md) as train/valid/test datasets of tokens and
CAGE tracks.

The published train split is about 88k windows, 2.2 GB as float32, so no split is ever read
whole: an uncompressed member (``np.savez``) is memory-mapped in place inside the zip file, a
compressed one (``np.savez_compressed``) is decompressed as a stream, and either way
`_CHUNK_ROWS` windows at a time are converted to uint8 tokens and the float32 CAGE track. The
extra memory is therefore bounded by one chunk (about 25 MB of float32 and its temporaries, and
as much again of mapped file pages or of the stream's buffer) on top of the result itself (5
bytes a position: a fifth of the float32 split).
"""

from __future__ import annotations

import math
import os
import struct
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np

from d3_core.data.loader import TokenDataset, onehot_error
from d3_core.errors import D3InputError
from d3_promoter.plugin import PLUGIN

__all__ = ["CAGE_CHANNEL", "CHANNELS", "SPLITS", "load_data"]

SPLITS = ("train", "valid", "test")
"""The NPZ keys, one per split."""

CHANNELS = 6
"""Channels per position: 0-3 one-hot A, C, G, T; 4 CAGE on the TSS strand; 5 opposite strand."""

CAGE_CHANNEL = 4
"""The channel used as the label; channel 5 (the opposite strand) is not used."""

_CHUNK_ROWS = 1024
"""Windows read and converted at a time: 24 MiB of float32, the bound on the extra memory."""

_READ_PIECE = 1 << 20
"""Bytes taken from a compressed member at a time, into the chunk's buffer."""

_LAYOUT = (
    f"(N, {PLUGIN.sequence_length}, {CHANNELS}) float32: channels 0-3 one-hot A, C, G, T, "
    f"channel 4 the CAGE signal, channel 5 the opposite strand"
)

# A zip local file header: signature, 22 bytes of versions, flags, sizes and CRC, then the
# lengths of the file name and the extra field that precede the member's data.
_LOCAL_HEADER = struct.Struct("<4s22xHH")
_LOCAL_SIGNATURE = b"PK\x03\x04"
_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}
# NotImplementedError: a compression zipfile cannot undo (e.g. Deflate64, from Windows).
_READ_ERRORS = (OSError, ValueError, EOFError, NotImplementedError, zipfile.BadZipFile, zlib.error)


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


@contextmanager
def _reading(source: str) -> Iterator[None]:
    """Turns the errors of reading a member (corrupt, truncated, pickled) into a D3InputError."""
    try:
        yield
    except D3InputError:
        raise
    except _READ_ERRORS as err:
        kind = "zlib.error" if isinstance(err, zlib.error) else type(err).__name__
        raise D3InputError(
            f"{source}: cannot be read ({kind}: {err}); expected {_LAYOUT}, never pickled objects"
        ) from None


def _payload_offset(handle, info: zipfile.ZipInfo) -> int:
    """Where a stored member's bytes start, read from its own local header (not the directory)."""
    handle.seek(info.header_offset)
    local = handle.read(_LOCAL_HEADER.size)
    if len(local) != _LOCAL_HEADER.size or local[:4] != _LOCAL_SIGNATURE:
        raise zipfile.BadZipFile(f"Bad local file header for file {info.filename!r}")
    _, name_size, extra_size = _LOCAL_HEADER.unpack(local)
    return info.header_offset + _LOCAL_HEADER.size + name_size + extra_size


def _read_npy_header(handle, info: zipfile.ZipInfo) -> tuple[tuple[int, ...], np.dtype, bool, int]:
    """Reads a member's .npy header: (shape, dtype, Fortran order, header size in bytes).

    Raises ValueError (turned into a D3InputError by `_reading`) for an object dtype, whose data
    would be a pickle, and for a header whose array does not fill the member exactly.
    """
    start = handle.tell()
    version = np.lib.format.read_magic(handle)
    if version not in _HEADER_READERS:
        raise ValueError(f".npy format version {version[0]}.{version[1]} is not supported")
    shape, fortran_order, dtype = _HEADER_READERS[version](handle)
    if dtype.hasobject:
        raise ValueError("Object arrays cannot be loaded when allow_pickle=False")
    header_size = handle.tell() - start
    nbytes = math.prod(shape) * dtype.itemsize
    if header_size + nbytes != info.file_size:
        raise ValueError(
            f"{info.filename!r} holds {info.file_size - header_size} bytes of array data, but "
            f"its header promises {nbytes} (shape {shape}, dtype {dtype})"
        )
    return shape, dtype, fortran_order, header_size


def _check_layout(shape: tuple[int, ...], dtype: np.dtype, fortran: bool, source: str) -> None:
    """Rejects a split that is not (N, L, 6) of numbers in C order."""
    if len(shape) != 3 or shape[1:] != (PLUGIN.sequence_length, CHANNELS):
        raise D3InputError(f"{source}: expected shape {_LAYOUT}; got shape {shape}")
    if not (np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer)):
        raise D3InputError(f"{source}: expected float32 values; got dtype {dtype}")
    if fortran:
        raise D3InputError(
            f"{source}: the array is stored in Fortran (column-major) order, which cannot be "
            f"read a window at a time; expected {_LAYOUT} in C order: pass each array "
            f"through np.ascontiguousarray before np.savez"
        )


def _mapped_blocks(
    path: Path,
    info: zipfile.ZipInfo,
    offset: int,
    header: bytes,
    shape: tuple[int, ...],
    dtype: np.dtype,
    source: str,
) -> Iterator[np.ndarray]:
    """(rows, L, 6) blocks of a stored member, memory-mapped; checks its CRC-32 at the end.

    Each block is a mapping of its own, unmapped once the caller drops it, so that the file
    pages it touched leave the process's resident memory (one mapping of the whole member
    would keep them all resident until the end: the whole split, as file pages).
    """
    row_bytes = math.prod(shape[1:]) * dtype.itemsize
    with _reading(source):
        crc = zlib.crc32(header)
        for start in range(0, shape[0], _CHUNK_ROWS):
            rows = min(_CHUNK_ROWS, shape[0] - start)
            block = np.memmap(
                path,
                dtype=dtype,
                mode="r",
                offset=offset + start * row_bytes,
                shape=(rows, *shape[1:]),
            )
            crc = zlib.crc32(block, crc)
            yield block
            del block  # the caller's reference is then the last: dropping it unmaps the block
        if crc != info.CRC:  # the check zipfile makes when it reads a member
            raise zipfile.BadZipFile(f"Bad CRC-32 for file {info.filename!r}")


def _streamed_blocks(
    stream, shape: tuple[int, ...], dtype: np.dtype, source: str
) -> Iterator[np.ndarray]:
    """(rows, L, 6) arrays decompressed from a member; zipfile checks the CRC at its end.

    The blocks share one buffer, so each is valid only until the next is read. Reading
    `_READ_PIECE` bytes at a time keeps zipfile's own buffers small.
    """
    row_bytes = math.prod(shape[1:]) * dtype.itemsize
    buffer = bytearray(min(_CHUNK_ROWS, shape[0]) * row_bytes)
    view = memoryview(buffer)
    with _reading(source):
        for start in range(0, shape[0], _CHUNK_ROWS):
            rows = min(_CHUNK_ROWS, shape[0] - start)
            size = rows * row_bytes
            for at in range(0, size, _READ_PIECE):
                piece = stream.read(min(_READ_PIECE, size - at))  # exactly that, unless at EOF
                if len(piece) != min(_READ_PIECE, size - at):
                    raise EOFError(f"the array data ends in sequence {start + at // row_bytes}")
                view[at : at + len(piece)] = piece
            yield np.frombuffer(view[:size], dtype=dtype).reshape(rows, *shape[1:])


def _cage_error(cage: np.ndarray, start: int, source: str) -> str | None:
    """The message for the first NaN or infinite value of a CAGE block (rows, L, 1), if any."""
    finite = np.isfinite(cage[..., 0])
    if finite.all():
        return None
    row, position = np.argwhere(~finite)[0]
    return (
        f"{source}: the CAGE signal (channel {CAGE_CHANNEL}) of sequence {start + row} is "
        f"{cage[row, position, 0]} at position {position}; it must be finite"
    )


def _fill_tokens(onehot: np.ndarray, out: np.ndarray, start: int, source: str) -> str | None:
    """Writes the tokens of one-hot rows (rows, L, 4) to `out` (rows, L) uint8, or says why not
    (`d3_core.data.loader.onehot_error`, the sequence numbered within the whole split)."""
    error = onehot_error(onehot, start, source)
    if error is None:
        out[...] = onehot.argmax(axis=-1)
    return error


def _convert(blocks: Iterator[np.ndarray], n: int, source: str) -> tuple[np.ndarray, np.ndarray]:
    """Tokens (n, L) uint8 and CAGE (n, L, 1) float32 from blocks (rows, L, 6) read in order.

    Content errors wait for the end of the split, so that, as when the split was read whole,
    an unreadable member wins over a bad value and a non-finite CAGE value over a bad base.
    """
    tokens = np.empty((n, PLUGIN.sequence_length), dtype=np.uint8)
    cage = np.empty((n, PLUGIN.sequence_length, 1), dtype=np.float32)
    cage_error = onehot_error = None
    start = 0
    for block in blocks:
        stop = start + len(block)
        cage[start:stop] = block[..., CAGE_CHANNEL : CAGE_CHANNEL + 1]
        cage_error = cage_error or _cage_error(cage[start:stop], start, source)
        if onehot_error is None:
            onehot_error = _fill_tokens(block[..., :4], tokens[start:stop], start, source)
        start = stop
    if cage_error or onehot_error:
        raise D3InputError(cage_error or onehot_error)
    return tokens, cage


def _load_split(archive: np.lib.npyio.NpzFile, path: Path, key: str, source: str) -> TokenDataset:
    """One split as a `TokenDataset` of (tokens (L,) int64, CAGE (L, 1) float32).

    A stored member is memory-mapped and a compressed one streamed; only one chunk of
    `_CHUNK_ROWS` windows is ever held as numbers of the file's dtype.
    """
    names = archive.zip.namelist()
    info = archive.zip.getinfo(key if key in names else f"{key}.npy")  # as NpzFile looks it up
    stored = info.compress_type == zipfile.ZIP_STORED
    with ExitStack() as stack:
        with _reading(source):
            if info.flag_bits & 0x1:
                raise ValueError(f"{info.filename!r} is encrypted")
            if stored:
                handle = stack.enter_context(open(path, "rb"))
                handle.seek(_payload_offset(handle, info))
            else:
                handle = stack.enter_context(archive.zip.open(info))
            shape, dtype, fortran, header_size = _read_npy_header(handle, info)
        _check_layout(shape, dtype, fortran, source)
        if stored:
            offset = handle.tell()
            handle.seek(offset - header_size)
            header = handle.read(header_size)
            blocks = _mapped_blocks(path, info, offset, header, shape, dtype, source)
        else:
            blocks = _streamed_blocks(handle, shape, dtype, source)
        tokens, cage = _convert(blocks, shape[0], source)
    return TokenDataset(tokens, cage, source=source)


def load_data(path: str | os.PathLike) -> dict[str, TokenDataset]:
    """Reads the Promoter NPZ file of docs/data-formats.md (the published file or
    `write_synthetic`'s).

    The file holds keys ``train``, ``valid`` and ``test``, each (N, 1024, 6) float32: channels
    0-3 one-hot A, C, G, T, channel 4 the CAGE signal on the TSS strand (the label), channel 5
    the opposite strand (not used). Pickled data is never loaded.

    Memory: a split is never read whole. An uncompressed member (``np.savez``) is memory-mapped
    inside the zip file and a compressed one (``np.savez_compressed``) decompressed as a
    stream; 1,024 windows at a time become uint8 tokens and the float32 CAGE track. Beyond the
    result (5 bytes a position, a fifth of the float32 split), the extra memory is one chunk's:
    about 25 MB of float32 and its temporaries. Each chunk of a stored member is mapped on its
    own and unmapped once converted, so the file's pages do not pile up in resident memory.

    Args:
        path: The ``.npz`` file.

    Returns:
        ``{"train", "valid", "test"}`` datasets whose items are (tokens (1024,) int64 in [0, 4),
        CAGE labels (1024, 1) float32), labels as stored (no standardisation).

    Raises:
        D3InputError: The file is missing or not an NPZ archive, lacks a split, has an array of
            another shape or dtype, in Fortran order, corrupt or truncated, a non-finite CAGE
            value, or a position that is not one-hot A/C/G/T; the message names the file, the
            key and what is expected.
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
        return {key: _load_split(archive, path, key, f"{path}:{key}") for key in SPLITS}
