"""kill -9 survived: a ``d3 train`` process killed anywhere resumes to an uninterrupted run's bits.

Each run is a subprocess on the toy dataset, killed with SIGKILL (from inside at a named point,
`d3_core.training.callbacks.KILL_ENV`, or from outside after a random delay), resumed with
``--resume`` until it finishes, and compared with an uninterrupted run: every tensor of the final
checkpoint (weights, EMA, optimizer moments, scheduler), the step counters, and the rows of
``metrics.csv``. After every kill ``last.ckpt`` loads through `d3_core.checkpoints`.
"""

from __future__ import annotations

import csv
import os
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from d3_core.checkpoints.load import read_checkpoint
from d3_core.testing.kill_resume import (
    run_train,
    state_differences,
    temporary_checkpoints,
)
from d3_core.training.run import RUN_DIR_ENV

TESTS = Path(__file__).parent

STEPS = 30
COMMON = ("--no-progress", "--max-steps", str(STEPS), "training.checkpoint_every_n_steps=10",
          "training.val_every_n_steps=10", "training.log_every_n_steps=5",
          "training.num_workers=0", "training.label_dropout=0.1", "training.ema_decay=0.9",
          "model.dropout=0.1", "model.null_label=true")  # fmt: skip

IGNORED = (
    # Where the run lives: the two runs write into different folders.
    "/callbacks/ModelCheckpoint",
    # Lightning's loop bookkeeping: a resumed run's step-indexed loader is shorter, so Lightning
    # counts an extra "epoch" when it runs out (the batches, keyed by the global step, are the
    # same; `global_step` and the optimizer's own step counters are compared).
    "/loops/",
    "/epoch",
)

RESUME_WARNING = "your dataloader is not resumable"


@pytest.fixture(scope="module")
def environment(tmp_path_factory) -> dict[str, str]:
    """Environment in which a new Python process finds the toy plugin through its entry point."""
    site = tmp_path_factory.mktemp("site")
    info = site / "d3_toy-0.0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: d3-toy\nVersion: 0.0.1\n")
    (info / "entry_points.txt").write_text("[d3.datasets]\ntoy = toyplugin:PLUGIN\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(TESTS), env.get("PYTHONPATH", "")])
    env.pop(RUN_DIR_ENV, None)
    return env


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """The tiny toy data file (256 training sequences: a 30-step run crosses two epochs)."""
    import toyplugin

    return toyplugin.write_synthetic(tmp_path_factory.mktemp("data") / "toy.npz", size="tiny")


def fresh_args(run: Path, data: Path, *extra: str) -> list[str]:
    return ["--dataset", "toy", "--arch", "Tran", "--data", str(data), "--out", str(run),
            *COMMON, *extra]  # fmt: skip


def metric_rows(run: Path) -> list[tuple]:
    """(step, train/loss, val/loss) of every row of the run's metrics.csv, in file order."""
    with open(run / "logs" / "metrics.csv", newline="") as file:
        return [(int(r["step"]), r["train/loss"], r["val/loss"]) for r in csv.DictReader(file)]


def check_survivor(run: Path, at_most: int) -> int:
    """Checks what a killed run left: a last.ckpt that loads, no half-written file under its
    name. Returns its step."""
    state = read_checkpoint(run / "checkpoints" / "last.ckpt")  # digest checked: never half
    assert 0 < state["global_step"] <= at_most
    return int(state["global_step"])


def finish(run: Path, env: dict[str, str], *, kill_at: str | None = None) -> None:
    """Resumes `run` once; it must finish (or die at `kill_at`), leaving no temporary file."""
    attempt = run_train(["--resume", str(run)], env, kill_at=kill_at)
    # Lightning's "not resumable ... unreliable results" warning is silenced: this resume is exact.
    assert RESUME_WARNING not in attempt.stderr
    if kill_at is None:
        assert attempt.returncode == 0, attempt.stderr[-3000:]
        assert temporary_checkpoints(run) == []
    else:
        assert attempt.killed, attempt.stderr[-3000:]


def assert_same_run(resumed: Path, reference: Path) -> None:
    """The two runs' final checkpoints and logs are equal bit for bit."""
    a = torch.load(resumed / "checkpoints" / "last.ckpt", weights_only=True)
    b = torch.load(reference / "checkpoints" / "last.ckpt", weights_only=True)
    assert a["global_step"] == b["global_step"] == STEPS
    assert a["ema"]["num_updates"] == STEPS
    assert state_differences(a, b, ignore=IGNORED) == []
    rows = metric_rows(resumed)
    assert len(rows) == len(set(rows)), "a step was logged twice"
    assert rows == metric_rows(reference)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, data, environment) -> Path:
    """An uninterrupted run."""
    run = tmp_path_factory.mktemp("reference") / "run"
    attempt = run_train(fresh_args(run, data), environment)
    assert attempt.returncode == 0, attempt.stderr[-3000:]
    return run


def test_a_run_killed_inside_a_checkpoint_write_and_after_a_log_write_resumes_bit_for_bit(
    tmp_path, data, environment, reference
):
    run = tmp_path / "run"
    # Inside the write of step 20's checkpoint: its temporary file is complete, not yet renamed.
    attempt = run_train(fresh_args(run, data), environment, kill_at="checkpoint-write:20")
    assert attempt.killed, attempt.stderr[-3000:]
    assert len(temporary_checkpoints(run)) == 1, "the kill did not land inside the write"
    assert check_survivor(run, 10) == 10
    assert max(step for step, *_ in metric_rows(run)) == 14  # rows past the checkpoint
    # After step 27 ends: rows of steps 20-24 are written, the last checkpoint is step 20's.
    finish(run, environment, kill_at="step:27")
    assert temporary_checkpoints(run) == []  # the stray one was removed when it resumed
    assert check_survivor(run, 20) == 20
    assert max(step for step, *_ in metric_rows(run)) == 24
    finish(run, environment)
    assert_same_run(run, reference)


def test_the_comparison_sees_a_run_that_differs(tmp_path, data, environment, reference):
    """Negative control: another seed (another data order, noise and start) is caught."""
    run = tmp_path / "run"
    attempt = run_train(fresh_args(run, data, "training.seed=1"), environment)
    assert attempt.returncode == 0, attempt.stderr[-3000:]
    a = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    b = torch.load(reference / "checkpoints" / "last.ckpt", weights_only=True)
    differences = state_differences(a, b, ignore=IGNORED)
    assert "/state_dict/score_model.vocab_embed.embedding: tensors differ" in differences
    assert any(line.startswith("/ema/shadow/") for line in differences)
    assert any(line.startswith("/optimizer_states[0]/state/") for line in differences)


@pytest.mark.slow
def test_runs_killed_at_ten_random_points_each_resume_bit_for_bit(
    tmp_path, data, environment, reference
):
    """Ten kill points, seeded: steps, checkpoint writes and outside kills after random delays."""
    rng = random.Random(20261204)
    plans = [("step", rng.randrange(11, STEPS)) for _ in range(3)]
    plans += [("checkpoint-write", rng.choice((10, 20, 30))) for _ in range(3)]
    plans += [("after", rng.uniform(0.0, 1.5)) for _ in range(4)]

    def one(index_plan):
        index, (kind, where) = index_plan
        run = tmp_path / f"run{index}"
        args = fresh_args(run, data)
        if kind == "after":
            attempt = run_train(args, environment, kill_after=where)
        else:
            attempt = run_train(args, environment, kill_at=f"{kind}:{where}")
        landed = attempt.killed
        if not (run / "checkpoints" / "last.ckpt").exists():
            # Killed before the first checkpoint: nothing to resume, so start again.
            assert landed, attempt.stderr[-3000:]
            attempt = run_train([*args, "--force"], environment)
            assert attempt.returncode == 0, attempt.stderr[-3000:]
        elif landed and check_survivor(run, STEPS) < STEPS:
            finish(run, environment)
        assert_same_run(run, reference)
        return kind, where, landed

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(one, enumerate(plans)))
    assert sum(landed for *_, landed in outcomes) >= 7, outcomes
