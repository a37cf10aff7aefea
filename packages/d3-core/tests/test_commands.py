"""The `d3 make-data`, `d3 sample` and `d3 demo` commands on the toy dataset."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from d3_core.cli.main import main
from d3_core.training.run import RUN_DIR_ENV


@pytest.fixture(autouse=True)
def _fresh_run_dir_env(monkeypatch):
    monkeypatch.delenv(RUN_DIR_ENV, raising=False)


def sample_cli(checkpoint: Path, out: Path, *extra: str) -> int:
    return main(["sample", "--checkpoint", str(checkpoint), "--out", str(out), "--no-progress",
                 *extra])  # fmt: skip


# --- make-data ----------------------------------------------------------------------------------


def test_make_data_writes_the_plugins_format_and_refuses_to_overwrite(tmp_path, toy, capsys):
    out = tmp_path / "toy.npz"
    assert main(["make-data", "--dataset", "toy", "--out", str(out), "--size", "tiny"]) == 0
    assert capsys.readouterr().out.startswith(f"wrote synthetic toy data (tiny, seed 0) to {out}")
    first = out.read_bytes()
    with np.load(out) as data:
        assert data["train_tokens"].shape == (256, 32)
    assert main(["make-data", "--dataset", "toy", "--out", str(out)]) == 1
    assert capsys.readouterr().err == (
        f"d3: error: {out} already exists; choose another --out or pass --force\n"
    )
    assert main(["make-data", "--dataset", "toy", "--out", str(out), "--size", "tiny",
                 "--seed", "1", "--force"]) == 0  # fmt: skip
    assert out.read_bytes() != first


def test_make_data_is_deterministic_for_a_seed(tmp_path, toy):
    for name in ("a.npz", "b.npz"):
        assert main(["make-data", "--dataset", "toy", "--out", str(tmp_path / name),
                     "--size", "tiny", "--seed", "3"]) == 0  # fmt: skip
    with np.load(tmp_path / "a.npz") as a, np.load(tmp_path / "b.npz") as b:
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])


# --- sample -------------------------------------------------------------------------------------


def test_sample_from_the_test_set_writes_fasta_npz_labels_and_provenance(
    tmp_path, toy_data, checkpoint, capsys
):
    out = tmp_path / "samples"
    assert sample_cli(checkpoint, out, "--from-test-set", "--num-samples", "6", "--seed", "4") == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"sampling 6 sequences into {out} (analytic, 16 steps, seed 4)\n")
    with np.load(out / "samples.npz") as data:
        tokens, onehot, labels = data["tokens"], data["arr_0"], data["labels"]
    assert tokens.shape == (6, 32) and tokens.dtype == np.uint8
    assert onehot.shape == (6, 32, 4) and onehot.dtype == np.float32
    np.testing.assert_array_equal(onehot.argmax(-1), tokens)
    assert (onehot.sum(-1) == 1).all()
    with np.load(toy_data) as data:
        np.testing.assert_array_equal(labels, data["test_labels"][:6])
    fasta = (out / "samples.fasta").read_text().splitlines()
    assert fasta[0] == f">sample_0 copies={labels[0, 0]:.4g}"
    assert fasta[1] == "".join("ACGT"[t] for t in tokens[0])
    assert len(fasta) == 12
    assert (out / "labels.tsv").read_text().splitlines()[0] == "index\tcopies"
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["checkpoint_sha256"] == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert provenance["seed"] == 4
    assert provenance["steps"] == 16
    assert provenance["predictor"] == "analytic"
    assert provenance["trained_steps"] == 5
    assert provenance["weights"] == "ema"
    assert provenance["labels_from"] == f"test split of {toy_data.resolve()}"


def test_samples_depend_on_the_seed_but_not_on_the_batch_size(tmp_path, checkpoint):
    drawn = {}
    for name, extra in {"b1": ("--batch-size", "1"), "b5": ("--batch-size", "5"),
                        "seed": ("--seed", "1")}.items():  # fmt: skip
        out = tmp_path / name
        assert sample_cli(checkpoint, out, "--from-test-set", "--num-samples", "5",
                          "--steps", "4", *extra) == 0  # fmt: skip
        with np.load(out / "samples.npz") as data:
            drawn[name] = data["tokens"]
    np.testing.assert_array_equal(drawn["b1"], drawn["b5"])
    assert (drawn["b1"] != drawn["seed"]).any()


def test_one_label_row_is_repeated_for_num_samples(tmp_path, checkpoint):
    labels = tmp_path / "want.tsv"
    labels.write_text("copies\n2\n")
    out = tmp_path / "out"
    assert sample_cli(checkpoint, out, "--labels", str(labels), "--num-samples", "3",
                      "--steps", "2") == 0  # fmt: skip
    with np.load(out / "samples.npz") as data:
        np.testing.assert_array_equal(data["labels"], np.full((3, 1), 2.0, dtype=np.float32))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (np.zeros((4, 2), dtype=np.float32),
         "labels of shape (4, 2), but the model's dataset takes (N, S) = (N, 1) labels (copies)"),
        (np.array([[np.nan]], dtype=np.float32), "labels hold NaN or infinite values (first in row 1); give finite numbers"),
    ],
)  # fmt: skip
def test_bad_labels_are_refused_naming_the_file_and_the_expected_labels(
    tmp_path, checkpoint, capsys, content, message
):
    labels = tmp_path / "labels.npy"
    np.save(labels, content)
    assert sample_cli(checkpoint, tmp_path / "out", "--labels", str(labels)) == 1
    assert capsys.readouterr().err == f"d3: error: {labels}: {message}\n"
    assert not (tmp_path / "out").exists()


def test_sample_refuses_to_overwrite_samples_without_force(tmp_path, checkpoint, capsys):
    out = tmp_path / "out"
    args = ("--from-test-set", "--num-samples", "2", "--steps", "2")
    assert sample_cli(checkpoint, out, *args) == 0
    capsys.readouterr()
    assert sample_cli(checkpoint, out, *args) == 1
    assert capsys.readouterr().err == (
        f"d3: error: {out} already holds samples (samples.fasta, samples.npz, labels.tsv, "
        f"provenance.json); choose another --out or pass --force to overwrite them\n"
    )
    assert sample_cli(checkpoint, out, *args, "--force") == 0


def test_sample_from_a_missing_checkpoint_is_one_line(tmp_path, toy, capsys):
    missing = tmp_path / "nope.ckpt"
    assert sample_cli(missing, tmp_path / "out", "--from-test-set") == 1
    assert capsys.readouterr().err == f"d3: error: checkpoint '{missing}' does not exist\n"


def test_sample_needs_a_label_source(tmp_path, capsys):
    with pytest.raises(SystemExit) as caught:
        main(["sample", "--checkpoint", "x", "--out", str(tmp_path)])
    assert caught.value.code == 2
    assert "one of the arguments --labels --from-test-set is required" in capsys.readouterr().err


# --- demo ---------------------------------------------------------------------------------------


def test_demo_makes_data_trains_samples_and_scores_printing_where_everything_went(
    tmp_path, toy, capsys
):
    out = tmp_path / "demo"
    assert main(["demo", "--dataset", "toy", "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"run directory: {out.resolve()}\n[1/5] writing synthetic toy data")
    stages = ("[2/5] training", "[3/5] training the toy CNN on the same data",
              "[4/5] sampling for the first test labels (up to 256), then [5/5] scoring")  # fmt: skip
    for stage in stages:
        assert stage in printed
    report = json.loads((out / "eval" / "report.json").read_text())
    assert set(report["scores"]) == {"oracle", "ground_truth"}
    assert report["oracle"]["checkpoint"] == str(out / "oracle" / "oracle.ckpt")
    assert set(report["scores"]["ground_truth"]["sp_mse"]) == {
        "samples", "baseline_shuffled_labels", "baseline_random_sequences",
    }  # fmt: skip
    assert report["context"]["demo"]["train_steps"] == 60
    assert report["num_sequences"] == 256
    assert (out / "eval" / "report.md").read_text().startswith("# d3 evaluate: toy (conv)")
    for path in ("checkpoints/last.ckpt", "samples/samples.fasta", "data/synthetic-toy.npz"):
        assert (out / path).is_file(), path
