"""Designing sequences from a checkpoint: labels in, FASTA + NPZ + provenance out.

Sequence i is drawn with its own generator seeded from (seed, i), so what a label row gets
does not depend on the batch size or on which other rows are sampled with it.
"""

from __future__ import annotations

import csv
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from d3_core.checkpoints.load import LoadedModel
from d3_core.data.loader import tokens_to_onehot
from d3_core.data.synthetic import ALPHABET
from d3_core.diffusion.guidance import Guidance, guided_score_fn
from d3_core.diffusion.sampling import FixedPositions, sample
from d3_core.errors import D3InputError
from d3_core.io import atomic_path, atomic_write
from d3_core.seeds import step_seed

__all__ = ["SampleRun", "read_labels", "read_samples", "sample_sequences", "write_samples"]

OUTPUT_FILES = ("samples.fasta", "samples.npz", "labels.tsv", "provenance.json")


@dataclass(frozen=True)
class SampleRun:
    """What `sample_sequences` produced."""

    tokens: np.ndarray  # (N, L) uint8
    labels: np.ndarray  # (N, S) or (N, L, S) float32
    seconds: float


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
        raise D3InputError(f"{source}: labels hold NaN or infinite values")


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
    except (OSError, ValueError) as err:
        raise D3InputError(f"cannot read labels file {str(path)!r}: {err}") from None
    if (
        labels.ndim == len(label_shape)
        and len(label_shape) == 1
        and labels.shape == tuple(label_shape)
    ):
        labels = labels[None]  # a single row
    _check_width(labels, label_shape, names, str(path))
    return labels


def _read_table(path: Path, names: Sequence[str], delimiter: str) -> np.ndarray:
    with open(path, newline="") as file:
        reader = csv.DictReader(file, delimiter=delimiter)
        header = list(reader.fieldnames or [])
        missing = [n for n in names if n not in header]
        if missing:
            raise D3InputError(
                f"{path}: the header must name the label columns {list(names)}; missing "
                f"{missing} (found {header})"
            )
        rows = [[float(row[n]) for n in names] for row in reader]
    return np.array(rows, dtype=np.float32).reshape(len(rows), len(names))


def _progress(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="step", desc="sampling", disable=not enabled, file=sys.stderr)


def sample_sequences(
    loaded: LoadedModel,
    labels: np.ndarray,
    *,
    seed: int = 0,
    steps: int = 128,
    predictor: str = "analytic",
    batch_size: int = 64,
    progress: bool = True,
    guidance: Guidance | None = None,
    oracle: Any = None,
    fixed: FixedPositions | None = None,
) -> SampleRun:
    """Draws one sequence per label row with the checkpoint's EMA model.

    Args:
        loaded: The restored model (`d3_core.checkpoints.load.load_checkpoint`).
        labels: (N, S) or (N, L, S) float labels.
        seed: Sequence i uses a generator seeded from (seed, i).
        steps: Sampler steps.
        predictor: ``"analytic"`` or ``"euler"``.
        batch_size: Sequences per forward pass; does not change the result.
        progress: Show a progress bar on stderr.
        guidance: Classifier-free and/or oracle guidance (`d3_core.diffusion.guidance`); None: unguided.
        oracle: The `d3_core.oracles.Oracle` oracle guidance uses.
        fixed: Positions held at given tokens in every sequence.
    """
    model = loaded.model
    score_fn = guided_score_fn(model, guidance or Guidance(), graph=loaded.graph, oracle=oracle)
    device = next(model.parameters()).device
    length = loaded.cfg.dataset.sequence_length
    tokens = np.empty((len(labels), length), dtype=np.uint8)
    started = time.perf_counter()
    batches = range(0, len(labels), batch_size)
    with _progress(len(batches) * steps, progress) as bar, torch.inference_mode():
        for start in batches:
            part = torch.as_tensor(labels[start : start + batch_size], device=device)
            generators = [
                torch.Generator(device).manual_seed(step_seed(seed, i))
                for i in range(start, start + len(part))
            ]
            drawn = sample(
                score_fn, part, length=length, graph=loaded.graph, noise=loaded.noise,
                predictor=predictor, steps=steps, generator=generators, fixed=fixed,
                callback=lambda info: bar.update(1),
            )  # fmt: skip
            tokens[start : start + len(part)] = drawn.cpu().numpy()
    return SampleRun(tokens=tokens, labels=labels, seconds=time.perf_counter() - started)


def _fasta(tokens: np.ndarray, labels: np.ndarray, names: Sequence[str]) -> str:
    lookup = np.frombuffer(ALPHABET.encode(), dtype=np.uint8)
    lines = []
    for i, row in enumerate(tokens):
        header = f">sample_{i}"
        if labels.ndim == 2:
            header += " " + " ".join(f"{n}={v:.4g}" for n, v in zip(names, labels[i], strict=True))
        lines += [header, lookup[row].tobytes().decode()]
    return "\n".join(lines) + "\n"


def write_samples(
    out: Path, run: SampleRun, *, names: Sequence[str], provenance: dict[str, Any]
) -> list[Path]:
    """Writes ``samples.fasta``, ``samples.npz``, ``labels.tsv`` and ``provenance.json``.

    ``samples.npz`` holds ``arr_0`` (N, L, 4) float32 one-hot, the layout the reference
    package writes, plus ``tokens`` (N, L) uint8 (A, C, G, T = 0..3) and ``labels``. Every file
    is written atomically, provenance last.
    """
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(out / "samples.fasta") as file:
        file.write(_fasta(run.tokens, run.labels, names))
    with atomic_path(out / "samples.npz") as tmp, open(tmp, "wb") as file:
        np.savez(
            file,
            arr_0=tokens_to_onehot(run.tokens, layout="NLC"),
            tokens=run.tokens,
            labels=run.labels,
            label_names=np.array(list(names)),
        )
    written = [out / "samples.fasta", out / "samples.npz"]
    if run.labels.ndim == 2:
        with atomic_write(out / "labels.tsv") as file:
            file.write("index\t" + "\t".join(names) + "\n")
            for i, row in enumerate(run.labels):
                file.write(f"{i}\t" + "\t".join(f"{v:.6g}" for v in row) + "\n")
        written.append(out / "labels.tsv")
    with atomic_write(out / "provenance.json") as file:
        json.dump(provenance, file, indent=2)
        file.write("\n")
    written.append(out / "provenance.json")
    return written


def read_samples(path: str | Path, *, length: int) -> np.ndarray:
    """Reads designed sequences from any tool as tokens.

    Accepts our ``samples.npz`` (``tokens``), any NPZ whose ``arr_0`` (or single array) is one-hot
    (N, L, 4) or (N, 4, L), and FASTA.

    Args:
        path: The file.
        length: The dataset's sequence length L.

    Returns:
        (N, L) uint8 tokens.

    Raises:
        D3InputError: Unreadable file, sequences of another length, or not one-hot A/C/G/T.
    """
    from d3_core.data.loader import onehot_to_tokens
    from d3_core.data.synthetic import encode

    path = Path(path)
    if not path.is_file():
        raise D3InputError(f"samples file {str(path)!r} does not exist")
    with open(path, "rb") as file:
        head = file.read(4)
    if head.startswith(b"PK"):
        try:
            with np.load(path, allow_pickle=False) as data:
                if "tokens" in data:
                    tokens = np.asarray(data["tokens"])
                    source = "tokens"
                else:
                    key = "arr_0" if "arr_0" in data else (data.files[0] if data.files else None)
                    if key is None:
                        raise D3InputError(f"{path} holds no arrays")
                    array = data[key]
                    layout = "NLC" if array.ndim == 3 and array.shape[-1] == 4 else "NCL"
                    if array.ndim != 3 or array.shape[1:] not in ((length, 4), (4, length)):
                        raise D3InputError(
                            f"{path}:{key} has shape {array.shape}; expected one-hot "
                            f"(N, {length}, 4) or (N, 4, {length})"
                        )
                    return onehot_to_tokens(array, layout=layout, source=f"{path}:{key}")
        except (OSError, ValueError) as err:
            raise D3InputError(f"cannot read {path} as NPZ: {err}") from None
        if tokens.ndim != 2 or tokens.shape[1] != length or (tokens.size and tokens.max() > 3):
            raise D3InputError(
                f"{path}:{source} must be (N, {length}) tokens in 0..3; got shape {tokens.shape}"
            )
        return tokens.astype(np.uint8)
    sequences, current = [], []
    for line in path.read_text().splitlines():
        if line.startswith(">"):
            if current:
                sequences.append("".join(current))
            current = []
        elif line.strip():
            current.append(line.strip())
    if current:
        sequences.append("".join(current))
    if not sequences:
        raise D3InputError(f"{path} is neither an NPZ file nor FASTA with sequences")
    wrong = [i for i, s in enumerate(sequences) if len(s) != length]
    if wrong:
        raise D3InputError(
            f"{path}: sequence {wrong[0] + 1} is {len(sequences[wrong[0]])} bp; every sequence "
            f"must be {length} bp"
        )
    return np.stack([encode(s) for s in sequences]).astype(np.uint8)
