"""Sei's output names: ``target.sei.names``, one ``|``-separated line per output, and the
indices of the outputs of one assay (H3K4me3, the Promoter readout)."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from d3_core.errors import D3InputError

READOUT_ASSAY = "H3K4me3"
"""The assay whose outputs the Promoter readout averages."""


@dataclass(frozen=True)
class SeiTarget:
    """One Sei output, a line of ``target.sei.names`` such as ``HepG2|H3K4me3|ID:1234|...``.

    Attributes:
        context: The first field (cell type or tissue).
        assay: The second field (e.g. ``"H3K4me3"``, ``"DNase"``, a factor's name).
        name: The whole line.
    """

    context: str
    assay: str
    name: str


def read_sei_names(path: str | os.PathLike, n_outputs: int | None = None) -> list[SeiTarget]:
    """Reads ``target.sei.names``: one ``|``-separated line per Sei output, in output order.

    Args:
        path: The names file (21,907 lines for the published weights, 2,350 of them H3K4me3).
        n_outputs: The weights' output width; the line count must equal it when given.

    Returns:
        One `SeiTarget` per line; fields are stripped of surrounding spaces.

    Raises:
        D3InputError: The file is missing or empty, a line has no second field, or the line
            count differs from `n_outputs`.
    """
    path = Path(path)
    if not path.is_file():
        raise D3InputError(f"Sei names file {str(path)!r} does not exist")
    lines = path.read_text(encoding="utf-8").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise D3InputError(
            f"Sei names file {str(path)!r} is empty; expected one line per output such as "
            f"'HepG2|H3K4me3|ID:1234'"
        )
    targets = []
    for number, line in enumerate(lines, start=1):
        fields = [field.strip() for field in line.split("|")]
        if len(fields) < 2 or not fields[1]:
            raise D3InputError(
                f"{path}, line {number}: {line!r} has no second '|'-separated field (the "
                f"assay); each line must read like 'HepG2|H3K4me3|ID:1234'"
            )
        targets.append(SeiTarget(context=fields[0], assay=fields[1], name=line.strip()))
    if n_outputs is not None and len(targets) != n_outputs:
        raise D3InputError(
            f"{path} names {len(targets)} outputs but the Sei weights have {n_outputs}; use the "
            f"target.sei.names released with these weights"
        )
    return targets


def assay_indices(names: Sequence[SeiTarget], assay: str = READOUT_ASSAY) -> np.ndarray:
    """Positions of the outputs whose assay (second field) is `assay`, exactly (case matters).

    Args:
        names: From `read_sei_names`.
        assay: The assay to read out.

    Returns:
        (K,) int64 output indices, ascending; K = 2,350 for H3K4me3 in the published names.

    Raises:
        D3InputError: No output has that assay (the message lists the commonest ones present).
    """
    indices = np.array([i for i, t in enumerate(names) if t.assay == assay], dtype=np.int64)
    if indices.size == 0:
        counts = Counter(t.assay for t in names)
        common = ", ".join(repr(a) for a, _ in counts.most_common(6))
        raise D3InputError(
            f"no Sei output has the assay {assay!r}; the {len(names)} names hold "
            f"{len(counts)} assays, e.g. {common}. Check the names file is Sei's target.sei.names"
        )
    return indices
