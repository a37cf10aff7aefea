"""The data module: global batch split over processes, reproducible shuffling, item checks."""

from types import SimpleNamespace

import pytest
import torch
from torch.utils.data import TensorDataset

from d3_core.data import D3DataModule
from d3_core.errors import D3ConfigError, D3InputError

L = 10


def _dataset(n=40, label_shape=(2,)):
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 4, (n, L), generator=gen)
    return TensorDataset(tokens, torch.randn(n, *label_shape, generator=gen))


def _module(**kwargs):
    args = {"batch_size": 8, "length": L, "label_shape": (2,), "num_workers": 0, **kwargs}
    return D3DataModule(_dataset(), _dataset(13), **args)


def test_training_batches_have_the_model_layout():
    tokens, labels = next(iter(_module().train_dataloader()))
    assert tokens.shape == (8, L) and tokens.dtype == torch.int64
    assert labels.shape == (8, 2) and labels.is_floating_point()


def test_per_position_labels_keep_their_position_axis():
    module = D3DataModule(_dataset(label_shape=(L, 1)), batch_size=4, length=L,
                          label_shape=(L, 1), num_workers=0)  # fmt: skip
    _, labels = next(iter(module.train_dataloader()))
    assert labels.shape == (4, L, 1)


def test_the_global_batch_is_split_over_processes():
    module = _module(batch_size=32)
    module.trainer = SimpleNamespace(world_size=4, num_nodes=2)
    assert module.per_device_batch_size() == 8


def test_a_global_batch_that_does_not_split_evenly_is_refused():
    module = _module(batch_size=30)
    module.trainer = SimpleNamespace(world_size=4, num_nodes=1)
    with pytest.raises(D3ConfigError, match="batch size 30 does not split evenly over 4"):
        module.per_device_batch_size()


def test_shuffling_follows_the_seed_and_validation_keeps_order():
    first = next(iter(_module(seed=3).train_dataloader()))[0]
    again = next(iter(_module(seed=3).train_dataloader()))[0]
    other = next(iter(_module(seed=4).train_dataloader()))[0]
    assert torch.equal(first, again) and not torch.equal(first, other)
    val = torch.cat([tokens for tokens, _ in _module().val_dataloader()])
    assert torch.equal(val, _dataset(13).tensors[0])  # every sequence, in order, none dropped


def test_a_training_set_smaller_than_a_batch_is_refused():
    module = D3DataModule(_dataset(5), batch_size=8, length=L, label_shape=(2,))
    with pytest.raises(D3InputError, match="has 5 sequences, fewer than one batch of 8"):
        module.train_dataloader()


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ((torch.zeros(L),), r"must be a pair \(tokens, labels\)"),
        ((torch.zeros(L), torch.zeros(2)), "tokens must be an int64 tensor, got torch.float32"),
        ((torch.zeros(L + 1, dtype=torch.long), torch.zeros(2)), r"shape \(10,\), got \(11,\)"),
        ((torch.full((L,), 4), torch.zeros(2)), r"must lie in \[0, 4\)"),
        ((torch.zeros(L, dtype=torch.long), torch.zeros(2, dtype=torch.long)), "floating-point"),
        ((torch.zeros(L, dtype=torch.long), torch.zeros(3)), r"shape \(2,\), got \(3,\)"),
    ],
)
def test_malformed_items_are_refused_with_what_is_expected(item, message):
    with pytest.raises(D3InputError, match=message):
        D3DataModule([item], batch_size=1, length=L, label_shape=(2,))


def test_an_empty_dataset_is_refused():
    with pytest.raises(D3InputError, match="the train dataset is empty"):
        D3DataModule([], batch_size=1, length=L, label_shape=(2,))
