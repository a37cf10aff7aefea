"""Batches of (tokens, labels) for training: a Lightning data module over any plugin's datasets."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, Subset

from d3_core.errors import D3ConfigError, D3InputError

__all__ = [
    "D3DataModule",
    "StepBatchSampler",
    "TokenDataset",
    "check_example",
    "check_label_names",
    "label_names_of",
    "onehot_error",
    "onehot_to_tokens",
    "tokens_to_onehot",
]

_CHUNK = 8192  # rows converted at a time: bounds the float copies of a large HDF5 array


def onehot_to_tokens(onehot, *, layout: str, source: str) -> np.ndarray:
    """Converts one-hot DNA to tokens, checking that every position is exactly one of A/C/G/T.

    Reads `onehot` in chunks of rows, so an HDF5 dataset is never loaded as floats at once.

    Args:
        onehot: (N, 4, L) for layout ``"NCL"`` or (N, L, 4) for ``"NLC"``; a numpy array or
            anything sliceable along its first axis to one (e.g. an ``h5py.Dataset``).
        layout: ``"NCL"`` or ``"NLC"``.
        source: Where the array comes from, for error messages, e.g. ``"data.h5:X_train"``.

    Returns:
        (N, L) uint8 tokens in [0, 4).

    Raises:
        D3InputError: The array has the wrong rank or channel count, or a position whose four
            channels are not one 1 and three 0s (naming the first such sequence and position).
    """
    if layout not in ("NCL", "NLC"):
        raise D3ConfigError(f"layout must be 'NCL' or 'NLC', got {layout!r}")
    shape = tuple(onehot.shape)
    axis = 1 if layout == "NCL" else 2
    if len(shape) != 3 or shape[axis] != 4:
        want = "(N, 4, L)" if layout == "NCL" else "(N, L, 4)"
        raise D3InputError(f"{source}: expected one-hot of shape {want}, got {shape}")
    n = shape[0]
    length = shape[2] if layout == "NCL" else shape[1]
    tokens = np.empty((n, length), dtype=np.uint8)
    for start in range(0, n, _CHUNK):
        block = np.asarray(onehot[start : start + _CHUNK])
        if layout == "NCL":
            block = block.transpose(0, 2, 1)  # (n, 4, L) -> (n, L, 4)
        error = onehot_error(block, start, source)
        if error:
            raise D3InputError(error)
        tokens[start : start + len(block)] = block.argmax(axis=-1)
    return tokens


def onehot_error(block: np.ndarray, first_row: int, source: str) -> str | None:
    """Why one-hot rows (n, L, 4) are not DNA, naming the first bad sequence and position; None
    when every position is exactly one of A/C/G/T.

    Args:
        block: (n, L, 4) one-hot rows, any numeric dtype.
        first_row: The index of the block's first row in its whole array, for the message.
        source: Where the array comes from, e.g. ``"data.h5:X_train"``.
    """
    valid = ((block == 0) | (block == 1)).all(axis=-1) & (block.sum(axis=-1) == 1)
    if valid.all():
        return None
    row, pos = np.argwhere(~valid)[0]
    return (
        f"{source}: sequence {first_row + row}, position {pos} is not one-hot A/C/G/T "
        f"(channels {block[row, pos].tolist()}); every position needs one 1 and three 0s"
    )


def tokens_to_onehot(tokens, *, layout: str = "NLC", dtype=np.float32) -> np.ndarray:
    """(N, L) tokens in [0, 4) as one-hot (N, L, 4) (``"NLC"``) or (N, 4, L) (``"NCL"``)."""
    tokens = np.asarray(tokens)
    onehot = np.eye(4, dtype=dtype)[tokens]  # (N, L, 4)
    return onehot if layout == "NLC" else onehot.transpose(0, 2, 1).copy()


class TokenDataset(Dataset):
    """Sequences held compactly as uint8 tokens, with their labels.

    Args:
        tokens: (N, L) integer tokens in [0, 4).
        labels: (N, S) or (N, L, S) float labels.
        source: Where the data comes from, for error messages.
        label_names: The names the data file gives its label columns, if it names them.

    Raises:
        D3InputError: Shapes disagree, tokens are out of range or labels are not finite.
    """

    def __init__(
        self,
        tokens,
        labels,
        *,
        source: str = "dataset",
        label_names: tuple[str, ...] | None = None,
    ) -> None:
        tokens = np.asarray(tokens)
        labels = np.asarray(labels, dtype=np.float32)
        if tokens.ndim != 2:
            raise D3InputError(f"{source}: tokens must be (N, L), got shape {tokens.shape}")
        if labels.ndim not in (2, 3) or labels.shape[0] != tokens.shape[0]:
            raise D3InputError(
                f"{source}: labels must be (N, S) or (N, L, S) with N = {tokens.shape[0]}, "
                f"got shape {labels.shape}"
            )
        if tokens.size and (tokens.min() < 0 or tokens.max() > 3):
            raise D3InputError(f"{source}: tokens must lie in [0, 4)")
        if not np.isfinite(labels).all():
            row = int(np.argwhere(~np.isfinite(labels.reshape(len(labels), -1)))[0, 0])
            raise D3InputError(f"{source}: labels of sequence {row} are not finite (NaN or inf)")
        self.tokens = torch.from_numpy(tokens.astype(np.uint8, copy=False))
        self.labels = torch.from_numpy(labels)
        self.source = source
        self.label_names = tuple(label_names) if label_names is not None else None

    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.tokens[index].long(), self.labels[index]


def check_label_names(names: Any, *, width: int, source: str) -> tuple[str, ...]:
    """Label names read from a file or a config, checked: `width` distinct non-empty strings.

    Args:
        names: A sequence of names (bytes are decoded as UTF-8, as HDF5 attributes store them).
        width: The dataset's number of label columns.
        source: Where the names come from, for error messages.

    Raises:
        D3InputError: Not a sequence of `width` distinct non-empty strings.
    """
    if isinstance(names, (str, bytes)) or not hasattr(names, "__len__"):
        raise D3InputError(
            f"{source}: label names must be a list of {width} strings, got {names!r}"
        )
    decoded = [n.decode() if isinstance(n, bytes) else n for n in list(names)]
    if (
        len(decoded) != width
        or not all(isinstance(n, str) and n.strip() for n in decoded)
        or len(set(decoded)) != width
    ):
        raise D3InputError(
            f"{source}: label names {decoded!r} are not {width} distinct non-empty names, one "
            f"per label column"
        )
    return tuple(str(n) for n in decoded)


def label_names_of(
    plugin: Any, splits: dict[str, Any] | None = None, configured: Any = None
) -> tuple[str, tuple[str, ...]]:
    """The names of a dataset's label columns and where they come from.

    A config that renames the labels (``dataset.label_names`` other than the plugin's default)
    wins; otherwise the names the data file stores (e.g. an HDF5 ``label_names`` attribute);
    otherwise the plugin's default.

    Args:
        plugin: The dataset's `d3_core.registry.DatasetPlugin`.
        splits: The loader's splits, whose datasets may carry ``label_names`` from the file.
        configured: ``dataset.label_names`` of a config, if there is one.

    Returns:
        (``"config"`` | ``"data file"`` | ``"default"``, the names).
    """
    default = tuple(plugin.label_names)
    if configured is not None:
        configured = check_label_names(
            list(configured), width=plugin.label_width, source="config dataset.label_names"
        )
        if configured != default:
            return "config", configured
    for dataset in (splits or {}).values():
        names = getattr(dataset, "label_names", None)
        if names is not None:
            return "data file", tuple(names)
    return "default", default


def check_example(example: object, *, length: int, label_shape: tuple[int, ...]) -> None:
    """Checks one dataset item: (tokens (L,) int64 in [0, 4), labels `label_shape` float).

    Args:
        example: What `dataset[i]` returned.
        length: Expected sequence length L.
        label_shape: (S,) for global labels, (L, S) for per-position labels.

    Raises:
        D3InputError: naming what was wrong and what is expected.
    """
    if not isinstance(example, (tuple, list)) or len(example) != 2:
        raise D3InputError(
            f"a dataset item must be a pair (tokens, labels), got {type(example).__name__}"
        )
    tokens, labels = example
    if not isinstance(tokens, torch.Tensor) or tokens.dtype != torch.int64:
        got = getattr(tokens, "dtype", type(tokens).__name__)
        raise D3InputError(f"dataset tokens must be an int64 tensor, got {got}")
    if tuple(tokens.shape) != (length,):
        raise D3InputError(f"dataset tokens must have shape ({length},), got {tuple(tokens.shape)}")
    if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) > 3):
        raise D3InputError("dataset tokens must lie in [0, 4) (A, C, G, T = 0, 1, 2, 3)")
    if not isinstance(labels, torch.Tensor) or not labels.is_floating_point():
        got = getattr(labels, "dtype", type(labels).__name__)
        raise D3InputError(f"dataset labels must be a floating-point tensor, got {got}")
    if tuple(labels.shape) != tuple(label_shape):
        raise D3InputError(
            f"dataset labels must have shape {tuple(label_shape)}, got {tuple(labels.shape)}"
        )


class StepBatchSampler(Sampler[list[int]]):
    """Training batches as a function of the global step: resumable and world-size independent.

    Step s uses batch s mod E (E = full batches per epoch) of a permutation seeded by
    (seed, s // E). Each of the `world_size` processes takes its contiguous share of that
    global batch, so the sequences seen at a step do not depend on how many processes share
    it, and a run resumed at step s continues with exactly the batches it would have seen.

    Args:
        size: Number of sequences N.
        batch_size: Global batch size, divisible by `world_size`, at most N.
        seed: Seeds the permutations.
        rank: This process's rank.
        world_size: Number of processes.
        steps: Called when iteration starts: (first step, end step), e.g. the trainer's
            (global_step, max_steps).
    """

    def __init__(
        self,
        size: int,
        batch_size: int,
        *,
        seed: int,
        rank: int,
        world_size: int,
        steps: Callable[[], tuple[int, int]],
    ) -> None:
        if batch_size % world_size:
            raise D3ConfigError(
                f"the global batch size {batch_size} does not split evenly over {world_size} "
                f"processes; choose a multiple of {world_size}"
            )
        if size < batch_size:
            raise D3InputError(
                f"the training set has {size} sequences, fewer than one batch of {batch_size}; "
                f"lower training.batch_size"
            )
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.rank, self.world_size, self.steps = rank, world_size, steps

    def __len__(self) -> int:
        start, stop = self.steps()
        return max(0, stop - start)

    def __iter__(self) -> Iterator[list[int]]:
        start, stop = self.steps()
        per_epoch = self.size // self.batch_size
        share = self.batch_size // self.world_size
        epoch, order = -1, None
        for step in range(start, stop):
            if step // per_epoch != epoch:
                epoch = step // per_epoch
                generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
                order = torch.randperm(self.size, generator=generator)
            first = (step % per_epoch) * self.batch_size + self.rank * share
            yield order[first : first + share].tolist()


class D3DataModule(L.LightningDataModule):
    """Step-indexed training batches and ordered validation batches of (tokens, labels).

    `batch_size` is the global batch, as in the research configs: under DDP each of the
    `world_size` processes loads its `batch_size // world_size` share of every step's batch
    (`StepBatchSampler`; build the Trainer with ``use_distributed_sampler=False``), so a run
    means the same thing on 1 GPU or 8, and a resumed run sees the batches it would have seen.
    Validation is split into contiguous shards, one per process.

    Args:
        train: Dataset of (tokens (L,) int64, labels (S,) or (L, S) float).
        val: Optional validation dataset of the same items.
        batch_size: Global batch size, divisible by the number of processes.
        length: Sequence length L, checked on the first item of each dataset.
        label_shape: Label shape of one item, checked likewise.
        num_workers: Loader processes per training process; None picks
            min(4, CPUs / local processes - 1), 0 on a machine with 2 CPUs or fewer.
        seed: Seeds the batch order, so a run's batches are reproducible.
    """

    def __init__(
        self,
        train: Dataset,
        val: Dataset | None = None,
        *,
        batch_size: int,
        length: int,
        label_shape: tuple[int, ...],
        num_workers: int | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise D3ConfigError(f"batch_size must be a positive integer, got {batch_size}")
        for name, dataset in (("train", train), ("val", val)):
            if dataset is None:
                continue
            if len(dataset) == 0:
                raise D3InputError(f"the {name} dataset is empty")
            check_example(dataset[0], length=length, label_shape=label_shape)
        self.train, self.val = train, val
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed

    def _world(self) -> tuple[int, int]:
        """(processes in the run, processes on this node); (1, 1) outside a Trainer."""
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 1, 1
        return trainer.world_size, max(1, trainer.world_size // max(1, trainer.num_nodes))

    def per_device_batch_size(self) -> int:
        """Sequences each process loads per step."""
        world, _ = self._world()
        if self.batch_size % world:
            raise D3ConfigError(
                f"the global batch size {self.batch_size} does not split evenly over {world} "
                f"processes; choose a multiple of {world}"
            )
        return self.batch_size // world

    def _workers(self) -> int:
        if self.num_workers is not None:
            return self.num_workers
        _, local = self._world()
        spare = (os.cpu_count() or 1) // local - 1
        return max(0, min(4, spare if spare >= 2 else 0))

    def _steps(self) -> tuple[int, int]:
        """(first, end) training step: the trainer's, or one epoch outside a trainer."""
        trainer = getattr(self, "trainer", None)
        if trainer is None or trainer.max_steps is None or trainer.max_steps < 0:
            return 0, len(self.train) // self.batch_size
        return trainer.global_step, trainer.max_steps

    def _loader(self, dataset: Dataset, **options: Any) -> DataLoader:
        workers = self._workers()
        return DataLoader(
            dataset,
            num_workers=workers,
            persistent_workers=workers > 0,
            pin_memory=torch.cuda.is_available(),
            **options,
        )

    def train_dataloader(self) -> DataLoader:
        trainer = getattr(self, "trainer", None)
        rank = trainer.global_rank if trainer is not None else 0
        world, _ = self._world()
        sampler = StepBatchSampler(
            len(self.train),
            self.batch_size,
            seed=self.seed,
            rank=rank,
            world_size=world,
            steps=self._steps,
        )
        return self._loader(self.train, batch_sampler=sampler)

    def val_dataloader(self) -> DataLoader | list:
        if self.val is None:
            return []
        trainer = getattr(self, "trainer", None)
        rank = trainer.global_rank if trainer is not None else 0
        world, _ = self._world()
        # Contiguous shards; the logged loss is the mean over processes (sync_dist).
        bounds = np.linspace(0, len(self.val), world + 1).astype(int)
        shard = Subset(self.val, range(bounds[rank], bounds[rank + 1]))
        return self._loader(shard, batch_size=self.per_device_batch_size(), shuffle=False)
