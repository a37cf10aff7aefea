"""Synthetic DNA with planted motifs: the building block of every dataset's learnable test data.

A dataset package describes its rule (which motifs, how their counts or positions make the
label) and uses these functions to write data in its real file format. Everything takes a
`numpy.random.Generator`, so a seed fixes the data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from d3_core.errors import D3ConfigError, D3InputError

__all__ = [
    "ALPHABET",
    "TOKEN_MESSAGES",
    "Motif",
    "MotifRule",
    "check_size",
    "check_tokens",
    "count_motifs",
    "decode",
    "encode",
    "find_motif",
    "plant_motifs",
]

ALPHABET = "ACGT"
"""Token order: A, C, G, T = 0, 1, 2, 3."""


def encode(sequence: str) -> np.ndarray:
    """A DNA string (A/C/G/T, any case) as (len,) uint8 tokens.

    Raises:
        D3ConfigError: The string holds another letter.
    """
    upper = sequence.upper()
    bad = sorted(set(upper) - set(ALPHABET))
    if bad:
        raise D3ConfigError(f"sequence {sequence!r} holds letters other than A, C, G, T: {bad}")
    lookup = np.zeros(256, dtype=np.uint8)
    lookup[[ord(c) for c in ALPHABET]] = np.arange(4, dtype=np.uint8)
    return lookup[np.frombuffer(upper.encode("ascii"), dtype=np.uint8)]


def decode(tokens: np.ndarray) -> str:
    """(len,) tokens in [0, 4) as a DNA string."""
    return "".join(ALPHABET[int(t)] for t in tokens)


@dataclass(frozen=True)
class Motif:
    """A named, fixed DNA word planted into synthetic sequences.

    Attributes:
        name: Label for reports, e.g. ``"GATA"``.
        sequence: The word in A/C/G/T.
    """

    name: str
    sequence: str

    def __post_init__(self) -> None:
        if not self.sequence:
            raise D3ConfigError(f"motif {self.name!r} has an empty sequence")
        encode(self.sequence)  # rejects other letters

    @property
    def tokens(self) -> np.ndarray:
        """(k,) uint8 tokens of the word."""
        return encode(self.sequence)


def plant_motifs(
    rng: np.random.Generator,
    n: int,
    length: int,
    motifs: tuple[Motif, ...],
    *,
    max_copies: int = 3,
    gc: float = 0.42,
) -> tuple[np.ndarray, np.ndarray]:
    """Background sequences with a random number of non-overlapping copies of each motif.

    Each sequence draws, for every motif, a copy count uniformly from 0..`max_copies` and
    places the copies at random non-overlapping positions. The background is i.i.d. with the
    given GC content. Planted copies are what `count_motifs` finds, plus rare chance matches.

    Args:
        rng: Source of randomness.
        n: Number of sequences N.
        length: Sequence length L.
        motifs: The words to plant.
        max_copies: Largest number of copies of one motif in one sequence.
        gc: Fraction of G and C in the background.

    Returns:
        tokens (N, L) uint8 and planted copy counts (N, M) int64.

    Raises:
        D3ConfigError: The copies cannot fit into `length`.
    """
    widths = np.array([len(m.sequence) for m in motifs])
    if max_copies * widths.sum() > length // 2:
        raise D3ConfigError(
            f"{max_copies} copies of motifs of total width {widths.sum()} do not fit into "
            f"half of a {length}-bp sequence; plant fewer or shorter motifs"
        )
    at, cg = (1 - gc) / 2, gc / 2
    tokens = rng.choice(4, size=(n, length), p=[at, cg, cg, at]).astype(np.uint8)
    counts = rng.integers(0, max_copies + 1, size=(n, len(motifs)))
    words = [m.tokens for m in motifs]
    for i in range(n):
        pieces = [m for m in range(len(motifs)) for _ in range(counts[i, m])]
        rng.shuffle(pieces)
        # Non-overlapping placement: split the free bases into gaps around the pieces.
        free = length - sum(len(words[m]) for m in pieces)
        cuts = np.sort(rng.integers(0, free + 1, size=len(pieces)))
        position, previous = 0, 0
        for m, cut in zip(pieces, cuts, strict=True):
            position += cut - previous
            previous = cut
            tokens[i, position : position + len(words[m])] = words[m]
            position += len(words[m])
    return tokens, counts


def find_motif(tokens: np.ndarray, motif: Motif) -> np.ndarray:
    """Where a motif starts in each sequence (forward strand, exact matches).

    Args:
        tokens: (N, L) integer tokens.
        motif: The word.

    Returns:
        (N, L) bool, True at each start position of an occurrence.
    """
    tokens = np.asarray(tokens)
    word = motif.tokens
    n, length = tokens.shape
    hits = np.zeros((n, length), dtype=bool)
    span = length - len(word) + 1
    if span <= 0:
        return hits
    match = np.ones((n, span), dtype=bool)
    for offset, base in enumerate(word):
        match &= tokens[:, offset : offset + span] == base
    hits[:, :span] = match
    return hits


def count_motifs(tokens: np.ndarray, motifs: tuple[Motif, ...]) -> np.ndarray:
    """Occurrences of each motif in each sequence.

    Args:
        tokens: (N, L) integer tokens.
        motifs: The words.

    Returns:
        (N, M) int64 counts.
    """
    tokens = np.asarray(tokens)
    counts = [find_motif(tokens, m).sum(axis=1) for m in motifs]
    if not counts:
        return np.zeros((len(tokens), 0), dtype=np.int64)
    return np.stack(counts, axis=1).astype(np.int64)


TOKEN_MESSAGES = {
    "shape": "ground_truth takes {dataset} tokens of shape (N, {length}), got {shape}",
    "dtype": "ground_truth takes integer tokens, got dtype {dtype}",
    "range": "ground_truth takes tokens in [0, 4) (A, C, G, T), got values from {low} to {high}",
}
"""The messages of `check_tokens`, by problem; ``str.format`` fields name what was found."""


def check_tokens(
    tokens: object, *, length: int, dataset: str, messages: Mapping[str, str] = TOKEN_MESSAGES
) -> np.ndarray:
    """Tokens from a torch tensor or array-like, checked to be (N, `length`) in [0, 4).

    Args:
        tokens: The sequences to score.
        length: The dataset's sequence length L.
        dataset: The dataset's display name, for messages (e.g. ``"DeepSTARR"``).
        messages: The message for each problem (keys of `TOKEN_MESSAGES`), with the fields
            ``dataset``, ``length`` and ``shape``, ``dtype`` or ``low`` and ``high``.

    Raises:
        D3InputError: Wrong shape, a non-integer dtype or values outside [0, 4).
    """
    if hasattr(tokens, "detach"):  # a torch tensor, without importing torch here
        tokens = tokens.detach().cpu().numpy()
    tokens = np.asarray(tokens)
    found: dict[str, object] = {"dataset": dataset, "length": length}
    if tokens.ndim != 2 or tokens.shape[1] != length:
        raise D3InputError(messages["shape"].format(shape=tokens.shape, **found))
    if not np.issubdtype(tokens.dtype, np.integer):
        raise D3InputError(messages["dtype"].format(dtype=tokens.dtype, **found))
    if tokens.size and (tokens.min() < 0 or tokens.max() > 3):
        low, high = tokens.min(), tokens.max()
        raise D3InputError(messages["range"].format(low=low, high=high, **found))
    return tokens


def check_size(
    size: str, seed: object, sizes: dict[str, tuple[int, int, int]]
) -> tuple[int, int, int]:
    """The (train, valid, test) sizes of a synthetic-data ``size``, after checking it and the seed.

    Raises:
        D3ConfigError: An unknown size (the message lists them with their totals) or a seed
            that is not a non-negative integer.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise D3ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    if size not in sizes:
        raise D3ConfigError(
            f"unknown synthetic data size {size!r}; use one of {', '.join(sizes)} "
            f"({', '.join(f'{k}: {sum(v):,} sequences' for k, v in sizes.items())})"
        )
    return sizes[size]


@dataclass(frozen=True)
class MotifRule:
    """Global labels as a linear function of motif counts, with pairwise interactions.

    label_s = baseline_s + sum_m weights[m][s] n_m + sum over interactions (a, b, s, w) of
    w n_a n_b, plus Gaussian noise of s.d. `noise_sd` in stored data; n_m counts the
    (forward-strand, exact) occurrences of motif m, so the rule scores any sequence.

    Attributes:
        motifs: The M planted words.
        baseline: (S,) label of a sequence without motifs (a sequence or array; stored as a
            tuple of floats).
        weights: (M, S) label gained per occurrence of each motif (nested sequences or an
            array; stored as tuples of floats).
        interactions: (motif a, motif b, label, weight) terms.
        noise_sd: Standard deviation of the noise on stored labels.
        max_copies: Copies of each motif per sequence are drawn from 0..max_copies.
        gc: GC content of the background.
    """

    motifs: tuple[Motif, ...]
    baseline: tuple[float, ...]
    weights: tuple[tuple[float, ...], ...]
    interactions: tuple[tuple[int, int, int, float], ...] = ()
    noise_sd: float = 0.3
    max_copies: int = 2
    gc: float = 0.42

    def __post_init__(self) -> None:
        shape = np.shape(self.weights)
        if shape != (len(self.motifs), len(self.baseline)):
            raise D3ConfigError(
                f"MotifRule weights must be (motifs, labels) = ({len(self.motifs)}, "
                f"{len(self.baseline)}), got {shape}"
            )
        for a, b, label, _ in self.interactions:
            if not (0 <= a < len(self.motifs) and 0 <= b < len(self.motifs)):
                raise D3ConfigError(f"MotifRule interaction motifs ({a}, {b}) out of range")
            if not 0 <= label < len(self.baseline):
                raise D3ConfigError(f"MotifRule interaction label {label} out of range")
        # Arrays (as a dataset's tables hold them) are stored as tuples of floats.
        object.__setattr__(self, "baseline", tuple(float(b) for b in self.baseline))
        object.__setattr__(
            self, "weights", tuple(tuple(float(w) for w in row) for row in self.weights)
        )

    def score(self, tokens: np.ndarray) -> np.ndarray:
        """Noise-free labels (N, S) float32 of (N, L) integer tokens."""
        counts = count_motifs(tokens, self.motifs).astype(np.float64)  # (N, M)
        labels = np.asarray(self.baseline) + counts @ np.asarray(self.weights)  # (N, S)
        for a, b, label, weight in self.interactions:
            labels[:, label] += weight * counts[:, a] * counts[:, b]
        return labels.astype(np.float32)

    def draw(self, rng: np.random.Generator, n: int, length: int) -> tuple[np.ndarray, np.ndarray]:
        """Sequences with planted motifs and their noisy labels: (N, L) uint8, (N, S) float32."""
        tokens, _ = plant_motifs(
            rng, n, length, self.motifs, max_copies=self.max_copies, gc=self.gc
        )
        noise = rng.normal(0.0, self.noise_sd, size=(n, len(self.baseline)))
        return tokens, (self.score(tokens) + noise).astype(np.float32)
