"""Synthetic Promoter data: planted promoter elements whose positions make a CAGE track.

The planted rule, `ground_truth`, reads the motifs found in a sequence (exact matches on the
forward strand), so it scores any sequence, generated ones included:

* every TATA box ``TATAAAA`` starting at position p marks a transcription start site (TSS) at
  t = p + 30, if t < 1024;
* that TSS gets a CAGE peak of height 1 + u + i, where u counts the GC boxes ``GGGCGG`` and
  CCAAT boxes ``CCAAT`` starting in the 100 bp upstream of the TATA box (positions p − 100 to
  p − 1) and i is 1 if an Initiator ``TCAGT`` starts at t − 2 (its A on the TSS), else 0;
* a peak is a narrow bump: its height times 0.25, 0.5, 1, 0.5, 0.25 at t − 2 … t + 2; the
  bumps of several TSSs add up, and the track is 0 elsewhere.

`write_synthetic` writes files in the real NPZ layout (``train``, ``valid``, ``test``, each
(N, 1024, 6) float32). Each sequence is an i.i.d. background (42 % GC) in which, as in the real
windows centred on a TSS, a TATA box is planted with probability 0.9 so that its TSS falls in
positions 448–576; 0–3 GC/CCAAT boxes are planted in its upstream window, an Initiator at the TSS
with probability 0.5 and 0–3 decoy GC/CCAAT boxes downstream of the TSS, where they do not count.
Chance matches in the background count like planted ones. Channel 4 (the label) is the rule's
track times Gamma(25, 1/25) noise per position (mean 1, s.d. 0.2) plus Exponential(0.05)
background counts; channel 5 (the opposite strand, unused) holds background counts only.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from d3_core.data.synthetic import Motif, find_motif
from d3_core.errors import D3ConfigError, D3InputError
from d3_core.io import atomic_path
from d3_promoter.plugin import PLUGIN

__all__ = [
    "CCAAT_BOX",
    "GC_BOX",
    "INITIATOR",
    "SIZES",
    "TATA_BOX",
    "ground_truth",
    "sample_sequences",
    "write_synthetic",
]

LENGTH = PLUGIN.sequence_length  # 1024
TATA_BOX = Motif("TATA", "TATAAAA")
INITIATOR = Motif("Inr", "TCAGT")
CCAAT_BOX = Motif("CCAAT", "CCAAT")
GC_BOX = Motif("GC", "GGGCGG")

TSS_OFFSET = 30  # a TSS lies 30 bp downstream of its TATA box's first base
UPSTREAM_WINDOW = 100  # GC/CCAAT boxes this far upstream of a TATA box raise its peak
INITIATOR_OFFSET = 2  # an Initiator TCAGT starting 2 bp before the TSS puts its A on it
PEAK_SHAPE = (0.25, 0.5, 1.0, 0.5, 0.25)  # weights at t - 2 ... t + 2

SIZES = {
    "tiny": {"train": 64, "valid": 16, "test": 16},
    "small": {"train": 2_000, "valid": 250, "test": 250},
    # The published file's split sizes (docs/data-formats.md): 7,497 test windows.
    "full": {"train": 88_000, "valid": 3_400, "test": 7_497},
}
"""Sequences per split of each ``size`` of `write_synthetic`."""

_GC_CONTENT = 0.42
_P_TATA = 0.9  # fraction of sequences with a planted TATA box
_P_INITIATOR = 0.5  # fraction with a planted Initiator on the TSS
_TSS_RANGE = (448, 576)  # where a planted TATA box puts its TSS (inclusive), around the centre
_SLOT = 6  # a planted GC (6 bp) or CCAAT (5 bp) box takes one 6-bp slot
_UPSTREAM_SLOTS = 15  # slots p - 100 + 6j, j < 15: inside the window, clear of the TATA box
_DOWNSTREAM_START = 10  # decoy slots start this far downstream of the TSS
_DOWNSTREAM_SLOTS = 20
_MAX_BOXES = 3
_PEAK_NOISE_SHAPE = 25.0  # Gamma shape of the multiplicative peak noise: s.d. 1/sqrt(25) = 0.2
_BACKGROUND_MEAN = 0.05  # mean of the Exponential background counts
_CHANNELS = 6
_CHUNK = 2048  # sequences generated and written at a time: bounds memory for size "full"


def _as_tokens(tokens) -> np.ndarray:
    """Tokens as a numpy integer array (N, 1024), checked; torch tensors are moved to the CPU."""
    if hasattr(tokens, "detach"):  # a torch tensor, without importing torch here
        tokens = tokens.detach().cpu().numpy()
    tokens = np.asarray(tokens)
    if tokens.ndim != 2 or tokens.shape[1] != LENGTH:
        raise D3InputError(f"tokens must have shape (N, {LENGTH}); got {tokens.shape}")
    if not np.issubdtype(tokens.dtype, np.integer):
        raise D3InputError(f"tokens must be integers A, C, G, T = 0..3; got dtype {tokens.dtype}")
    if tokens.size and (tokens.min() < 0 or tokens.max() > 3):
        raise D3InputError(
            f"tokens must lie in [0, 4) (A, C, G, T); got values from {tokens.min()} to "
            f"{tokens.max()}"
        )
    return tokens


def _shift(track: np.ndarray, offset: int) -> np.ndarray:
    """``track`` (N, L) moved ``offset`` positions downstream (negative: upstream), 0-filled."""
    moved = np.zeros_like(track)
    if offset >= 0:
        moved[:, offset:] = track[:, : track.shape[1] - offset]
    else:
        moved[:, :offset] = track[:, -offset:]
    return moved


def _tss_heights(tokens: np.ndarray) -> np.ndarray:
    """Peak height at each TSS, 0 elsewhere: (N, L) int tokens -> (N, L) float32."""
    n, length = tokens.shape
    boxes = find_motif(tokens, GC_BOX).astype(np.int32) + find_motif(tokens, CCAAT_BOX)
    starts = np.zeros((n, length + 1), dtype=np.int32)
    np.cumsum(boxes, axis=1, out=starts[:, 1:])  # starts[:, p] = boxes starting before p
    p = np.arange(length)
    upstream = starts[:, p] - starts[:, np.maximum(p - UPSTREAM_WINDOW, 0)]  # in [p - 100, p)
    at_tata = np.where(find_motif(tokens, TATA_BOX), 1.0 + upstream, 0.0).astype(np.float32)
    heights = _shift(at_tata, TSS_OFFSET)  # from the TATA box's first base to its TSS
    initiator = _shift(find_motif(tokens, INITIATOR), INITIATOR_OFFSET)  # Inr starts at t - 2
    return heights + (heights > 0) * initiator


def ground_truth(tokens) -> np.ndarray:
    """The planted rule's noise-free CAGE track of each sequence (see the module docstring).

    Args:
        tokens: (N, 1024) integer tokens in [0, 4) (A, C, G, T), a numpy array or a torch tensor
            on any device.

    Returns:
        (N, 1024, 1) float32 CAGE signal, >= 0: the label the rule gives these sequences.

    Raises:
        D3InputError: The tokens have another shape, are not integers or lie outside [0, 4).
    """
    heights = _tss_heights(_as_tokens(tokens))
    half = len(PEAK_SHAPE) // 2
    track = np.zeros_like(heights)
    for offset, weight in zip(range(-half, half + 1), PEAK_SHAPE, strict=True):
        track += weight * _shift(heights, offset)
    return track[..., None]


def _plant(tokens: np.ndarray, rows: np.ndarray, starts: np.ndarray, motif: Motif) -> None:
    """Writes ``motif`` into ``tokens[rows[i]]`` from ``starts[i]`` on, in place."""
    columns = starts[:, None] + np.arange(len(motif.sequence))  # (k, width)
    tokens[rows[:, None], columns] = motif.tokens


def _plant_boxes(
    rng: np.random.Generator, tokens: np.ndarray, first: np.ndarray, slots: int
) -> None:
    """Plants 0-3 GC/CCAAT boxes per sequence in distinct 6-bp slots ``first[i] + 6 j``."""
    n = len(tokens)
    counts = rng.integers(0, _MAX_BOXES + 1, size=n)
    rank = np.argsort(np.argsort(rng.random((n, slots)), axis=1), axis=1)  # random slot order
    chosen = rank < counts[:, None]  # (n, slots): `counts[i]` slots drawn without replacement
    kinds = rng.integers(0, 2, size=(n, slots))
    for j in range(slots):
        for kind, motif in enumerate((GC_BOX, CCAAT_BOX)):
            rows = np.flatnonzero(chosen[:, j] & (kinds[:, j] == kind))
            _plant(tokens, rows, first[rows] + _SLOT * j, motif)


def sample_sequences(rng: np.random.Generator, n: int) -> np.ndarray:
    """Background sequences with planted promoter elements (see the module docstring).

    Args:
        rng: Source of randomness.
        n: Number of sequences N.

    Returns:
        (N, 1024) uint8 tokens.
    """
    at, cg = (1 - _GC_CONTENT) / 2, _GC_CONTENT / 2
    tokens = rng.choice(4, size=(n, LENGTH), p=[at, cg, cg, at]).astype(np.uint8)
    tss = rng.integers(_TSS_RANGE[0], _TSS_RANGE[1] + 1, size=n)
    tata = tss - TSS_OFFSET
    _plant_boxes(rng, tokens, tata - UPSTREAM_WINDOW, _UPSTREAM_SLOTS)
    _plant_boxes(rng, tokens, tss + _DOWNSTREAM_START, _DOWNSTREAM_SLOTS)
    rows = np.flatnonzero(rng.random(n) < _P_INITIATOR)
    _plant(tokens, rows, tss[rows] - INITIATOR_OFFSET, INITIATOR)
    rows = np.flatnonzero(rng.random(n) < _P_TATA)
    _plant(tokens, rows, tata[rows], TATA_BOX)
    return tokens


def _sample_rows(rng: np.random.Generator, n: int) -> np.ndarray:
    """N rows of the NPZ layout: (N, 1024, 6) float32 one-hot, CAGE, opposite strand."""
    tokens = sample_sequences(rng, n)
    truth = ground_truth(tokens)[..., 0]  # (N, L)
    peak_noise = rng.gamma(_PEAK_NOISE_SHAPE, 1 / _PEAK_NOISE_SHAPE, size=truth.shape)
    rows = np.zeros((n, LENGTH, _CHANNELS), dtype=np.float32)
    rows[np.arange(n)[:, None], np.arange(LENGTH), tokens] = 1.0  # channels 0-3: one-hot
    rows[..., 4] = truth * peak_noise + rng.exponential(_BACKGROUND_MEAN, size=truth.shape)
    rows[..., 5] = rng.exponential(_BACKGROUND_MEAN, size=truth.shape)
    return rows


def _write_split(archive: zipfile.ZipFile, key: str, n: int, rng: np.random.Generator) -> None:
    """Streams one (n, 1024, 6) float32 array into ``archive`` as ``<key>.npy``, chunk by chunk."""
    header = {
        "descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)),
        "fortran_order": False,
        "shape": (n, LENGTH, _CHANNELS),
    }
    # A fixed timestamp, so that the file's bytes depend only on the seed and the size.
    member_info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
    with archive.open(member_info, "w", force_zip64=True) as member:
        np.lib.format.write_array_header_1_0(member, header)
        for start in range(0, n, _CHUNK):
            member.write(_sample_rows(rng, min(_CHUNK, n - start)).tobytes())


def write_synthetic(path: str | os.PathLike, *, seed: int = 0, size: str = "small") -> Path:
    """Writes a synthetic Promoter NPZ file in the real layout, with the planted rule.

    Keys ``train``, ``valid`` and ``test``, each (N, 1024, 6) float32: channels 0-3 one-hot
    A, C, G, T, channel 4 the CAGE label, channel 5 the opposite strand (unused). The file is
    written atomically (a crash leaves the old file or none) and uncompressed (``"full"`` is
    about 2.4 GB); its bytes depend only on `seed` and `size`. Each split draws from its own
    random stream of `seed`.

    Args:
        path: The ``.npz`` file to write; an existing one is replaced.
        seed: Non-negative integer seed.
        size: ``"tiny"`` (64/16/16 sequences, for tests), ``"small"`` (2,000/250/250, the demo)
            or ``"full"`` (88,000/3,400/7,497, like the published file).

    Returns:
        The path written.

    Raises:
        D3ConfigError: `size` or `seed` is not allowed.
    """
    if size not in SIZES:
        raise D3ConfigError(f"size must be one of {', '.join(map(repr, SIZES))}; got {size!r}")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise D3ConfigError(f"seed must be a non-negative integer; got {seed!r}")
    with (
        atomic_path(path) as tmp,
        open(tmp, "wb") as handle,
        zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED, allowZip64=True) as archive,
    ):
        for index, (key, n) in enumerate(SIZES[size].items()):
            _write_split(archive, key, n, np.random.default_rng([int(seed), index]))
    return Path(path)
