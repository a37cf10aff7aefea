"""Killing ``d3 train`` processes and comparing what they leave: the kill-and-resume checks.

A run is a ``python -m d3_core train`` subprocess. It is killed with SIGKILL either from inside, at
a named point (`d3_core.training.callbacks.KILL_ENV`: a step's end, or inside a checkpoint write
between the temporary file and the rename), or from outside after a delay; it is then resumed
with ``--resume`` until it finishes, and its final checkpoint is compared with an uninterrupted
run's, tensor by tensor with `torch.equal`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from d3_core.training.callbacks import KILL_ENV, TEMPORARY_GLOB

__all__ = [
    "KILLED",
    "Attempt",
    "flat_state",
    "run_train",
    "state_differences",
    "temporary_checkpoints",
]

KILLED = -signal.SIGKILL
"""`subprocess` return code of a process ended by SIGKILL."""


@dataclass
class Attempt:
    """One ``d3 train`` process: how it ended and what it printed."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float
    args: list[str] = field(default_factory=list)

    @property
    def killed(self) -> bool:
        return self.returncode == KILLED


def run_train(
    args: Sequence[str],
    env: Mapping[str, str],
    *,
    kill_at: str | None = None,
    kill_after: float | None = None,
    timeout: float = 300,
) -> Attempt:
    """Runs ``python -m d3_core train ARGS``; kills it at a point or after a delay if asked.

    Args:
        args: The arguments after ``train``.
        env: The process environment (one in which the dataset plugin is installed).
        kill_at: A `KILL_ENV` point, e.g. ``"step:17"`` or ``"checkpoint-write:20"``.
        kill_after: Seconds after the run's ``config.yaml`` appears (the trainer is about to
            start) at which the parent sends SIGKILL; the run may finish first.
        timeout: Seconds before the process counts as hung (`subprocess.TimeoutExpired`).
    """
    env = {k: v for k, v in env.items() if k != KILL_ENV}
    if kill_at is not None:
        env[KILL_ENV] = kill_at
    command = [sys.executable, "-m", "d3_core", "train", *args]
    started = time.monotonic()
    with subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        if kill_after is not None:
            _kill_later(process, _out_dir(args), kill_after, started + timeout)
        try:
            stdout, stderr = process.communicate(
                timeout=max(1.0, started + timeout - time.monotonic())
            )
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise
    return Attempt(process.returncode, stdout, stderr, time.monotonic() - started, command)


def _out_dir(args: Sequence[str]) -> Path:
    for flag in ("--out", "--resume"):
        if flag in args:
            path = Path(args[list(args).index(flag) + 1])
            return path.parent.parent if path.suffix == ".ckpt" else path
    raise ValueError(f"kill_after needs --out or --resume among the arguments, got {list(args)}")


def _kill_later(process: subprocess.Popen, run: Path, delay: float, deadline: float) -> None:
    """SIGKILLs `process` `delay` seconds after its run's config.yaml is (re)written."""
    config = run / "config.yaml"
    before = config.stat().st_mtime_ns if config.exists() else None
    while process.poll() is None and time.monotonic() < deadline:
        if config.exists() and config.stat().st_mtime_ns != before:
            break
        time.sleep(0.01)
    time.sleep(delay)
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)


def flat_state(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(path, leaf) of every leaf of a checkpoint's nested dicts and lists, e.g.
    ``("/optimizer_states[0]/state/3/exp_avg", tensor)``."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from flat_state(item, f"{prefix}/{key}")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from flat_state(item, f"{prefix}[{index}]")
    else:
        yield prefix, value


def state_differences(
    first: Mapping[str, Any], second: Mapping[str, Any], *, ignore: Sequence[str] = ()
) -> list[str]:
    """Where two checkpoints differ: a tensor not `torch.equal` (or of another dtype), any
    other leaf unequal, or a leaf in only one of them.

    Args:
        first: A loaded checkpoint.
        second: Another.
        ignore: Path prefixes (as `flat_state` names them) left out of the comparison.

    Returns:
        One line per difference; empty when the two are the same bit for bit.
    """
    a = {k: v for k, v in flat_state(first) if not k.startswith(tuple(ignore))}
    b = {k: v for k, v in flat_state(second) if not k.startswith(tuple(ignore))}
    lines = [f"{k}: only in the first" for k in sorted(a.keys() - b.keys())]
    lines += [f"{k}: only in the second" for k in sorted(b.keys() - a.keys())]
    for key in sorted(a.keys() & b.keys()):
        x, y = a[key], b[key]
        if isinstance(x, torch.Tensor) or isinstance(y, torch.Tensor):
            same = (
                isinstance(x, torch.Tensor)
                and isinstance(y, torch.Tensor)
                and x.dtype == y.dtype
                and x.shape == y.shape
                and torch.equal(x, y)
            )
            if not same:
                lines.append(f"{key}: tensors differ")
        elif x != y:
            lines.append(f"{key}: {x!r} != {y!r}")
    return lines


def temporary_checkpoints(run: str | os.PathLike) -> list[Path]:
    """The temporary files of unfinished checkpoint writes in a run's ``checkpoints/``."""
    folder = Path(run) / "checkpoints"
    return sorted(folder.glob(TEMPORARY_GLOB)) if folder.is_dir() else []
