"""`d3 design`: target parsing, constraints, and the command end to end on the toy dataset."""

from __future__ import annotations

import json

import numpy as np
import pytest

from d3_core.cli.main import main
from d3_core.data.synthetic import decode, encode
from d3_core.errors import D3InputError
from d3_core.generation.design import Constraints, longest_homopolymer, parse_fixed, parse_targets

pytestmark = pytest.mark.usefixtures("one_thread")


def test_targets_are_numbers_or_training_quantiles():
    train = np.stack([np.arange(101.0), -np.arange(101.0)], 1)
    target = parse_targets(["Dev=high", "Hk=-3.5"], ["Dev", "Hk"], train)
    np.testing.assert_allclose(target, [90.0, -3.5])
    np.testing.assert_allclose(parse_targets(["Dev=LOW", "Hk=low"], ["Dev", "Hk"], train),
                               [10.0, -90.0])  # fmt: skip
    with pytest.raises(D3InputError, match="missing \\['Hk'\\]"):
        parse_targets(["Dev=1"], ["Dev", "Hk"], train)
    with pytest.raises(D3InputError, match="unknown label 'Dve'"):
        parse_targets(["Dve=1", "Hk=1"], ["Dev", "Hk"], train)
    with pytest.raises(D3InputError, match="give --data"):
        parse_targets(["Dev=high", "Hk=1"], ["Dev", "Hk"], None)
    with pytest.raises(D3InputError, match="expected a number, high or low"):
        parse_targets(["Dev=tall", "Hk=1"], ["Dev", "Hk"], train)


def test_fixed_motifs_become_a_mask_and_tokens():
    mask, tokens = parse_fixed(["2:ACG", "10:TT"], 12)
    assert mask.tolist() == [False, False, True, True, True] + [False] * 5 + [True, True]
    assert decode(tokens[2:5]) == "ACG" and decode(tokens[10:]) == "TT"
    with pytest.raises(D3InputError, match="does not fit"):
        parse_fixed(["11:ACG"], 12)
    with pytest.raises(D3InputError, match="overlaps"):
        parse_fixed(["2:ACG", "3:GG"], 12)
    with pytest.raises(D3InputError, match="POS:SEQUENCE"):
        parse_fixed(["ACG"], 12)


def test_constraints_catch_both_strands_gc_and_homopolymers():
    rows = np.stack([encode(s) for s in ("AGAATTCA", "ACCGGTTA", "AAAAAGCG", "ACGTACGT")])
    constraints = Constraints(forbidden=("GAATTC", "ACCGGT"), gc=(0.3, 0.7), max_homopolymer=4)
    broken = constraints.violations(rows)
    assert any("GAATTC" in r for r in broken[0])
    assert any("ACCGGT" in r for r in broken[1])  # its own reverse complement too
    assert any("homopolymer of 5" in r for r in broken[2])
    assert broken[3] == []
    assert Constraints(forbidden=("GGATCA",)).words() == ["GGATCA", "TGATCC"]
    assert longest_homopolymer(rows).tolist() == [2, 2, 5, 1]
    with pytest.raises(D3InputError, match="--gc"):
        Constraints(gc=(0.8, 0.2))


@pytest.fixture
def toy_oracle(toy, toy_data, tmp_path_factory):
    out = tmp_path_factory.getbasetemp() / "toy-oracle"
    if not (out / "oracle.ckpt").exists():
        assert main(["oracle", "train", "--dataset", "toy", "--data", str(toy_data), "--out",
                     str(out), "--max-epochs", "6", "--no-progress"]) == 0  # fmt: skip
    return out / "oracle.ckpt"


@pytest.fixture
def toy_checkpoint(toy_data, tmp_path_factory):
    path = tmp_path_factory.getbasetemp() / "toy-design-run" / "checkpoints" / "last.ckpt"
    if not path.exists():
        assert main(["train", "--dataset", "toy", "--arch", "Conv", "--data", str(toy_data),
                     "--out", str(path.parent.parent), "--max-steps", "5", "--no-progress"]) == 0  # fmt: skip
    return path


def test_design_writes_ranked_designs_that_satisfy_every_constraint(
    toy_checkpoint, toy_oracle, toy_data, tmp_path
):
    out = tmp_path / "design"
    argv = ["design", "--checkpoint", str(toy_checkpoint), "--target", "copies=high",
            "--num-designs", "12", "--oracle", str(toy_oracle), "--fix", "4:GATTACA",
            "--forbid", "CCCC", "--gc", "0.2", "0.8", "--max-homopolymer", "5",
            "--ground-truth", "--steps", "8", "--out", str(out), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    with np.load(out / "designs.npz") as data:
        tokens, predictions = data["tokens"], data["predictions"]
    assert tokens.shape == (12, 32)
    texts = [decode(row) for row in tokens]
    assert all(t[4:11] == "GATTACA" for t in texts)
    assert not any("CCCC" in t or "GGGG" in t for t in texts)
    gc = np.isin(tokens, (1, 2)).mean(1)
    assert ((gc >= 0.2) & (gc <= 0.8)).all() and (longest_homopolymer(tokens) <= 5).all()
    report = json.loads((out / "report.json").read_text())
    target = report["target"]["copies"]
    distance = np.abs(predictions[:, 0] - target)
    assert (np.diff(distance) >= -1e-6).all()  # ranked, best first
    assert 0.0 <= report["oracle"]["hit_rate"] <= 1.0 and "planted_rule" in report
    assert report["nearest_training_sequence"]["training_sequences"] > 0
    fasta = (out / "designs.fasta").read_text().splitlines()
    assert fasta[0].startswith(">design_1 copies=") and fasta[1] == texts[0]
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["constraints"]["forbidden"] == ["CCCC", "GGGG"]
    assert main(argv) == 1  # refuses to overwrite


def test_design_refuses_a_fixed_motif_that_is_itself_forbidden(toy_checkpoint, tmp_path, capsys):
    argv = ["design", "--checkpoint", str(toy_checkpoint), "--target", "copies=1", "--fix",
            "0:AGAATTCA", "--forbid", "GAATTC", "--out", str(tmp_path / "d"), "--no-progress",
            "--steps", "2"]  # fmt: skip
    assert main(argv) == 1
    assert "fixed motifs themselves contain the forbidden GAATTC" in capsys.readouterr().err


def test_evaluate_sweeps_cfg_weights_of_a_model_trained_with_label_dropout(
    toy_data, toy_oracle, tmp_path
):
    run = tmp_path / "cfg-run"
    assert main(["train", "--dataset", "toy", "--arch", "Conv", "--data", str(toy_data), "--out",
                 str(run), "--max-steps", "5", "--no-progress", "model.null_label=true",
                 "training.label_dropout=0.2", "sampling.guidance=1.5"]) == 0  # fmt: skip
    out = tmp_path / "eval"
    argv = ["evaluate", "--dataset", "toy", "--model-path", str(run), "--ground-truth",
            "--num-samples", "24", "--steps", "4", "--no-discriminator", "--out", str(out),
            "--no-progress", "--guidance-sweep", "0", "2"]  # fmt: skip
    assert main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["sampling"]["guidance"]["cfg"] == 1.5  # the checkpoint's default weight
    sweep = report["guidance_sweep"]
    assert sweep["kind"] == "cfg" and [r["weight"] for r in sweep["rows"]] == [0.0, 2.0]
    for row in sweep["rows"]:
        assert {"sp_mse.ground_truth", "diversity", "memorisation.max"} <= set(row)
    # Same seeds, another weight: other sequences (a 5-step model's scores differ only a little).
    assert sweep["rows"][0]["diversity"] != sweep["rows"][1]["diversity"]
    assert (out / "guidance_sweep.png").stat().st_size > 0
    assert "## Guidance sweep: classifier-free guidance w" in (out / "report.md").read_text()


def test_evaluate_sweeps_oracle_weights_when_the_model_has_no_null_label(
    toy_checkpoint, toy_oracle, tmp_path, capsys
):
    out = tmp_path / "eval"
    base = ["evaluate", "--dataset", "toy", "--model-path", str(toy_checkpoint),
            "--ground-truth", "--num-samples", "16", "--steps", "4", "--no-discriminator",
            "--no-plots", "--out", str(out), "--no-progress", "--guidance-sweep", "0", "1"]  # fmt: skip
    assert main(base) == 1
    assert "give --guide-oracle FILE" in capsys.readouterr().err
    assert main([*base, "--guide-oracle", str(toy_oracle)]) == 0
    sweep = json.loads((out / "report.json").read_text())["guidance_sweep"]
    assert sweep["kind"] == "oracle" and len(sweep["rows"]) == 2
    assert main([*base, "--force", "--guidance", "1"]) == 1
    assert "--guidance needs a model trained with label dropout" in capsys.readouterr().err
