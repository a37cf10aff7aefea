"""Synthetic lentiMPRA data: K562-like motifs planted in random DNA, one activity from a known
rule.

The file has the layout of d3-dna's lentiMPRA files (docs/data-formats.md#lentimpra): HDF5 with
``onehot_train|onehot_valid|onehot_test`` (N, 230, 4) float32 one-hot and
``y_train|y_valid|y_test`` (N, 1) float32 activities, and a ``label_names`` attribute naming the
cell line (K562), so the data loader, training and sampling run on it unchanged.

The rule. Background DNA is i.i.d. at 42 % GC. Each sequence receives, for each of four motifs,
0, 1 or 2 copies (uniformly) at random non-overlapping places:

- GATA1 ``AGATAAG``, the erythroid activator of K562;
- AP-1 ``TGACTCA``, active in every line, which GATA1 works with;
- C/EBP ``TTGCGCAA``, weakly active in K562;
- REST/NRSF ``GGACAGCGC`` (an RE1 core), a repressor outside neurons.

With n_m the number of (forward-strand, exact) occurrences of motif m in the sequence:

    K562 = -0.5 + 1.0 n_GATA1 + 0.7 n_AP1 + 0.3 n_CEBP - 0.6 n_REST
           + 0.3 n_GATA1 n_AP1 + ε,   ε ~ N(0, 0.3²)

a log2(RNA/DNA)-like scale, mostly between -2 and 5. `ground_truth` is the rule without ε,
computed by counting the motifs in any tokens, so it also scores generated sequences. One rule
serves both cell lines: ``d3 make-data`` and ``ground_truth`` take no cell, so a HepG2 run on
synthetic data learns this rule under the name it is given.
"""

from __future__ import annotations

import numpy as np

from d3_core.data.planted import PlantedMotifData, planted_sizes
from d3_core.data.synthetic import Motif, MotifRule
from d3_lentimpra.data import FILES

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
    Motif("AP-1", "TGACTCA"),
    Motif("CEBP", "TTGCGCAA"),
    Motif("REST", "GGACAGCGC"),
)
"""The planted words, in the row order of `WEIGHTS`."""

BASELINE = np.array([-0.5])
"""(S,) activity of a sequence without motifs."""

WEIGHTS = np.array(
    [
        [1.0],  # GATA1
        [0.7],  # AP-1
        [0.3],  # C/EBP
        [-0.6],  # REST: represses
    ]
)
"""(M, S) activity gained per occurrence of each motif."""

INTERACTIONS = ((0, 1, 0, 0.3),)
"""(motif a, motif b, label, weight): activity += weight · n_a · n_b (GATA1 × AP-1)."""

RULE = MotifRule(MOTIFS, BASELINE, WEIGHTS, INTERACTIONS)
"""The planted rule, scored and drawn by d3-core, with `MotifRule`'s defaults: label noise
N(0, 0.3²), 0..2 copies of each motif per sequence (2 × 31 bp of motifs fit easily in 230 bp) and
a background of 42 % GC (about the human genome's)."""

NOISE_SD = RULE.noise_sd
"""Standard deviation of the Gaussian noise added to each stored activity."""

SIZES = planted_sizes(full=(200_000, 25_000, 25_000))  # full: 8:1:1 of 250,000 sequences
"""Sequences in (train, valid, test) for each ``size`` of `write_synthetic`: ``"tiny"``
(256/64/64), ``"small"`` (8,000/1,000/1,000) and ``"full"`` (200,000/25,000/25,000, of the order
of a real lentiMPRA library)."""

DATA = PlantedMotifData(rule=RULE, sizes=SIZES, files=FILES)
"""The synthetic lentiMPRA data: `RULE` written in d3-dna's layout by d3-core."""

# The plugin's functions, d3-core's methods of `DATA`:
# ``ground_truth(tokens)``: the rule's noise-free activities of (N, L) tokens;
# ``synthetic_split(rng, n)``: n sequences drawn with planted motifs and their noisy activities;
# ``write_synthetic(path, *, seed=0, size="small")``: a synthetic file in the published layout.
ground_truth, synthetic_split, write_synthetic = (
    DATA.ground_truth, DATA.synthetic_split, DATA.write_synthetic,
)  # fmt: skip
