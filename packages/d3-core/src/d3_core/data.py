"""Batches of (tokens, labels) for training: a Lightning data module over any plugin's datasets."""

from __future__ import annotations

import os

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from d3_core.errors import D3ConfigError, D3InputError

__all__ = ["D3DataModule", "check_example"]


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


class D3DataModule(L.LightningDataModule):
    """Shuffled training batches and ordered validation batches of (tokens, labels).

    `batch_size` is the global batch, as in the research configs: under DDP each of the
    `world_size` processes loads `batch_size // world_size` sequences per step (Lightning adds
    the distributed sampler), so a run means the same thing on 1 GPU or 8.

    Args:
        train: Dataset of (tokens (L,) int64, labels (S,) or (L, S) float).
        val: Optional validation dataset of the same items.
        batch_size: Global batch size, divisible by the number of processes.
        length: Sequence length L, checked on the first item of each dataset.
        label_shape: Label shape of one item, checked likewise.
        num_workers: Loader processes per training process; None picks
            min(4, CPUs / local processes - 1), 0 on a machine with 2 CPUs or fewer.
        seed: Seeds the shuffling, so a run's batch order is reproducible.
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

    def _loader(self, dataset: Dataset, *, shuffle: bool) -> DataLoader:
        workers = self._workers()
        return DataLoader(
            dataset,
            batch_size=self.per_device_batch_size(),
            shuffle=shuffle,
            drop_last=shuffle,  # equal batches keep the loss scale and DDP steps uniform
            num_workers=workers,
            persistent_workers=workers > 0,
            pin_memory=torch.cuda.is_available(),
            generator=torch.Generator().manual_seed(self.seed) if shuffle else None,
        )

    def train_dataloader(self) -> DataLoader:
        if len(self.train) < self.batch_size:
            raise D3InputError(
                f"the training set has {len(self.train)} sequences, fewer than one batch of "
                f"{self.batch_size}; lower the batch size"
            )
        return self._loader(self.train, shuffle=True)

    def val_dataloader(self) -> DataLoader | list:
        return [] if self.val is None else self._loader(self.val, shuffle=False)
