"""Synthetic MPRA data: cell-type motifs planted in random DNA, labels from a known rule.

The file has the paper benchmark's layout (docs/data-formats.md): HDF5 with
``x_train|x_valid|x_test`` (N, 200, 4) float32 one-hot and ``y_train|y_valid|y_test`` (N, 3) float32
labels (K562, HepG2, SK-N-SH), so the data loader, training and sampling run on it unchanged.

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

import numpy as np

from d3_core.data.planted import PlantedMotifData, planted_sizes
from d3_core.data.synthetic import Motif, MotifRule
from d3_mpra.data import FILES

__all__ = [
    "DATA",
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

RULE = MotifRule(MOTIFS, BASELINE, WEIGHTS, INTERACTIONS)
"""The planted rule, scored and drawn by d3-core, with `MotifRule`'s defaults: label noise
N(0, 0.3²), 0..2 copies of each motif per sequence (2 × 47 bp of motifs fit in 200 bp) and a
background of 42 % GC (about the human genome's)."""

NOISE_SD = RULE.noise_sd
"""Standard deviation of the Gaussian noise added to each stored label."""

SIZES = planted_sizes(full=(224_000, 32_000, 64_000))  # full: 7:1:2 with a 64k test set
"""Sequences in (train, valid, test) for each ``size`` of `write_synthetic`: ``"tiny"``
(256/64/64), ``"small"`` (8,000/1,000/1,000) and ``"full"`` (the benchmark's size)."""

DATA = PlantedMotifData(rule=RULE, sizes=SIZES, files=FILES)
"""The synthetic MPRA data: `RULE` written in the benchmark's layout by d3-core."""

# The plugin's functions, d3-core's methods of `DATA`:
# ``ground_truth(tokens)``: the rule's noise-free labels of (N, L) tokens;
# ``synthetic_split(rng, n)``: n sequences drawn with planted motifs and their noisy labels;
# ``write_synthetic(path, *, seed=0, size="small")``: a synthetic file in the published layout.
ground_truth, synthetic_split, write_synthetic = (
    DATA.ground_truth, DATA.synthetic_split, DATA.write_synthetic,
)  # fmt: skip
