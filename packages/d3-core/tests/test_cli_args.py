"""How ``d3`` reads its command line: overrides on both sides of options, paths as values."""

from __future__ import annotations

import shutil

import pytest
from omegaconf import OmegaConf

from d3_core.cli.main import main
from d3_core.training.run import RUN_DIR_ENV


@pytest.fixture(autouse=True)
def _fresh_run_dir_env(monkeypatch):
    monkeypatch.delenv(RUN_DIR_ENV, raising=False)


def stored(run):
    """The config a run stored, read without resolving anything."""
    return OmegaConf.to_container(OmegaConf.load(run / "config.yaml"), resolve=False)


def test_overrides_on_both_sides_of_options_are_all_applied_in_order(tmp_path, toy_data):
    run = tmp_path / "run"
    argv = ["train", "training.batch_size=8", "training.lr=5e-4", "--dataset", "toy", "--data",
            str(toy_data), "training.lr=1e-3", "--arch", "Tran", "training.max_steps=1", "--out",
            str(run), "--no-progress", "training.val_every_n_steps=1"]  # fmt: skip
    assert main(argv) == 0
    training = stored(run)["training"]
    assert (training["batch_size"], training["lr"], training["max_steps"]) == (8, 1e-3, 1)


def test_an_override_after_the_options_is_checked_like_any_other(tmp_path, toy_data, capsys):
    argv = ["train", "--dataset", "toy", "--data", str(toy_data), "--arch", "Tran", "--out",
            str(tmp_path / "run"), "training.max_steps=1", "--no-progress", "training.bogus=1"]  # fmt: skip
    assert main(argv) == 1
    assert capsys.readouterr().err.startswith(
        "d3: error: override 'training.bogus=1': unknown config key 'training.bogus'"
    )
    assert not (tmp_path / "run").exists()


def test_an_undeclared_option_is_still_a_usage_error(tmp_path, toy, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--dataset", "toy", "a.b=1", "--bogus", "training.lr=1"])
    assert exit_.value.code == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["dir #1/toy data.npz", "dir/${oc.env:HOME}.npz", "a: b/x.npz"])
def test_a_data_path_is_taken_as_it_is_never_as_yaml(tmp_path, toy_data, name):
    """`` #`` would start a YAML comment, ``${`` an interpolation, ``: `` a mapping."""
    data = tmp_path / name
    data.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(toy_data, data)
    run = tmp_path / "run"
    argv = ["train", "--dataset", "toy", "--arch", "Tran", "--data", str(data), "--out",
            str(run), "--no-progress", "training.max_steps=1", "training.val_every_n_steps=1"]  # fmt: skip
    assert main(argv) == 0
    assert stored(run)["dataset"]["data"].replace("\\${", "${") == str(data.resolve())
    resumed = ["train", "--resume", str(run), "--no-progress", "training.max_steps=2"]
    assert main(resumed) == 0, "the stored path reads back as the same file"
