"""Tests of the Promoter oracles: the small CNN d3 trains and Sei, found by its keys."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from d3_core.errors import CheckpointError, D3InputError
from d3_core.oracles.oracle import load_oracle, recipe_with, train_oracle
from d3_promoter.data import load_data
from d3_promoter.oracle import ORACLE, SEI, PromoterCNN, activity
from d3_promoter.sei import Sei, load_sei

SMALL_SEI = {"channels": (8, 12, 16), "n_targets": 10, "spline_df": 16, "sequence_length": 4096}


def _sei_files(directory, prefix="module.model."):
    torch.manual_seed(0)
    model = Sei(**SMALL_SEI)
    state = {prefix + k: v for k, v in model.state_dict().items()}
    torch.save({"epoch": 1, "state_dict": state}, directory / "best.sei.model.pth.tar")
    names = [f"Cell{i}|{'H3K4me3' if i % 3 == 0 else 'DNase'}|ID:{i}" for i in range(10)]
    (directory / "target.sei.names").write_text("\n".join(names) + "\n")
    return directory / "best.sei.model.pth.tar"


def test_the_small_oracle_has_its_documented_size_and_output():
    model = PromoterCNN()
    assert sum(p.numel() for p in model.parameters()) == 143_809
    assert model.eval()(torch.zeros(2, 4, 1024)).shape == (2, 1)


def test_activity_is_log1p_of_the_central_cage_signal():
    labels = torch.zeros(2, 1024, 1)
    labels[0, 500, 0] = 3.0  # inside positions 384-639
    labels[0, 100, 0] = 50.0  # outside: ignored
    labels[1, 639, 0] = 1.0
    labels[1, 640, 0] = 9.0  # first position outside
    np.testing.assert_allclose(activity(labels)[:, 0].numpy(), np.log1p([3.0, 1.0]), rtol=1e-6)


def test_a_trained_small_oracle_loads_back_as_the_promoter_cnn(tiny_npz, tmp_path):
    splits = load_data(tiny_npz)
    result = train_oracle(ORACLE, splits, tmp_path, dataset="promoter",
                          recipe=recipe_with(ORACLE.recipe, max_epochs=1), progress=False)  # fmt: skip
    assert set(result.test_pearson) == {"activity"}
    oracle = load_oracle(result.checkpoint, ORACLE)
    assert oracle.spec is ORACLE and oracle.output_names == ("activity",)
    assert oracle.predict(splits["test"].tokens).shape == (len(splits["test"]), 1)


@pytest.mark.parametrize("prefix", ["module.model.", "model."])
def test_a_sei_checkpoint_given_as_the_oracle_is_loaded_as_sei(tmp_path, prefix):
    path = _sei_files(tmp_path, prefix)
    oracle = load_oracle(path, ORACLE)
    assert oracle.spec is SEI and oracle.output_names == ("H3K4me3",)
    assert oracle.describe()["name"].startswith("Sei")
    assert any("4 H3K4me3 outputs" in note for note in oracle.notes)
    tokens = torch.randint(0, 4, (3, 1024), generator=torch.Generator().manual_seed(1))
    ours = oracle.predict(tokens, batch_size=2)  # (3, 1)
    direct = load_sei(path).predict_h3k4me3(tokens, batch_size=3)
    np.testing.assert_allclose(ours[:, 0], direct, rtol=1e-6, atol=1e-7)


def test_a_sei_checkpoint_without_its_names_file_says_where_it_looked(tmp_path):
    path = _sei_files(tmp_path)
    (tmp_path / "target.sei.names").unlink()
    with pytest.raises(D3InputError, match=r"no Sei output names at .*target\.sei\.names"):
        load_oracle(path, ORACLE)
    (tmp_path / "elsewhere.names").write_text(
        "\n".join(f"C|{'H3K4me3' if i < 2 else 'CTCF'}|ID" for i in range(10)) + "\n"
    )
    oracle = load_oracle(path, ORACLE, names=tmp_path / "elsewhere.names")
    assert any("2 H3K4me3 outputs" in note for note in oracle.notes)


def test_a_file_that_is_neither_oracle_is_refused_with_the_keys_found(tmp_path):
    torch.save({"state_dict": {"net.conv.weight": torch.zeros(2)}}, tmp_path / "other.ckpt")
    with pytest.raises(CheckpointError, match="no weights carry the oracle's key prefix"):
        load_oracle(tmp_path / "other.ckpt", ORACLE)
