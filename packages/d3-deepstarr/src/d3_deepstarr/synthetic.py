"""Synthetic DeepSTARR data: enhancer motifs planted in random DNA, labels from a known rule.

The file has the published layout (docs/data-formats.md): HDF5 with ``X_train|X_valid|X_test`` (N,
4, 249) float32 one-hot and ``Y_train|Y_valid|Y_test`` (N, 2) float32 labels (Dev, Hk), so the data
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

import numpy as np

from d3_core.data.planted import PlantedMotifData, planted_sizes
from d3_core.data.synthetic import Motif, MotifRule
from d3_deepstarr.data import FILES

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

RULE = MotifRule(MOTIFS, BASELINE, WEIGHTS, INTERACTIONS)
"""The planted rule, scored and drawn by d3-core, with `MotifRule`'s defaults: label noise
N(0, 0.3²), 0..2 copies of each motif per sequence (2 × 60 bp of motifs fit in 249 bp) and a
background of 42 % GC (about the Drosophila genome's)."""

NOISE_SD = RULE.noise_sd
"""Standard deviation of the Gaussian noise added to each stored label."""

SIZES = planted_sizes(full=(402_296, 40_570, 41_186))  # full: the published DeepSTARR splits
"""Sequences in (train, valid, test) for each ``size`` of `write_synthetic`: ``"tiny"``
(256/64/64), ``"small"`` (8,000/1,000/1,000) and ``"full"``."""

DATA = PlantedMotifData(rule=RULE, sizes=SIZES, files=FILES)
"""The synthetic DeepSTARR data: `RULE` written in the published layout by d3-core."""

# The plugin's functions, d3-core's methods of `DATA`:
# ``ground_truth(tokens)``: the rule's noise-free labels of (N, L) tokens;
# ``synthetic_split(rng, n)``: n sequences drawn with planted motifs and their noisy labels;
# ``write_synthetic(path, *, seed=0, size="small")``: a synthetic file in the published layout.
ground_truth, synthetic_split, write_synthetic = (
    DATA.ground_truth, DATA.synthetic_split, DATA.write_synthetic,
)  # fmt: skip
