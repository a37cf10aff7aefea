"""Designing sequences: reading labels, sampling from a checkpoint by seed, writing the files."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from d3_core.checkpoints.load import load_checkpoint
from d3_core.config import resolve_config
from d3_core.data.loader import tokens_to_onehot
from d3_core.data.synthetic import decode
from d3_core.errors import D3InputError
from d3_core.generation.sequences import SampleRun, read_labels, sample_sequences, write_samples
from d3_core.training.run import RunDir, train

STEPS = 3  # the same run as test_checkpoint's, so a session trains it once
NAMES = ("Dev", "Hk")


def exactly(message: str) -> str:
    """A `match` pattern for the whole of `message`."""
    return f"^{re.escape(message)}$"


def ending(message: str) -> str:
    """A `match` pattern for a message that ends with `message`."""
    return f"{re.escape(message)}$"


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def loaded(toy, toy_data, tmp_path_factory, monkeypatch):
    """The toy transformer trained 3 steps by `train` (once per session), loaded for sampling."""
    run = RunDir(tmp_path_factory.getbasetemp() / f"toy-tran-{STEPS}-steps")
    if not run.last.exists():
        overrides = [f"training.max_steps={STEPS}", "training.ema_decay=0.5",
                     "training.num_workers=0", "training.log_every_n_steps=1",
                     f"dataset.data={toy_data}"]  # fmt: skip
        monkeypatch.setenv("PL_GLOBAL_SEED", "0")  # seed_everything sets it; restored after
        train(resolve_config("toy", "tran", overrides=overrides), run, progress=False)
    return load_checkpoint(run.last)


# -- reading labels ------------------------------------------------------------------------------


def _read(path, label_shape=(2,), names=NAMES):
    return read_labels(path, label_shape=label_shape, names=names)


def test_npy_labels_are_read_as_float32(tmp_path):
    np.save(tmp_path / "labels.npy", np.arange(6).reshape(3, 2))
    labels = _read(tmp_path / "labels.npy")
    assert labels.dtype == np.float32 and labels.tolist() == [[0, 1], [2, 3], [4, 5]]


def test_a_single_label_row_becomes_a_batch_of_one(tmp_path):
    np.save(tmp_path / "labels.npy", np.array([1.5, -2.0]))
    assert _read(tmp_path / "labels.npy").tolist() == [[1.5, -2.0]]


def test_per_position_labels_are_read_with_their_position_axis(tmp_path):
    np.save(tmp_path / "labels.npy", np.zeros((2, 8, 1)))
    assert _read(tmp_path / "labels.npy", label_shape=(8, 1), names=("signal",)).shape == (2, 8, 1)


def test_npz_labels_are_read_from_the_labels_array(tmp_path):
    np.savez(tmp_path / "labels.npz", labels=np.ones((4, 2)), other=np.zeros(3))
    assert _read(tmp_path / "labels.npz").tolist() == [[1, 1]] * 4


@pytest.mark.parametrize(("suffix", "sep"), [(".tsv", "\t"), (".csv", ","), (".TSV", "\t")])
def test_table_labels_are_read_by_column_name_in_any_order(tmp_path, suffix, sep):
    path = tmp_path / f"labels{suffix}"
    rows = [["id", "Hk", "note", "Dev"], ["a", "2", "x", "1"], ["b", "-4.5", "y", "3e-1"]]
    path.write_text("".join(sep.join(row) + "\n" for row in rows))
    labels = _read(path)
    assert labels.dtype == np.float32
    assert labels == pytest.approx(np.array([[1.0, 2.0], [0.3, -4.5]]))


def test_a_missing_labels_file_is_named(tmp_path):
    missing = tmp_path / "nope.npy"
    with pytest.raises(D3InputError, match=exactly(f"labels file {str(missing)!r} does not exist")):
        _read(missing)


def test_an_unknown_labels_format_lists_the_formats(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("1 2\n")
    message = f"labels file {str(path)!r}: use .npy, .npz, .tsv or .csv"
    with pytest.raises(D3InputError, match=ending(message)):
        _read(path)


def test_an_npz_without_labels_lists_the_arrays_it_has(tmp_path):
    path = tmp_path / "labels.npz"
    np.savez(path, y=np.ones((2, 2)), x=np.ones(2))
    with pytest.raises(D3InputError, match=ending(f"{path}: no 'labels' array (found ['x', 'y'])")):
        _read(path)


def test_a_table_header_without_a_label_column_names_what_is_missing(tmp_path):
    path = tmp_path / "labels.tsv"
    path.write_text("Dev\tfoo\n1\t2\n")
    message = (
        f"{path}: the header must name the label columns ['Dev', 'Hk']; missing ['Hk'] "
        "(found ['Dev', 'foo'])"
    )
    with pytest.raises(D3InputError, match=ending(message)):
        _read(path)


@pytest.mark.parametrize(
    ("text", "reason"),
    [("Dev,Hk\n1,abc\n", "line 2: 'abc' is not a number"),
     ("Dev,Hk\n0,0\n1,\n", "line 3: '' is not a number")],
)  # fmt: skip
def test_a_table_value_that_is_not_a_number_is_named(tmp_path, text, reason):
    path = tmp_path / "labels.csv"
    path.write_text(text)
    message = f"cannot read labels file {str(path)!r}: {reason}"
    with pytest.raises(D3InputError, match=exactly(message)):
        _read(path)


def test_labels_of_the_wrong_width_name_the_expected_labels(tmp_path):
    path = tmp_path / "labels.npy"
    np.save(path, np.zeros((3, 3)))
    message = (
        f"{path}: labels of shape (3, 3), but the model's dataset takes (N, S) = (N, 2) labels "
        "(Dev, Hk)"
    )
    with pytest.raises(D3InputError, match=exactly(message)):
        _read(path)


def test_a_single_row_of_per_position_labels_is_a_wrong_shape(tmp_path):
    path = tmp_path / "labels.npy"
    np.save(path, np.zeros((8, 1)))
    message = (
        f"{path}: labels of shape (8, 1), but the model's dataset takes (N, L, S) = (N, 8, 1) "
        "labels (signal)"
    )
    with pytest.raises(D3InputError, match=exactly(message)):
        _read(path, label_shape=(8, 1), names=("signal",))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_labels_that_are_not_finite_are_refused(tmp_path, bad):
    path = tmp_path / "labels.npy"
    np.save(path, np.array([[1.0, bad]]))
    message = f"{path}: labels hold NaN or infinite values (first in row 1); give finite numbers"
    with pytest.raises(D3InputError, match=exactly(message)):
        _read(path)


def test_the_labels_reader_s_own_errors_are_not_wrapped_again(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("1 2\n")
    with pytest.raises(D3InputError) as error:
        _read(path)
    assert str(error.value) == f"labels file {str(path)!r}: use .npy, .npz, .tsv or .csv"


def test_a_table_with_a_header_and_no_rows_is_refused_as_having_no_rows(tmp_path):
    path = tmp_path / "labels.tsv"
    path.write_text("Dev\tHk\n")
    with pytest.raises(D3InputError, match=exactly(f"{path}: no label rows; give at least one "
                                                   "row of labels")):  # fmt: skip
        _read(path)


def test_an_npy_of_strings_is_an_input_error(tmp_path):
    path = tmp_path / "labels.npy"
    np.save(path, np.array([["a", "b"]]))
    with pytest.raises(D3InputError, match=str(path)):
        _read(path)


# -- sampling ------------------------------------------------------------------------------------


def _labels(n=7):
    return np.linspace(0, 2, n, dtype=np.float32)[:, None]  # (n, 1): copies of the toy motif


def _sample(loaded, labels, **kwargs):
    options = {"seed": 0, "steps": 4, "progress": False, **kwargs}
    return sample_sequences(loaded, labels, **options)


def test_sampling_draws_one_sequence_per_label_row(loaded):
    labels = _labels()
    run = _sample(loaded, labels)
    assert isinstance(run, SampleRun)
    assert run.tokens.dtype == np.uint8 and run.tokens.shape == (7, 32)
    assert run.tokens.max() <= 3
    assert run.labels is labels and run.seconds >= 0


def test_sampling_is_determined_by_the_seed(loaded):
    first, again = _sample(loaded, _labels(), seed=3), _sample(loaded, _labels(), seed=3)
    other = _sample(loaded, _labels(), seed=4)
    assert np.array_equal(first.tokens, again.tokens)
    assert not np.array_equal(first.tokens, other.tokens)


def test_the_batch_size_does_not_change_the_sequences(loaded):
    runs = [_sample(loaded, _labels(), batch_size=size).tokens for size in (1, 7, 64, 3)]
    for tokens in runs[1:]:
        assert np.array_equal(tokens, runs[0])


@pytest.mark.parametrize("predictor", ["analytic", "euler"])
def test_batch_sizes_1_3_and_8_over_8_sequences_give_identical_tokens(loaded, predictor):
    labels = _labels(8)
    runs = [_sample(loaded, labels, batch_size=size, predictor=predictor).tokens
            for size in (8, 1, 3)]  # fmt: skip
    assert np.array_equal(runs[1], runs[0]) and np.array_equal(runs[2], runs[0])
    assert len({row.tobytes() for row in runs[0]}) == 8


def test_a_shard_from_first_index_is_those_sequences_of_the_whole_run(loaded):
    labels = _labels(8)
    whole = _sample(loaded, labels, seed=9, batch_size=8)
    tail = _sample(loaded, labels[4:], seed=9, first_index=4, batch_size=3)
    assert tail.first_index == 4 and np.array_equal(tail.tokens, whole.tokens[4:])
    # Two devices, one shard each (any batch size), concatenate into the one run.
    head = _sample(loaded, labels[:4], seed=9, first_index=0, batch_size=1)
    assert np.array_equal(np.concatenate([head.tokens, tail.tokens]), whole.tokens)
    # Without the offset the tail would repeat the head's seeds: different sequences.
    assert not np.array_equal(_sample(loaded, labels[4:], seed=9).tokens, tail.tokens)


def test_oracle_guided_sampling_keeps_each_sequence_independent_of_its_batch(loaded, toy):
    import torch

    from d3_core.diffusion.guidance import Guidance
    from d3_core.oracles.model import Oracle

    spec = toy.load("oracle")
    torch.manual_seed(0)
    oracle = Oracle(spec, spec.build())
    labels = _labels(6)
    options = {"guidance": Guidance(oracle=4.0, oracle_form="gradient"), "oracle": oracle}
    whole = _sample(loaded, labels, batch_size=6, **options).tokens
    assert np.array_equal(_sample(loaded, labels, batch_size=1, **options).tokens, whole)
    shard = _sample(loaded, labels[2:5], first_index=2, batch_size=2, **options).tokens
    assert np.array_equal(shard, whole[2:5])
    assert not np.array_equal(whole, _sample(loaded, labels, batch_size=6).tokens)  # it guides


@pytest.mark.parametrize(("seed", "first_index"), [(-1, 0), (0, -4)])
def test_a_negative_seed_or_first_index_is_refused(loaded, seed, first_index):
    from d3_core.errors import D3ConfigError

    with pytest.raises(D3ConfigError, match="must be between 0 and 2\\*\\*63 - 1"):
        _sample(loaded, _labels(2), seed=seed, first_index=first_index)


def test_rows_with_equal_labels_get_their_own_sequences(loaded):
    tokens = _sample(loaded, np.ones((3, 1), dtype=np.float32)).tokens
    assert len({row.tobytes() for row in tokens}) == 3


def test_the_euler_predictor_samples_too(loaded):
    tokens = _sample(loaded, _labels(3), predictor="euler").tokens
    assert tokens.shape == (3, 32) and tokens.max() <= 3


# -- writing the files ---------------------------------------------------------------------------


def _fasta(path: Path) -> list[tuple[str, str]]:
    lines = path.read_text().splitlines()
    return list(zip(lines[0::2], lines[1::2], strict=True))


def test_written_samples_parse_back(loaded, tmp_path):
    run = _sample(loaded, _labels(4))
    provenance = {"checkpoint": str(loaded.path), "sha256": loaded.sha256, "seed": 0}
    written = write_samples(tmp_path / "out", run, names=("copies",), provenance=provenance)
    out = tmp_path / "out"
    assert written == [
        out / f for f in ("samples.fasta", "samples.npz", "labels.tsv", "provenance.json")
    ]
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in written)

    records = _fasta(out / "samples.fasta")
    assert [header for header, _ in records] == [
        ">sample_0 copies=0", ">sample_1 copies=0.6667", ">sample_2 copies=1.333", ">sample_3 copies=2"
    ]  # fmt: skip
    assert [sequence for _, sequence in records] == [decode(row) for row in run.tokens]
    assert all(len(s) == 32 and set(s) <= set("ACGT") for _, s in records)

    with np.load(out / "samples.npz", allow_pickle=False) as npz:
        assert npz["arr_0"].dtype == np.float32 and npz["arr_0"].shape == (4, 32, 4)
        assert np.array_equal(npz["arr_0"], tokens_to_onehot(run.tokens))
        assert np.array_equal(npz["arr_0"].argmax(-1), run.tokens)
        assert npz["tokens"].dtype == np.uint8 and np.array_equal(npz["tokens"], run.tokens)
        assert np.array_equal(npz["labels"], run.labels)
        assert npz["label_names"].tolist() == ["copies"]

    table = (out / "labels.tsv").read_text().splitlines()
    assert table == ["index\tcopies", "0\t0", "1\t0.666667", "2\t1.33333", "3\t2"]
    assert _read(out / "labels.tsv", label_shape=(1,), names=("copies",)) == pytest.approx(
        run.labels, abs=1e-5
    )

    assert json.loads((out / "provenance.json").read_text()) == provenance


def test_writing_samples_replaces_an_earlier_set(tmp_path):
    out = tmp_path / "out"
    tokens = np.array([[0, 1, 2, 3]], dtype=np.uint8)
    for label in (1.0, 2.0):
        run = SampleRun(tokens=tokens, labels=np.array([[label, 0.5]], dtype=np.float32), seconds=0)
        write_samples(out, run, names=NAMES, provenance={"label": label})
    assert (out / "samples.fasta").read_text() == ">sample_0 Dev=2 Hk=0.5\nACGT\n"
    assert json.loads((out / "provenance.json").read_text()) == {"label": 2.0}
    assert len(list(out.iterdir())) == 4


def test_samples_with_per_position_labels_have_no_label_table(tmp_path):
    tokens = np.array([[3, 2, 1], [0, 0, 0]], dtype=np.uint8)
    run = SampleRun(tokens=tokens, labels=np.zeros((2, 3, 1), dtype=np.float32), seconds=0)
    written = write_samples(tmp_path, run, names=("signal",), provenance={})
    assert [p.name for p in written] == ["samples.fasta", "samples.npz", "provenance.json"]
    assert (tmp_path / "samples.fasta").read_text() == ">sample_0\nTGC\n>sample_1\nAAA\n"
    with np.load(tmp_path / "samples.npz") as npz:
        assert npz["labels"].shape == (2, 3, 1) and npz["arr_0"].shape == (2, 3, 4)
