"""Oracles: strict loading of published layouts, batched prediction, training, and `d3 evaluate`."""

import json
import re

import numpy as np
import pytest
import torch

from d3_core.cli.main import main
from d3_core.errors import CheckpointError, D3InputError
from d3_core.generation.sequences import read_samples
from d3_core.oracles import load_oracle, recipe_with, train_oracle

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def spec(toy):
    import toyplugin

    return toyplugin.ORACLE


def _published(spec, path, prefix="model.", change=None):
    """A checkpoint in the published Lightning layout: state_dict under `prefix`."""
    torch.manual_seed(0)
    model = spec.build()
    weights = {prefix + k: v for k, v in model.state_dict().items()}
    if change:
        change(weights)
    torch.save({"epoch": 9, "state_dict": weights, "hyper_parameters": {"lr": 0.002}}, path)
    return model.eval()


def _tokens(n=20, seed=0):
    return np.random.default_rng(seed).integers(0, 4, size=(n, 32))


@pytest.mark.parametrize("prefix", ["model.", "module.model."])
def test_a_published_checkpoint_loads_strictly_and_predicts_identically(spec, tmp_path, prefix):
    source = _published(spec, tmp_path / "oracle.ckpt", prefix)
    oracle = load_oracle(tmp_path / "oracle.ckpt", spec)
    tokens = _tokens()
    with torch.no_grad():
        x = torch.nn.functional.one_hot(torch.as_tensor(tokens), 4).float().transpose(1, 2)
        expected = source(x).numpy()
    assert np.array_equal(oracle.predict(tokens), expected)
    assert oracle.notes[0] == f"weights under the prefix {prefix!r}"


def test_predictions_do_not_depend_on_the_batch_size(spec, tmp_path):
    _published(spec, tmp_path / "o.ckpt")
    oracle = load_oracle(tmp_path / "o.ckpt", spec)
    tokens = _tokens(37)
    assert np.allclose(oracle.predict(tokens, batch_size=5), oracle.predict(tokens), atol=1e-6)


def test_weights_under_another_prefix_are_refused_naming_what_the_keys_start_with(spec, tmp_path):
    path = tmp_path / "o.ckpt"
    _published(spec, path, prefix="net.")
    message = (
        f"{path}: no weights carry the oracle's key prefix ('model.' or 'module.model.'); its "
        "keys start with 'net.'"
    )
    with pytest.raises(CheckpointError, match=f"^{re.escape(message)}$"):
        load_oracle(path, spec)


def test_missing_unexpected_and_misshaped_keys_are_listed(spec, tmp_path):
    def change(weights):
        del weights["model.head.bias"]
        weights["model.extra.weight"] = torch.zeros(1)
        weights["model.conv.weight"] = torch.zeros(16, 4, 5)

    path = tmp_path / "o.ckpt"
    _published(spec, path, change=change)
    message = (
        f"{path}: the weights do not match the toy CNN: missing ['head.bias']; unexpected "
        "['extra.weight']; shape mismatches ['conv.weight: checkpoint (16, 4, 5) vs model "
        "(16, 4, 6)']"
    )
    with pytest.raises(CheckpointError, match=f"^{re.escape(message)}$"):
        load_oracle(path, spec)


def test_tokens_outside_the_alphabet_are_refused(spec, tmp_path):
    _published(spec, tmp_path / "o.ckpt")
    with pytest.raises(D3InputError, match=re.escape("0..3")):
        load_oracle(tmp_path / "o.ckpt", spec).predict(np.full((2, 32), 4))


def test_a_trained_oracle_learns_the_rule_and_writes_a_loadable_checkpoint(
    spec, toy, toy_data, tmp_path
):
    splits = toy.load("data_loader")(toy_data)
    result = train_oracle(spec, splits, tmp_path, dataset="toy", progress=False,
                          recipe=recipe_with(spec.recipe, max_epochs=6))  # fmt: skip
    assert result.test_pearson["copies"] > 0.8
    state = torch.load(result.checkpoint, weights_only=True)  # plain data and tensors only
    assert all(k.startswith("model.") for k in state["state_dict"])
    assert state["d3_oracle"]["test_pearson"] == result.test_pearson
    report = json.loads(result.report.read_text())
    assert report["recipe"]["lr"] == spec.recipe.lr and report["epochs"] == result.epochs
    oracle = load_oracle(result.checkpoint, spec)
    r = np.corrcoef(oracle.predict(splits["test"].tokens)[:, 0], splits["test"].labels[:, 0])[0, 1]
    assert r == pytest.approx(result.test_pearson["copies"], abs=1e-3)
    assert not any("unverified" in note for note in oracle.notes)  # its digest was checked
    # docs/checkpoint-formats.md#content-digest: a changed weight is refused, naming the file
    state["state_dict"][next(iter(state["state_dict"]))].view(-1)[0] += 1.0
    torch.save(state, tmp_path / "edited.ckpt")
    with pytest.raises(CheckpointError, match=r"edited\.ckpt changed after it was written"):
        load_oracle(tmp_path / "edited.ckpt", spec)


def test_an_oracle_trained_on_standardised_targets_predicts_in_the_targets_units(
    spec, toy, toy_data, tmp_path
):
    from d3_core.data.loader import TokenDataset

    splits = toy.load("data_loader")(toy_data)
    # The rule's labels moved far from zero: the oracle must still predict them in their units.
    shifted = {k: TokenDataset(d.tokens.numpy(), d.labels.numpy() * 0.5 + 40.0)
               for k, d in splits.items()}  # fmt: skip
    recipe = recipe_with(spec.recipe, max_epochs=6, standardise_targets=True)
    result = train_oracle(spec, shifted, tmp_path, dataset="toy", progress=False, recipe=recipe)
    block = torch.load(result.checkpoint, weights_only=True)["d3_oracle"]
    train_labels = shifted["train"].labels.numpy().astype(np.float64)
    assert block["target_mean"] == pytest.approx(train_labels.mean(0).tolist())
    assert block["target_sd"] == pytest.approx(train_labels.std(0).tolist())
    oracle = load_oracle(result.checkpoint, spec)
    predicted = oracle.predict(shifted["test"].tokens)[:, 0]
    assert abs(predicted.mean() - shifted["test"].labels.numpy().mean()) < 0.5
    assert result.test_pearson["copies"] > 0.8
    assert any("standardised targets" in note for note in oracle.notes)


def test_d3_oracle_train_and_d3_evaluate_from_samples(toy, toy_data, tmp_path, capsys):
    out = tmp_path / "oracle"
    argv = ["oracle", "train", "--dataset", "toy", "--data", str(toy_data), "--out", str(out),
            "--max-epochs", "2", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    assert "test Pearson r: copies" in capsys.readouterr().out
    assert main(argv) == 1
    assert "already holds oracle.ckpt; choose another --out or pass --force" in (
        capsys.readouterr().err
    )
    splits = toy.load("data_loader")(toy_data)
    real = splits["test"].tokens.numpy()
    samples = tmp_path / "theirs.npz"
    np.savez(samples, arr_0=np.eye(4, dtype=np.float32)[real[::-1].copy()])  # (N, L, 4) one-hot
    evaluate = ["evaluate", "--dataset", "toy", "--data", str(toy_data), "--oracle",
                str(out / "oracle.ckpt"), "--samples", str(samples), "--ground-truth", "--out",
                str(tmp_path / "eval")]  # fmt: skip
    assert main(evaluate) == 0
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    for scorer in ("oracle", "ground_truth"):
        mse = report["scores"][scorer]["sp_mse"]
        assert set(mse) == {"samples", "baseline_shuffled_labels", "baseline_random_sequences"}
    assert report["oracle"]["name"] == "toy CNN"
    assert (tmp_path / "eval" / "report.md").read_text().startswith("# d3 evaluate: toy")
    # The same inputs and seed give the same numbers.
    assert main([*evaluate, "--force"]) == 0
    again = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert again["scores"] == report["scores"]


def test_d3_evaluate_needs_something_to_score_with(toy, toy_data, tmp_path, capsys):
    assert main(["evaluate", "--dataset", "toy", "--samples", "x.npz", "--out",
                 str(tmp_path)]) == 1  # fmt: skip
    assert "nothing to score with: give --oracle FILE" in capsys.readouterr().err


def test_samples_that_do_not_pair_with_the_test_labels_are_refused(toy, toy_data, tmp_path, capsys):
    samples = tmp_path / "few.fasta"
    samples.write_text(">a\n" + "A" * 32 + "\n>b\n" + "C" * 32 + "\n")
    argv = ["evaluate", "--dataset", "toy", "--data", str(toy_data), "--samples", str(samples),
            "--ground-truth", "--out", str(tmp_path / "e")]  # fmt: skip
    assert main(argv) == 1
    assert "holds 2 sequences but 256 test labels are scored; give --num-samples 2" in (
        capsys.readouterr().err
    )
    assert main([*argv, "--num-samples", "2"]) == 0


@pytest.mark.parametrize("layout", ["tokens", "NLC", "NCL", "fasta"])
def test_samples_of_other_tools_are_read_in_every_layout(tmp_path, layout):
    tokens = _tokens(5).astype(np.uint8)
    onehot = np.eye(4, dtype=np.float32)[tokens]
    path = tmp_path / ("s.fa" if layout == "fasta" else "s.npz")
    if layout == "tokens":
        np.savez(path, tokens=tokens)
    elif layout == "NLC":
        np.savez(path, arr_0=onehot)
    elif layout == "NCL":
        np.savez(path, arr_0=onehot.transpose(0, 2, 1))
    else:
        path.write_text("".join(f">s{i}\n{''.join('ACGT'[t] for t in row)}\n"
                                for i, row in enumerate(tokens)))  # fmt: skip
    assert np.array_equal(read_samples(path, length=32), tokens)
    with pytest.raises(D3InputError, match="32"):
        read_samples(path, length=31)
