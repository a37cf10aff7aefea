"""Reading the labels to sample for: ``.npy``, ``.npz`` and CSV/TSV tables, checked row by row.

Every way a labels file can be wrong (missing, empty, binary, ragged rows, cells that are not
numbers, NaN or infinite values, the wrong number of columns or label shape) is one
`D3InputError` that names the file and, for tables, the line.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from d3_core.errors import D3InputError

__all__ = ["read_labels"]


def _check_width(
    labels: np.ndarray, label_shape: tuple[int, ...], names: Sequence[str], source: str
) -> None:
    if labels.ndim != len(label_shape) + 1 or tuple(labels.shape[1:]) != tuple(label_shape):
        layout = "(N, S)" if len(label_shape) == 1 else "(N, L, S)"
        raise D3InputError(
            f"{source}: labels of shape {tuple(labels.shape)}, but the model's dataset takes "
            f"{layout} = (N, {', '.join(map(str, label_shape))}) labels ({', '.join(names)})"
        )
    if not np.isfinite(labels).all():
        row = int(np.argwhere(~np.isfinite(labels))[0][0])
        raise D3InputError(
            f"{source}: labels hold NaN or infinite values (first in row {row + 1}); give finite "
            "numbers"
        )
    if len(labels) == 0:
        raise D3InputError(f"{source}: no label rows; give at least one row of labels")


def read_labels(
    path: str | Path, *, label_shape: tuple[int, ...], names: Sequence[str]
) -> np.ndarray:
    """Reads labels to sample for.

    Formats: ``.npy`` with (N, S) or (N, L, S); ``.npz`` with key ``labels``; ``.tsv`` or
    ``.csv`` with a header row naming the label columns (global labels only).

    Args:
        path: The file.
        label_shape: One row's expected shape, (S,) or (L, S).
        names: The label names, for messages and table headers.

    Returns:
        (N, *label_shape) float32.

    Raises:
        D3InputError: Unknown format, missing key or columns, wrong shape, non-finite values.
    """
    path = Path(path)
    if not path.is_file():
        raise D3InputError(f"labels file {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    if suffix not in (".npy", ".npz", ".tsv", ".csv"):
        raise D3InputError(f"labels file {str(path)!r}: use .npy, .npz, .tsv or .csv")
    try:
        if suffix == ".npy":
            labels = np.load(path, allow_pickle=False)
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                found = sorted(data)
                labels = data.get("labels")
        else:
            labels = _read_table(path, names, "\t" if suffix == ".tsv" else ",")
        if labels is None:
            raise D3InputError(f"{path}: no 'labels' array (found {found})")
        labels = np.asarray(labels, dtype=np.float32)
    except D3InputError:
        raise
    except (OSError, ValueError, EOFError) as err:  # a truncated .npy is an EOFError
        if path.stat().st_size == 0:
            raise D3InputError(f"labels file {str(path)!r} is empty; give labels") from None
        reason = " ".join(str(err).split()) or type(err).__name__
        raise D3InputError(f"cannot read labels file {str(path)!r}: {reason}") from None
    if (
        labels.ndim == len(label_shape)
        and len(label_shape) == 1
        and labels.shape == tuple(label_shape)
    ):
        labels = labels[None]  # a single row
    _check_width(labels, label_shape, names, str(path))
    return labels


def _read_table(path: Path, names: Sequence[str], delimiter: str) -> np.ndarray:
    try:
        with open(path, newline="", encoding="utf-8") as file:
            lines = list(csv.reader(file, delimiter=delimiter))
    except UnicodeDecodeError:
        raise D3InputError(
            f"labels file {str(path)!r} is not a text table (binary data?); give a "
            f"{'tab' if delimiter == chr(9) else 'comma'}-separated table with a header row"
        ) from None
    lines = [line for line in lines if any(cell.strip() for cell in line)]
    if not lines:
        raise D3InputError(
            f"labels file {str(path)!r} is empty; give a header row naming {list(names)} and "
            "one row per sequence"
        )
    header = [cell.strip() for cell in lines[0]]
    missing = [n for n in names if n not in header]
    if missing:
        raise D3InputError(
            f"{path}: the header must name the label columns {list(names)}; missing "
            f"{missing} (found {header})"
        )
    columns = [header.index(n) for n in names]
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        if len(line) != len(header):
            raise D3InputError(
                f"{path}: line {number} has {len(line)} columns but the header has "
                f"{len(header)}; every row needs one value per column"
            )
        try:
            rows.append([float(line[j]) for j in columns])
        except ValueError:
            bad = next(line[j] for j in columns if not _is_number(line[j]))
            raise D3InputError(
                f"cannot read labels file {str(path)!r}: line {number}: {bad!r} is not a number"
            ) from None
    return np.array(rows, dtype=np.float32).reshape(len(rows), len(names))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
