"""The data module: global batch split over processes, reproducible shuffling, item checks."""

import re
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

import d3_core.data.loader
from d3_core.data.loader import (
    D3DataModule,
    StepBatchSampler,
    TokenDataset,
    onehot_to_tokens,
    tokens_to_onehot,
)
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


def exactly(message: str) -> str:
    """A `match` pattern for the whole of `message`."""
    return f"^{re.escape(message)}$"


# -- one-hot and tokens ------------------------------------------------------------------------


def _tokens(n=5, length=L, seed=0):
    return np.random.default_rng(seed).integers(0, 4, size=(n, length)).astype(np.uint8)


def test_tokens_to_onehot_puts_a_one_in_each_token_s_channel():
    onehot = tokens_to_onehot(np.array([[0, 3, 1]]))
    assert onehot.dtype == np.float32 and onehot.shape == (1, 3, 4)
    assert onehot[0].tolist() == [[1, 0, 0, 0], [0, 0, 0, 1], [0, 1, 0, 0]]
    ncl = tokens_to_onehot(np.array([[0, 3, 1]]), layout="NCL", dtype=np.int8)
    assert ncl.dtype == np.int8 and ncl[0].tolist() == [[1, 0, 0], [0, 0, 1], [0, 0, 0], [0, 1, 0]]


@pytest.mark.parametrize("layout", ["NLC", "NCL"])
def test_onehot_to_tokens_inverts_tokens_to_onehot(layout):
    tokens = _tokens()
    onehot = tokens_to_onehot(tokens, layout=layout)
    back = onehot_to_tokens(onehot, layout=layout, source="x")
    assert back.dtype == np.uint8 and np.array_equal(back, tokens)


def test_onehot_to_tokens_accepts_integer_and_boolean_one_hot():
    tokens = _tokens()
    for dtype in (np.int8, np.bool_, np.float64):
        onehot = tokens_to_onehot(tokens, layout="NCL", dtype=dtype)
        assert np.array_equal(onehot_to_tokens(onehot, layout="NCL", source="x"), tokens)


@pytest.mark.parametrize(
    ("shape", "layout", "message"),
    [
        ((2, 3, 5), "NCL", "data.h5:X: expected one-hot of shape (N, 4, L), got (2, 3, 5)"),
        ((2, 5, 3), "NLC", "data.h5:X: expected one-hot of shape (N, L, 4), got (2, 5, 3)"),
        ((2, 5, 4), "NCL", "data.h5:X: expected one-hot of shape (N, 4, L), got (2, 5, 4)"),
        ((4, 5), "NLC", "data.h5:X: expected one-hot of shape (N, L, 4), got (4, 5)"),
        ((1, 2, 5, 4), "NLC", "data.h5:X: expected one-hot of shape (N, L, 4), got (1, 2, 5, 4)"),
    ],
)
def test_onehot_of_the_wrong_rank_or_channel_count_is_refused(shape, layout, message):
    with pytest.raises(D3InputError, match=exactly(message)):
        onehot_to_tokens(np.zeros(shape), layout=layout, source="data.h5:X")


def test_an_unknown_onehot_layout_is_refused():
    with pytest.raises(D3ConfigError, match=exactly("layout must be 'NCL' or 'NLC', got 'LNC'")):
        onehot_to_tokens(np.zeros((1, 4, 4)), layout="LNC", source="x")


@pytest.mark.parametrize(
    ("channels", "shown"),
    [
        ([1, 1, 0, 0], "[1.0, 1.0, 0.0, 0.0]"),
        ([0, 0, 0, 0], "[0.0, 0.0, 0.0, 0.0]"),
        ([0.25, 0.25, 0.25, 0.25], "[0.25, 0.25, 0.25, 0.25]"),
        ([2, -1, 0, 0], "[2.0, -1.0, 0.0, 0.0]"),
    ],
)
@pytest.mark.parametrize("layout", ["NLC", "NCL"])
def test_a_position_that_is_not_one_hot_is_named_by_sequence_and_position(channels, shown, layout):
    onehot = tokens_to_onehot(_tokens(), layout="NLC")
    onehot[3, 7] = channels
    if layout == "NCL":
        onehot = onehot.transpose(0, 2, 1)
    message = (
        f"data.h5:X: sequence 3, position 7 is not one-hot A/C/G/T (channels {shown}); "
        "every position needs one 1 and three 0s"
    )
    with pytest.raises(D3InputError, match=exactly(message)):
        onehot_to_tokens(onehot, layout=layout, source="data.h5:X")


def test_onehot_is_converted_in_chunks_and_errors_name_the_global_sequence(monkeypatch):
    monkeypatch.setattr(d3_core.data.loader, "_CHUNK", 3)
    tokens = _tokens(n=8)
    onehot = tokens_to_onehot(tokens, layout="NCL")
    assert np.array_equal(onehot_to_tokens(onehot, layout="NCL", source="x"), tokens)
    onehot[7, :, 2] = 0  # the second row of the third chunk
    message = (
        "x: sequence 7, position 2 is not one-hot A/C/G/T (channels [0.0, 0.0, 0.0, 0.0]); "
        "every position needs one 1 and three 0s"
    )
    with pytest.raises(D3InputError, match=exactly(message)):
        onehot_to_tokens(onehot, layout="NCL", source="x")


def test_onehot_is_read_through_slices_only(monkeypatch):
    monkeypatch.setattr(d3_core.data.loader, "_CHUNK", 2)

    class Sliceable:  # stands in for an h5py.Dataset: shape and slicing, nothing else
        def __init__(self, array):
            self.array, self.shape, self.slices = array, array.shape, []

        def __getitem__(self, index):
            self.slices.append((index.start, index.stop))
            return self.array[index]

    tokens = _tokens(n=5)
    dataset = Sliceable(tokens_to_onehot(tokens, layout="NLC"))
    assert np.array_equal(onehot_to_tokens(dataset, layout="NLC", source="x"), tokens)
    assert dataset.slices == [(0, 2), (2, 4), (4, 6)]


# -- TokenDataset ------------------------------------------------------------------------------


def test_token_dataset_items_are_int64_tokens_and_float32_labels():
    tokens, labels = _tokens(n=4), np.arange(8, dtype=np.float64).reshape(4, 2)
    dataset = TokenDataset(tokens, labels)
    assert len(dataset) == 4
    item_tokens, item_labels = dataset[2]
    assert item_tokens.dtype == torch.int64 and item_tokens.tolist() == tokens[2].tolist()
    assert item_labels.dtype == torch.float32 and item_labels.tolist() == [4.0, 5.0]


def test_token_dataset_keeps_per_position_labels():
    labels = np.zeros((4, L, 1), dtype=np.float32)
    assert tuple(TokenDataset(_tokens(n=4), labels)[0][1].shape) == (L, 1)


def test_token_dataset_stores_tokens_compactly():
    dataset = TokenDataset(_tokens(n=4).astype(np.int64), np.zeros((4, 2)))
    assert dataset.tokens.dtype == torch.uint8


@pytest.mark.parametrize("bad", [4, -1])
def test_token_dataset_refuses_tokens_out_of_range(bad):
    tokens = _tokens(n=4).astype(np.int64)
    tokens[1, 2] = bad
    with pytest.raises(D3InputError, match=exactly("data.npz:train: tokens must lie in [0, 4)")):
        TokenDataset(tokens, np.zeros((4, 2)), source="data.npz:train")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("label_shape", [(2,), (L, 1)])
def test_token_dataset_refuses_labels_that_are_not_finite_naming_the_sequence(bad, label_shape):
    labels = np.zeros((4, *label_shape), dtype=np.float32)
    labels[2].flat[-1] = bad
    message = "data.npz:train: labels of sequence 2 are not finite (NaN or inf)"
    with pytest.raises(D3InputError, match=exactly(message)):
        TokenDataset(_tokens(n=4), labels, source="data.npz:train")


def test_token_dataset_refuses_labels_for_another_number_of_sequences():
    message = "x: labels must be (N, S) or (N, L, S) with N = 4, got shape (3, 2)"
    with pytest.raises(D3InputError, match=exactly(message)):
        TokenDataset(_tokens(n=4), np.zeros((3, 2)), source="x")


def test_token_dataset_refuses_labels_of_the_wrong_rank():
    message = "x: labels must be (N, S) or (N, L, S) with N = 4, got shape (4,)"
    with pytest.raises(D3InputError, match=exactly(message)):
        TokenDataset(_tokens(n=4), np.zeros(4), source="x")


def test_token_dataset_refuses_tokens_that_are_not_a_matrix():
    with pytest.raises(D3InputError, match=exactly("x: tokens must be (N, L), got shape (4,)")):
        TokenDataset(np.zeros(4, dtype=np.uint8), np.zeros((4, 2)), source="x")


# -- StepBatchSampler ---------------------------------------------------------------------------


def _batches(size=20, batch_size=4, *, seed=0, rank=0, world_size=1, start=0, stop=10):
    sampler = StepBatchSampler(
        size, batch_size, seed=seed, rank=rank, world_size=world_size, steps=lambda: (start, stop)
    )
    return list(sampler)


def test_the_step_batches_follow_the_seed():
    assert _batches(seed=1) == _batches(seed=1)
    assert _batches(seed=1) != _batches(seed=2)


def test_each_epoch_covers_every_sequence_once_dropping_the_last_partial_batch():
    size, batch = 22, 4  # 5 full batches per epoch; 2 sequences left out of each epoch
    batches = _batches(size, batch, stop=15)
    assert all(len(b) == batch for b in batches)
    epochs = [[i for b in batches[e * 5 : (e + 1) * 5] for i in b] for e in range(3)]
    for epoch in epochs:
        assert len(epoch) == 20 and len(set(epoch)) == 20
        assert set(epoch) <= set(range(size))
    assert epochs[0] != epochs[1]  # each epoch has its own permutation


def test_the_rank_shares_together_are_the_single_process_batch_at_every_step():
    whole = _batches(20, 8, seed=5, stop=12)
    shares = [_batches(20, 8, seed=5, rank=r, world_size=2, stop=12) for r in range(2)]
    assert all(len(b) == 4 for share in shares for b in share)
    for step in range(12):
        assert shares[0][step] + shares[1][step] == whole[step]


def test_starting_at_a_step_yields_what_an_uninterrupted_run_yields_from_there():
    whole = _batches(22, 4, seed=3, start=0, stop=17)
    for start in (1, 5, 6, 13):
        assert _batches(22, 4, seed=3, start=start, stop=17) == whole[start:]


def test_the_sampler_length_is_the_number_of_steps_left():
    sampler = StepBatchSampler(20, 4, seed=0, rank=0, world_size=1, steps=lambda: (7, 19))
    assert len(sampler) == 12 and len(list(sampler)) == 12
    done = StepBatchSampler(20, 4, seed=0, rank=0, world_size=1, steps=lambda: (19, 19))
    assert len(done) == 0 and list(done) == []


def test_a_batch_that_does_not_split_over_the_processes_is_refused():
    message = (
        "the global batch size 6 does not split evenly over 4 processes; choose a multiple of 4"
    )
    with pytest.raises(D3ConfigError, match=exactly(message)):
        StepBatchSampler(20, 6, seed=0, rank=0, world_size=4, steps=lambda: (0, 1))


def test_a_sampler_over_fewer_sequences_than_a_batch_is_refused():
    message = (
        "the training set has 3 sequences, fewer than one batch of 4; lower training.batch_size"
    )
    with pytest.raises(D3InputError, match=exactly(message)):
        StepBatchSampler(3, 4, seed=0, rank=0, world_size=1, steps=lambda: (0, 1))
