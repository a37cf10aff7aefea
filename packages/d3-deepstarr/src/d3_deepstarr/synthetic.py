"""Synthetic DeepSTARR data: enhancer motifs planted in random DNA, labels from a known rule.

The file has the published layout (SPEC §11): HDF5 with ``X_train|X_valid|X_test`` (N, 4, 249)
float32 one-hot and ``Y_train|Y_valid|Y_test`` (N, 2) float32 labels (Dev, Hk), so the data
loader, training and sampling run on it unchanged.

The rule. Background DNA is i.i.d. at 42 % GC. Each sequence receives, for each of eight
Drosophila motifs, 0, 1 or 2 copies (uniformly) at random non-overlapping places:

- developmental: GATA ``AGATAAG``, AP-1 ``TGACTCA``, Twist E-box ``CAGCTG``, Trl/GAGA ``GAGAGAG``;
- housekeeping: Dref/DRE ``TATCGATA``, Ohler1 ``GTGTGACC``, Ohler6 ``AAAATACCA``,
  ETS ``CCGGAAGT``.

With n_m the number of (forward-strand, exact) occurrences of motif m in the sequence:

    Dev = -1 + 1.0 n_GATA + 0.8 n_AP1 + 0.6 n_Twist + 0.5 n_GAGA + 0.4 n_GATA n_AP1 + ε
    Hk  = -1 + 1.0 n_Dref + 0.8 n_Ohler1 + 0.6 n_Ohler6 + 0.6 n_ETS + 0.3 n_GAGA
             + 0.3 n_Dref n_Ohler1 + ε

with ε ~ N(0, 0.3²) independent per label: a log2-enrichment-like scale, mostly between -2
and 7. GAGA acts on both labels, so Dev and Hk correlate a little (Pearson r about 0.05).
`ground_truth` is the rule without ε, computed by counting the motifs in any tokens, so it
also scores generated sequences.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from d3_core.data.splits import write_onehot_splits
from d3_core.data.synthetic import Motif, MotifRule, check_size, check_tokens
from d3_core.io import atomic_path
from d3_deepstarr.data import split_keys
from d3_deepstarr.plugin import PLUGIN

__all__ = [
    "INTERACTIONS",
    "MOTIFS",
    "NOISE_SD",
    "RULE",
    "SIZES",
    "WEIGHTS",
    "ground_truth",
    "synthetic_split",
    "write_synthetic",
]

MOTIFS = (
    Motif("GATA", "AGATAAG"),
    Motif("AP-1", "TGACTCA"),
    Motif("Twist", "CAGCTG"),
    Motif("GAGA", "GAGAGAG"),
    Motif("Dref", "TATCGATA"),
    Motif("Ohler1", "GTGTGACC"),
    Motif("Ohler6", "AAAATACCA"),
    Motif("ETS", "CCGGAAGT"),
)
"""The planted words, in the row order of `WEIGHTS`."""

BASELINE = np.array([-1.0, -1.0])
"""(S,) label of a sequence without motifs: (Dev, Hk)."""

WEIGHTS = np.array(
    [
        [1.0, 0.0],  # GATA
        [0.8, 0.0],  # AP-1
        [0.6, 0.0],  # Twist
        [0.5, 0.3],  # GAGA: both programmes
        [0.0, 1.0],  # Dref
        [0.0, 0.8],  # Ohler1
        [0.0, 0.6],  # Ohler6
        [0.0, 0.6],  # ETS
    ]
)
"""(M, S) label gained per occurrence of each motif."""

INTERACTIONS = ((0, 1, 0, 0.4), (4, 5, 1, 0.3))
"""(motif a, motif b, label, weight): label += weight · n_a · n_b (GATA×AP-1, Dref×Ohler1)."""

NOISE_SD = 0.3
"""Standard deviation of the Gaussian noise added to each stored label."""

MAX_COPIES = 2  # copies of each motif per sequence: 0..2; 2 × 60 bp of motifs fit in 249 bp
GC = 0.42  # background GC content, about the Drosophila genome's

RULE = MotifRule(
    motifs=MOTIFS,
    baseline=tuple(BASELINE),
    weights=tuple(map(tuple, WEIGHTS)),
    interactions=INTERACTIONS,
    noise_sd=NOISE_SD,
    max_copies=MAX_COPIES,
    gc=GC,
)
"""The planted rule, scored and drawn by d3-core."""

SIZES = {
    "tiny": (256, 64, 64),  # unit tests
    "small": (8000, 1000, 1000),  # the demo: written in a few seconds
    "full": (402_296, 40_570, 41_186),  # the published DeepSTARR splits
}
"""Sequences in (train, valid, test) for each ``size`` of `write_synthetic`."""


def ground_truth(tokens: object) -> np.ndarray:
    """The rule's noise-free labels (Dev, Hk) of any sequences, from their motif counts.

    Args:
        tokens: (N, 249) integer tokens in [0, 4), a numpy array or torch tensor.

    Returns:
        (N, 2) float32 labels.

    Raises:
        D3InputError: The tokens have the wrong shape, dtype or range.
    """
    tokens = check_tokens(tokens, length=PLUGIN.sequence_length, dataset="DeepSTARR")
    return RULE.score(tokens)


def synthetic_split(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Draws sequences with planted motifs and their noisy labels.

    Args:
        rng: Source of randomness.
        n: Number of sequences N.

    Returns:
        tokens (N, 249) uint8 and labels (N, 2) float32.
    """
    return RULE.draw(rng, n, PLUGIN.sequence_length)


def write_synthetic(path: str | os.PathLike, *, seed: int = 0, size: str = "small") -> Path:
    """Writes a synthetic DeepSTARR file in the published HDF5 layout.

    Each split draws from its own stream of ``numpy.random.default_rng([seed, split])``, so a
    seed fixes the file. The file appears only when complete (written beside it, then renamed).

    Args:
        path: The HDF5 file to write; an existing file is replaced.
        seed: Seed of the sequences and the label noise.
        size: ``"tiny"`` (256/64/64), ``"small"`` (8,000/1,000/1,000) or ``"full"`` (the
            published 402,296/40,570/41,186).

    Returns:
        The path written.

    Raises:
        D3ConfigError: Unknown ``size``, or a seed that is not a non-negative integer.
    """
    sizes = check_size(size, seed, SIZES)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as out:
        out.attrs["synthetic"] = f"d3-deepstarr {PLUGIN.version} synthetic rule, seed {seed}"
        write_onehot_splits(
            out, draw=synthetic_split, sizes=sizes, seed=seed, keys=split_keys, layout="NCL",
            length=PLUGIN.sequence_length, width=PLUGIN.label_width,
            label_names=PLUGIN.label_names,
        )  # fmt: skip
    return Path(path)
