"""Sampling during training: logged, best kept, and the training itself left exactly as it was."""

import csv

import pytest
import torch

from d3_core.checkpoints.load import load_checkpoint
from d3_core.config import resolve_config
from d3_core.errors import D3ConfigError
from d3_core.training.run import RunDir, train

pytestmark = pytest.mark.usefixtures("one_thread")


def _config(data, *extra):
    overrides = [f"dataset.data={data}", "training.max_steps=4", "training.num_workers=0",
                 "training.log_every_n_steps=1", "training.val_every_n_steps=2",
                 "training.val_batches=1", *extra]  # fmt: skip
    return resolve_config("toy", "conv", overrides=overrides)


def _train(cfg, root, monkeypatch):
    monkeypatch.setenv("PL_GLOBAL_SEED", "0")
    return train(cfg, RunDir(root), progress=False)


def test_sampling_during_training_logs_sp_mse_keeps_the_best_and_changes_no_weight(
    toy, toy_data, tmp_path, monkeypatch
):
    sampled = _config(toy_data, "training.sample_eval_every_n_steps=2",
                      "training.sample_eval_scorer=ground_truth", "training.sample_eval_labels=8",
                      "training.sample_eval_steps=3")  # fmt: skip
    with_eval = _train(sampled, tmp_path / "with", monkeypatch)
    without = _train(_config(toy_data), tmp_path / "without", monkeypatch)

    with open(tmp_path / "with" / "logs" / "metrics.csv") as file:
        rows = list(csv.DictReader(file))
    logged = [float(r["val/sp_mse"]) for r in rows if r.get("val/sp_mse")]
    assert len(logged) == 2  # steps 2 and 4
    best = tmp_path / "with" / "checkpoints" / "best_sp_mse.ckpt"
    assert load_checkpoint(best).step in (2, 4)
    state = torch.load(best, weights_only=True)
    kept = [c for k, c in state["callbacks"].items() if "SampleEvaluation" in k]
    assert kept and kept[0]["best"] == pytest.approx(min(logged))

    a = torch.load(with_eval.last_checkpoint, weights_only=True)
    b = torch.load(without.last_checkpoint, weights_only=True)
    for key, value in b["state_dict"].items():
        assert torch.equal(a["state_dict"][key], value), key
    for key, value in b["ema"]["shadow"].items():
        assert torch.equal(a["ema"]["shadow"][key], value), key


def test_an_oracle_scorer_needs_an_oracle_file(toy, toy_data):
    with pytest.raises(D3ConfigError, match=r"training\.sample_eval_oracle"):
        _config(toy_data, "training.sample_eval_every_n_steps=2")
