"""A failed ``d3 train`` loses nothing: validate first and replace last, stop on divergence,
survive a full disk, refuse hardware it cannot start; every failure is one ``d3: error:`` line."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from d3_core.cli.main import main
from d3_core.training.run import RUN_DIR_ENV


@pytest.fixture(autouse=True)
def _fresh_run_dir_env(monkeypatch):
    """Each test starts as a first process: no run directory inherited from another test."""
    monkeypatch.delenv(RUN_DIR_ENV, raising=False)
    for variable in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_NTASKS",
                     "SLURM_PROCID", "MASTER_ADDR", "TORCHELASTIC_RUN_ID"):  # fmt: skip
        monkeypatch.delenv(variable, raising=False)


def train_cli(run: Path, data: Path, *extra: str) -> int:
    return main(
        ["train", "--dataset", "toy", "--arch", "Tran", "--data", str(data), "--out", str(run),
         "--no-progress", *extra]
    )  # fmt: skip


def one_error_line(capsys) -> str:
    """The command's stderr, which must be exactly one ``d3: error:`` line; returns its text."""
    err = capsys.readouterr().err
    assert err.startswith("d3: error: "), err
    assert err.count("\n") == 1, err
    return err[len("d3: error: ") : -1]


def digests(run: Path) -> dict[str, str]:
    """SHA-256 of every file of a run (its lock file aside), by relative path."""
    return {
        str(path.relative_to(run)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(run.rglob("*"))
        if path.is_file() and path.name != ".d3.lock"
    }


@pytest.fixture
def old_run(tmp_path, toy_data, capsys) -> Path:
    """A finished two-step run, the one a bad ``--force`` must not destroy."""
    run = tmp_path / "run"
    assert train_cli(run, toy_data, "--max-steps", "2") == 0
    capsys.readouterr()
    return run


# --- --force: validate first, replace last ----------------------------------------------------


def test_force_with_a_bad_data_file_keeps_the_old_run(old_run, tmp_path, capsys):
    before = digests(old_run)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not an npz")
    assert train_cli(old_run, bad, "--max-steps", "2", "--force") == 1
    assert one_error_line(capsys).startswith(f"{bad}: not a toy data file")
    assert digests(old_run) == before


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_force_with_gpus_on_a_cpu_machine_keeps_the_old_run(old_run, toy_data, capsys):
    before = digests(old_run)
    assert train_cli(old_run, toy_data, "--max-steps", "2", "--force", "--gpus", "1") == 1
    message = one_error_line(capsys)
    assert message.startswith("--gpus 1: ")
    assert "available: cpu" in message
    assert digests(old_run) == before


def test_force_replaces_the_old_run_once_the_new_one_starts(old_run, toy_data):
    old_config = (old_run / "config.yaml").read_text()
    assert train_cli(old_run, toy_data, "--max-steps", "3", "--force", "training.lr=1e-3") == 0
    assert torch.load(old_run / "checkpoints/last.ckpt", weights_only=True)["global_step"] == 3
    assert (old_run / "config.yaml").read_text() != old_config
    assert json.loads((old_run / "train.json").read_text())["steps"] == 3


# --- resume: a refused resume changes nothing; the summary counts this invocation ------------


def test_a_refused_resume_leaves_the_run_as_it_was(old_run, capsys):
    before = digests(old_run)
    last = old_run / "checkpoints" / "last.ckpt"
    assert main(["train", "--resume", str(last), "--max-steps", "4", "model.hidden_size=48",
                 "--no-progress"]) == 1  # fmt: skip
    message = one_error_line(capsys)
    assert str(last) in message
    assert "model.hidden_size" in message or "shape" in message
    assert digests(old_run) == before


def test_a_resume_reports_the_steps_of_this_invocation_and_of_the_run(old_run, capsys):
    last = old_run / "checkpoints" / "last.ckpt"
    assert main(["train", "--resume", str(last), "--max-steps", "5", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "trained 3 steps (steps 2 → 5 of the run)" in out
    summary = json.loads((old_run / "train.json").read_text())
    assert (summary["steps"], summary["first_step"]) == (5, 2)


# --- divergence: stop at the first non-finite loss, keep the last good checkpoint ------------


def test_a_diverging_run_stops_keeps_the_last_good_checkpoint_and_exits_1(
    tmp_path, toy_data, capsys
):
    run = tmp_path / "run"
    code = train_cli(run, toy_data, "--max-steps", "200", "training.lr=1e6",
                     "training.warmup_steps=0", "training.checkpoint_every_n_steps=1",
                     "training.val_every_n_steps=1000")  # fmt: skip
    assert code == 1
    message = one_error_line(capsys)
    assert message.startswith("training diverged at step ")
    assert "training.lr" in message
    diverged_at = int(message.split("step ")[1].split(":")[0])
    last = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert 0 < last["global_step"] <= diverged_at
    for tensor in [*last["state_dict"].values(), *last["ema"]["shadow"].values()]:
        assert torch.isfinite(tensor).all()
    assert f"last good checkpoint: {run.resolve() / 'checkpoints' / 'last.ckpt'}" in message
    assert not list((run / "checkpoints").glob("*.tmp*"))


def test_labels_that_overflow_stop_the_run_before_any_checkpoint(tmp_path, toy_data, capsys):
    with np.load(toy_data) as data:
        arrays = dict(data)
    arrays["train_labels"] = np.full_like(arrays["train_labels"], 1e30)
    huge = tmp_path / "huge.npz"
    np.savez(huge, **arrays)
    run = tmp_path / "run"
    assert train_cli(run, huge, "--max-steps", "5") == 1
    message = one_error_line(capsys)
    assert message.startswith("training diverged at step 0: ")
    assert "no checkpoint was written" in message
    assert not run.exists(), "a run that never checkpointed leaves no directory"


# --- full disk during training ---------------------------------------------------------------


def test_a_full_disk_during_a_checkpoint_keeps_the_last_good_one(
    tmp_path, toy_data, capsys, monkeypatch
):
    import shutil

    real_save, real_usage = torch.save, shutil.disk_usage
    calls = {"n": 0}

    def filling_save(obj, f, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] < 2:  # the first checkpoint fits; the disk is full from the second on
            return real_save(obj, f, *args, **kwargs)
        Path(f).write_bytes(b"\0" * 1000)
        monkeypatch.setattr(shutil, "disk_usage", lambda path: real_usage(path)._replace(free=0))
        # What torch's zip writer raises on a full disk: no errno, no file name.
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")

    run = tmp_path / "run"
    monkeypatch.setattr(torch, "save", filling_save)
    code = train_cli(run, toy_data, "--max-steps", "6", "training.checkpoint_every_n_steps=2",
                     "training.val_every_n_steps=1000")  # fmt: skip
    monkeypatch.setattr(torch, "save", real_save)
    monkeypatch.setattr(shutil, "disk_usage", real_usage)
    assert code == 1
    last = run.resolve() / "checkpoints" / "last.ckpt"
    assert one_error_line(capsys) == (
        f"cannot write '{last}': the disk is full; free some space or choose another --out"
    )
    assert torch.load(last, weights_only=True)["global_step"] == 2
    assert sorted(p.name for p in last.parent.iterdir()) == ["last.ckpt"]


def _mount_tmpfs(path: Path, size: int) -> bool:
    """Mounts a tmpfs of `size` bytes at `path`; False where this user may not mount."""
    import subprocess

    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True)  # fmt: skip
    return done.returncode == 0


def test_training_into_a_disk_that_fills_up_stops_cleanly(tmp_path, toy_data, checkpoint, capsys):
    """A real full disk: a tmpfs that holds one checkpoint but not the next one beside it."""
    disk = tmp_path / "disk"
    size = checkpoint.stat().st_size
    if not _mount_tmpfs(disk, int(size * 1.5)):
        pytest.skip("mounting a tmpfs needs root")
    try:
        run = disk / "run"
        code = train_cli(run, toy_data, "--max-steps", "6", "training.checkpoint_every_n_steps=2",
                         "training.val_every_n_steps=1000")  # fmt: skip
        assert code == 1
        message = one_error_line(capsys)
        assert message.startswith(f"cannot write '{run.resolve() / 'checkpoints'}")
        assert "the disk is full" in message
        last = run / "checkpoints" / "last.ckpt"
        assert torch.load(last, weights_only=True)["global_step"] == 2
        assert sorted(p.name for p in last.parent.iterdir()) == ["last.ckpt"]
    finally:
        import subprocess

        subprocess.run(["umount", str(disk)], check=False)


# --- hardware a run cannot start on ----------------------------------------------------------


def test_num_nodes_above_one_without_a_launcher_is_refused(tmp_path, toy_data, capsys):
    run = tmp_path / "run"
    assert train_cli(run, toy_data, "--num-nodes", "2") == 1
    message = one_error_line(capsys)
    assert message.startswith("--num-nodes 2 (trainer.num_nodes = 2) needs a multi-node launcher")
    assert not run.exists()


def test_make_data_into_a_directory_is_refused(tmp_path, toy, capsys):
    assert main(["make-data", "--dataset", "toy", "--out", str(tmp_path)]) == 1
    message = one_error_line(capsys)
    assert message.startswith(f"--out {tmp_path} is a directory")
    assert list(tmp_path.iterdir()) == []


# --- a diverged checkpoint from elsewhere is refused, not sampled into noise -----------------


def test_a_checkpoint_with_nan_ema_weights_is_refused_by_sample(checkpoint, tmp_path, capsys):
    from d3_core.checkpoints.digest import DIGEST_KEY

    state = torch.load(checkpoint, weights_only=True)
    del state["d3"][DIGEST_KEY]  # as a file written before d3 stored digests
    name = sorted(state["ema"]["shadow"])[0]
    state["ema"]["shadow"][name] = torch.full_like(state["ema"]["shadow"][name], float("nan"))
    diverged = tmp_path / "diverged.ckpt"
    torch.save(state, diverged)
    labels = tmp_path / "labels.tsv"
    labels.write_text("toy\n1.0\n")
    out = tmp_path / "samples"
    assert main(["sample", "--checkpoint", str(diverged), "--labels", str(labels),
                 "--out", str(out)]) == 1  # fmt: skip
    message = one_error_line(capsys)
    assert message.startswith(f"{diverged}: the EMA weights hold NaN or infinite values")
    assert "use an earlier checkpoint" in message
    assert not out.exists()


def _csv_rows(path: Path) -> list[dict[str, str]]:
    import csv

    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def test_a_new_metrics_column_rewrites_metrics_csv_whole_or_not_at_all(tmp_path, monkeypatch):
    """Lightning rewrites metrics.csv in place when a column appears; a failure in that rewrite
    (kill, full disk) must keep every row logged so far and leave no temp file."""
    import csv
    import errno

    from d3_core.training.callbacks import ContinuingCSVLogger

    writer = ContinuingCSVLogger(tmp_path / "logs", first_step=0).experiment
    writer.log_metrics({"train/loss": 1.5}, step=0)
    writer.log_metrics({"train/loss": 1.25}, step=1)
    writer.save()
    path = tmp_path / "logs" / "metrics.csv"
    before = path.read_bytes()

    def full_disk(self, rows):
        raise OSError(errno.ENOSPC, "No space left on device")

    writer.log_metrics({"train/loss": 1.0, "val/loss": 2.0}, step=2)
    with monkeypatch.context() as patch:
        patch.setattr(csv.DictWriter, "writerows", full_disk)
        with pytest.raises(OSError, match="No space left"):
            writer.save()
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["metrics.csv"]

    writer.save()  # the disk has room again: the rewrite carries the old rows and the new one
    rows = _csv_rows(path)
    assert [(r["step"], r["train/loss"], r["val/loss"]) for r in rows] == [
        ("0", "1.5", ""), ("1", "1.25", ""), ("2", "1.0", "2.0")
    ]  # fmt: skip


def test_a_resumed_writer_removes_a_rewrite_a_killed_run_left_and_keeps_earlier_rows(tmp_path):
    from d3_core.training.callbacks import ContinuingCSVLogger

    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "metrics.csv").write_text("step,train/loss\n0,1.5\n1,1.25\n2,1.0\n")
    stray = logs / ".metrics.csv.k1ll3d.tmp"
    stray.write_text("step,train/loss,val/loss\n0,1.5,\n")
    writer = ContinuingCSVLogger(logs, first_step=2).experiment  # starting the writer cleans up
    assert writer.metrics_keys == ["step", "train/loss"]
    assert not stray.exists()
    assert [(r["step"], r["train/loss"]) for r in _csv_rows(logs / "metrics.csv")] == [
        ("0", "1.5"), ("1", "1.25")
    ]  # fmt: skip
