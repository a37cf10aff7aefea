"""Designing sequences from a checkpoint: labels in, FASTA + NPZ + provenance out.

Sequence i is drawn with its own generator seeded from ``step_seed(seed, i)``: the start noise,
every predictor step and the final denoiser draw from it alone, so what sequence i gets does not
depend on the batch size, on which other rows are sampled with it, or on the machine or shard
that samples it. A job that samples sequences ``first_index ... first_index + n - 1`` of a larger
run (a resumed run, one device's share) gets exactly those sequences of the whole run.
"""

from __future__ import annotations

import json
import os
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
from d3_core.generation.filesets import named, replace_set
from d3_core.generation.labels import read_labels
from d3_core.seeds import check_seed, step_seed

__all__ = [
    "OUTPUT_FILES",
    "SampleRun",
    "check_fits",
    "read_labels",
    "read_samples",
    "sample_sequences",
    "write_samples",
]

OUTPUT_FILES = ("samples.fasta", "samples.npz", "labels.tsv", "provenance.json")
"""The files of a sample set (``labels.tsv`` only for global labels)."""


@dataclass(frozen=True)
class SampleRun:
    """What `sample_sequences` produced."""

    tokens: np.ndarray  # (N, L) uint8
    labels: np.ndarray  # (N, S) or (N, L, S) float32
    seconds: float
    first_index: int = 0  # the run-wide index of tokens[0] (its seed is step_seed(seed, index))


def _available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux's MemAvailable), or None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as file:
            for line in file:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def check_fits(count: int, length: int, label_shape: Sequence[int], *, option: str) -> None:
    """Refuses a number of sequences whose outputs could not be held in memory.

    A sample set of N sequences of L bp holds N x L token bytes, the (N, L, 4) float32 one-hot
    of ``samples.npz``, the labels and the FASTA text: about N x (18 L + 4 S + 40) bytes.

    Raises:
        D3InputError: `count` is below 1, or the estimate exceeds the available memory.
    """
    if count < 1:
        raise D3InputError(f"{option} must be at least 1, got {count}")
    per_sequence = 18 * length + 4 * int(np.prod(label_shape)) + 40
    need = count * per_sequence
    have = _available_memory()
    if have is not None and need > have:
        most = max(1, have // per_sequence)
        raise D3InputError(
            f"{option} {count}: {count} sequences of {length} bp need about "
            f"{need / 2**30:.3g} GiB, more than the {have / 2**30:.3g} GiB of memory available; "
            f"ask for at most about {most} per run and shard larger sets (d3 sample "
            "--first-index)"
        )


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
    first_index: int = 0,
) -> SampleRun:
    """Draws one sequence per label row with the checkpoint's EMA model.

    Args:
        loaded: The restored model (`d3_core.checkpoints.load.load_checkpoint`).
        labels: (N, S) or (N, L, S) float labels.
        seed: Sequence i uses its own generator, seeded with ``step_seed(seed, i)``; it draws
            the start noise, every predictor step and the final denoising jump of that
            sequence, so the result does not depend on `batch_size` or on the other rows.
        steps: Sampler steps.
        predictor: ``"analytic"`` or ``"euler"``.
        batch_size: Sequences per forward pass; does not change the result.
        progress: Show a progress bar on stderr.
        guidance: Classifier-free and/or oracle guidance (`d3_core.diffusion.guidance`); None: unguided.
        oracle: The `d3_core.oracles.Oracle` oracle guidance uses.
        fixed: Positions held at given tokens in every sequence.
        first_index: The run-wide index of ``labels[0]``: row r is sequence
            ``first_index + r`` and uses its seed. Sampling rows 4..7 of a run's labels with
            ``first_index=4`` gives exactly sequences 4..7 of the whole run, so a run can be
            resumed or split across devices (``d3 sample --first-index``) and the shards
            concatenated.

    Raises:
        D3InputError: A negative seed or first index, or more sequences than memory holds.
    """
    check_seed(seed)
    check_seed(first_index, option="first_index")
    labels = np.asarray(labels, dtype=np.float32)
    length = loaded.cfg.dataset.sequence_length
    check_fits(len(labels), length, labels.shape[1:], option="number of sequences")
    model = loaded.model
    score_fn = guided_score_fn(model, guidance or Guidance(), graph=loaded.graph, oracle=oracle)
    device = next(model.parameters()).device
    tokens = np.empty((len(labels), length), dtype=np.uint8)
    started = time.perf_counter()
    batches = range(0, len(labels), batch_size)
    with _progress(len(batches) * steps, progress) as bar, torch.inference_mode():
        for start in batches:
            part = torch.as_tensor(labels[start : start + batch_size], device=device)
            generators = [
                torch.Generator(device).manual_seed(step_seed(seed, first_index + i))
                for i in range(start, start + len(part))
            ]
            drawn = sample(
                score_fn, part, length=length, graph=loaded.graph, noise=loaded.noise,
                predictor=predictor, steps=steps, generator=generators, fixed=fixed,
                callback=lambda info: bar.update(1),
            )  # fmt: skip
            tokens[start : start + len(part)] = drawn.cpu().numpy()
    seconds = time.perf_counter() - started
    return SampleRun(tokens=tokens, labels=labels, seconds=seconds, first_index=first_index)


def _fasta(tokens: np.ndarray, labels: np.ndarray, names: Sequence[str], first: int) -> str:
    lookup = np.frombuffer(ALPHABET.encode(), dtype=np.uint8)
    lines = []
    for i, row in enumerate(tokens):
        header = f">sample_{first + i}"
        if labels.ndim == 2:
            header += " " + " ".join(f"{n}={v:.4g}" for n, v in zip(names, labels[i], strict=True))
        lines += [header, lookup[row].tobytes().decode()]
    return "\n".join(lines) + "\n"


def write_samples(
    out: Path, run: SampleRun, *, names: Sequence[str], provenance: dict[str, Any]
) -> list[Path]:
    """Writes ``samples.fasta``, ``samples.npz``, ``labels.tsv`` and ``provenance.json``.

    ``samples.npz`` holds ``arr_0`` (N, L, 4) float32 one-hot, the layout the reference
    package writes, plus ``tokens`` (N, L) uint8 (A, C, G, T = 0..3) and ``labels``. FASTA
    headers and the table's index are run-wide indices (``run.first_index`` on), so shards of
    one run concatenate into that run's files. The set replaces an earlier one in `out` only once
    every file is written (`d3_core.generation.filesets.replace_set`): a failure leaves the
    earlier set whole and no partial file.

    Raises:
        D3OutputError: The disk is full, read-only or forbidden (naming the file).
    """
    out = Path(out)
    first = run.first_index
    names_written = ["samples.fasta", "samples.npz"]
    with replace_set(out, names=OUTPUT_FILES) as stage:
        with named(stage / "samples.fasta") as path, open(path, "w", encoding="utf-8") as file:
            file.write(_fasta(run.tokens, run.labels, names, first))
        with named(stage / "samples.npz") as path, open(path, "wb") as file:
            np.savez(
                file,
                arr_0=tokens_to_onehot(run.tokens, layout="NLC"),
                tokens=run.tokens,
                labels=run.labels,
                label_names=np.array(list(names)),
            )
        if run.labels.ndim == 2:
            with named(stage / "labels.tsv") as path, open(path, "w", encoding="utf-8") as file:
                file.write("index\t" + "\t".join(names) + "\n")
                for i, row in enumerate(run.labels):
                    file.write(f"{first + i}\t" + "\t".join(f"{v:.6g}" for v in row) + "\n")
            names_written.append("labels.tsv")
        with named(stage / "provenance.json") as path, open(path, "w", encoding="utf-8") as file:
            json.dump(provenance, file, indent=2)
            file.write("\n")
        names_written.append("provenance.json")
    return [out / name for name in names_written]


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
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8") if b"\0" not in raw else None
    except UnicodeDecodeError:
        text = None
    if text is None:
        raise D3InputError(
            f"{path} is neither an NPZ file nor FASTA text (it holds binary data); give "
            "samples.npz, an NPZ of one-hot arrays, or FASTA"
        )
    sequences, current = [], []
    for line in text.splitlines():
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
    for i, sequence in enumerate(sequences):
        bad = sorted(set(sequence.upper()) - set(ALPHABET))
        if bad:
            raise D3InputError(
                f"{path}: sequence {i + 1} holds letters other than A, C, G, T: {bad}"
            )
    return np.stack([encode(s) for s in sequences]).astype(np.uint8)
