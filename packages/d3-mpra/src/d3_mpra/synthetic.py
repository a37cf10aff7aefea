"""Synthetic MPRA data: cell-type motifs planted in random DNA, labels from a known rule.

The file has the paper benchmark's layout (SPEC §11): HDF5 with ``x_train|x_valid|x_test``
(N, 200, 4) float32 one-hot and ``y_train|y_valid|y_test`` (N, 3) float32 labels (K562, HepG2,
SK-N-SH), so the data loader, training and sampling run on it unchanged.

The rule. Background DNA is i.i.d. at 42 % GC. Each sequence receives, for each of six
motifs, 0, 1 or 2 copies (uniformly) at random non-overlapping places:

- GATA1 ``AGATAAG`` (erythroid: K562);
- HNF4A ``CAAAGTCCA`` and C/EBP ``TTGCGCAA`` (hepatocyte: HepG2; C/EBP also weakly in K562);
- SOX ``AACAATG`` (neural: SK-N-SH);
- AP-1 ``TGACTCA``, active in all three lines;
- REST/NRSF ``GGACAGCGC`` (an RE1 core), a repressor in the non-neural lines.

With n_m the number of (forward-strand, exact) occurrences of motif m in the sequence:

    K562    = -0.5 + 1.0 n_GATA1 + 0.3 n_CEBP + 0.7 n_AP1 - 0.4 n_REST
              + 0.3 n_GATA1 n_AP1 + ε
    HepG2   = -0.5 + 1.0 n_HNF4A + 0.6 n_CEBP + 0.7 n_AP1 - 0.4 n_REST
              + 0.3 n_HNF4A n_CEBP + ε
    SK-N-SH = -0.5 + 1.0 n_SOX + 0.7 n_AP1 + ε

with ε ~ N(0, 0.3²) independent per label: a log2(RNA/DNA)-like scale, mostly between -2
and 6. The shared AP-1 (and REST) terms make the three labels correlate (Pearson r 0.2-0.4),
as the real cell lines do. `ground_truth` is the rule without ε, computed by counting the
motifs in any tokens, so it also scores generated sequences.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from d3_core.data.splits import write_onehot_splits
from d3_core.data.synthetic import Motif, MotifRule, check_size, check_tokens
from d3_core.io import atomic_path
from d3_mpra.data import split_keys
from d3_mpra.plugin import PLUGIN

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
    Motif("GATA1", "AGATAAG"),
    Motif("HNF4A", "CAAAGTCCA"),
    Motif("CEBP", "TTGCGCAA"),
    Motif("SOX", "AACAATG"),
    Motif("AP-1", "TGACTCA"),
    Motif("REST", "GGACAGCGC"),
)
"""The planted words, in the row order of `WEIGHTS`."""

BASELINE = np.array([-0.5, -0.5, -0.5])
"""(S,) label of a sequence without motifs: (K562, HepG2, SK-N-SH)."""

WEIGHTS = np.array(
    [
        [1.0, 0.0, 0.0],  # GATA1
        [0.0, 1.0, 0.0],  # HNF4A
        [0.3, 0.6, 0.0],  # C/EBP
        [0.0, 0.0, 1.0],  # SOX
        [0.7, 0.7, 0.7],  # AP-1: every line
        [-0.4, -0.4, 0.0],  # REST: represses outside neurons
    ]
)
"""(M, S) label gained per occurrence of each motif."""

INTERACTIONS = ((0, 4, 0, 0.3), (1, 2, 1, 0.3))
"""(motif a, motif b, label, weight): label += weight · n_a · n_b (GATA1×AP-1, HNF4A×C/EBP)."""

NOISE_SD = 0.3
"""Standard deviation of the Gaussian noise added to each stored label."""

MAX_COPIES = 2  # copies of each motif per sequence: 0..2; 2 × 47 bp of motifs fit in 200 bp
GC = 0.42  # background GC content, about the human genome's

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
    "full": (224_000, 32_000, 64_000),  # the benchmark's size: 7:1:2 with a 64k test set
}
"""Sequences in (train, valid, test) for each ``size`` of `write_synthetic`."""


def ground_truth(tokens: object) -> np.ndarray:
    """The rule's noise-free labels (K562, HepG2, SK-N-SH) of any sequences, from motif counts.

    Args:
        tokens: (N, 200) integer tokens in [0, 4), a numpy array or torch tensor.

    Returns:
        (N, 3) float32 labels.

    Raises:
        D3InputError: The tokens have the wrong shape, dtype or range.
    """
    tokens = check_tokens(tokens, length=PLUGIN.sequence_length, dataset="MPRA")
    return RULE.score(tokens)


def synthetic_split(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Draws sequences with planted motifs and their noisy labels.

    Args:
        rng: Source of randomness.
        n: Number of sequences N.

    Returns:
        tokens (N, 200) uint8 and labels (N, 3) float32.
    """
    return RULE.draw(rng, n, PLUGIN.sequence_length)


def write_synthetic(path: str | os.PathLike, *, seed: int = 0, size: str = "small") -> Path:
    """Writes a synthetic MPRA file in the paper benchmark's HDF5 layout.

    Each split draws from its own stream of ``numpy.random.default_rng([seed, split])``, so a
    seed fixes the file. The file appears only when complete (written beside it, then renamed).

    Args:
        path: The HDF5 file to write; an existing file is replaced.
        seed: Seed of the sequences and the label noise.
        size: ``"tiny"`` (256/64/64), ``"small"`` (8,000/1,000/1,000) or ``"full"``
            (224,000/32,000/64,000).

    Returns:
        The path written.

    Raises:
        D3ConfigError: Unknown ``size``, or a seed that is not a non-negative integer.
    """
    sizes = check_size(size, seed, SIZES)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as out:
        out.attrs["synthetic"] = f"d3-mpra {PLUGIN.version} synthetic rule, seed {seed}"
        write_onehot_splits(
            out, draw=synthetic_split, sizes=sizes, seed=seed, keys=split_keys, layout="NLC",
            length=PLUGIN.sequence_length, width=PLUGIN.label_width,
            label_names=PLUGIN.label_names,
        )  # fmt: skip
    return Path(path)
