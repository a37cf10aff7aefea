"""Synthetic one-hot HDF5 data from a planted-motif rule: a dataset declares, d3-core writes.

Owns `PlantedMotifData`, which joins a dataset's `d3_core.data.synthetic.MotifRule`, its table
of split sizes and its file declaration (`d3_core.data.hdf5.OneHotH5Layout`) into the three
functions a dataset plugin points to: ``write_synthetic`` (a file in the real layout,
docs/data-formats.md), ``ground_truth`` (the rule's noise-free labels of any tokens) and
``synthetic_split`` (one split's draw). Also `planted_sizes`, the ``tiny``/``small``/``full`` table
those datasets share.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from d3_core.data.splits import write_onehot_splits
from d3_core.data.synthetic import MotifRule, check_size, check_tokens
from d3_core.io import atomic_path

__all__ = ["SMALL", "TINY", "PlantedMotifData", "planted_sizes"]

TINY = (256, 64, 64)
"""Sequences in (train, valid, test) of size ``"tiny"``: unit tests."""

SMALL = (8000, 1000, 1000)
"""Sequences in (train, valid, test) of size ``"small"``: the demo, written in a few seconds."""


def planted_sizes(full: tuple[int, int, int]) -> dict[str, tuple[int, int, int]]:
    """The sizes of a planted-motif dataset: `TINY`, `SMALL` and `full`, its published splits.

    Args:
        full: Sequences in (train, valid, test) of size ``"full"``.

    Returns:
        ``{"tiny", "small", "full"}`` → (train, valid, test).
    """
    return {"tiny": TINY, "small": SMALL, "full": tuple(full)}


@dataclass(frozen=True)
class PlantedMotifData:
    """A dataset's synthetic data: motifs planted by a rule, written in its HDF5 layout.

    Attributes:
        rule: The planted rule (motifs, label weights, noise) that draws and scores sequences.
        sizes: Sequences in (train, valid, test) per ``size`` name, e.g. `planted_sizes`.
        files: The dataset's file declaration: its plugin (length, labels, version), keys and
            one-hot layout.
    """

    rule: MotifRule
    sizes: Mapping[str, tuple[int, int, int]]
    files: Any

    def ground_truth(self, tokens: object) -> np.ndarray:
        """The rule's noise-free labels of any sequences, from their motif counts.

        Args:
            tokens: (N, L) integer tokens in [0, 4), a numpy array or torch tensor.

        Returns:
            (N, S) float32 labels.

        Raises:
            D3InputError: The tokens have the wrong shape, dtype or range.
        """
        plugin = self.files.plugin
        tokens = check_tokens(tokens, length=plugin.sequence_length, dataset=self.files.dataset)
        return self.rule.score(tokens)

    def synthetic_split(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Draws sequences with planted motifs and their noisy labels.

        Args:
            rng: Source of randomness.
            n: Number of sequences N.

        Returns:
            tokens (N, L) uint8 and labels (N, S) float32.
        """
        return self.rule.draw(rng, n, self.files.plugin.sequence_length)

    def write_synthetic(
        self, path: str | os.PathLike, *, seed: int = 0, size: str = "small"
    ) -> Path:
        """Writes a synthetic file in the dataset's published HDF5 layout.

        Each split draws from its own stream of ``numpy.random.default_rng([seed, split])``, so
        a seed fixes the file. The file appears only when complete (written beside it, then
        renamed); its ``synthetic`` attribute names the package, its version and the seed, its
        ``label_names`` attribute the plugin's labels.

        Args:
            path: The HDF5 file to write; an existing file is replaced.
            seed: Seed of the sequences and the label noise.
            size: A key of `sizes`: ``"tiny"``, ``"small"`` or ``"full"`` (the published splits).

        Returns:
            The path written.

        Raises:
            D3ConfigError: Unknown ``size``, or a seed that is not a non-negative integer.
        """
        import h5py

        plugin = self.files.plugin
        sizes = check_size(size, seed, dict(self.sizes))
        with atomic_path(path) as tmp, h5py.File(tmp, "w") as out:
            out.attrs["synthetic"] = (
                f"{plugin.distribution} {plugin.version} synthetic rule, seed {seed}"
            )
            write_onehot_splits(
                out, draw=self.synthetic_split, sizes=sizes, seed=seed, keys=self.files.split_keys,
                layout=self.files.layout, length=plugin.sequence_length, width=plugin.label_width,
                label_names=plugin.label_names,
            )  # fmt: skip
        return Path(path)
