"""Output directories: refused when not d3's, one writer at a time, no leftovers after a failed start."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time

import pytest

from d3_core.outputs import LOCK_NAME, D3OutputError, OutputBusyError, claim_output_dir, disk_error

OWNED = ("config.yaml", "checkpoints")


def test_a_file_is_refused_as_an_output_directory(tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("mine")
    with (
        pytest.raises(D3OutputError, match="is a file"),
        claim_output_dir(target, owned=OWNED, what="a run"),
    ):
        pass
    assert target.read_text() == "mine"


def test_a_directory_of_unrelated_files_is_refused_and_left_alone(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "config.yaml").write_text("d3's")
    with (
        pytest.raises(D3OutputError, match=r"d3 did not write \(notes.txt\)"),
        claim_output_dir(tmp_path, owned=OWNED, what="a run"),
    ):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml", "notes.txt"]


def test_a_directory_of_d3_files_is_claimed_and_the_lock_goes_afterwards(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    with claim_output_dir(tmp_path, owned=OWNED, what="a run") as out:
        assert out == tmp_path.resolve()
        assert (tmp_path / LOCK_NAME).read_text().strip() == str(os.getpid())
    assert not (tmp_path / LOCK_NAME).exists()


def test_a_second_writer_is_refused_while_the_first_holds_the_directory(tmp_path):
    out = tmp_path / "run"
    with claim_output_dir(out, owned=OWNED, what="a run"):
        (out / "config.yaml").write_text("first")
        busy = pytest.raises(OutputBusyError, match=rf"pid {os.getpid()}\) is writing a run")
        with busy, claim_output_dir(out, owned=OWNED, what="a run"):
            (out / "config.yaml").write_text("second")
    assert (out / "config.yaml").read_text() == "first"


def test_a_failed_start_removes_the_directory_it_created(tmp_path):
    out = tmp_path / "new" / "run"
    with pytest.raises(RuntimeError), claim_output_dir(out, owned=OWNED, what="a run"):
        (out / "config.yaml").write_text("half")
        raise RuntimeError("bad data")
    assert not out.exists()


def test_a_failure_keeps_what_keep_on_error_values_and_every_existing_directory(tmp_path):
    out = tmp_path / "run"
    keep = lambda path: (path / "checkpoints").exists()  # noqa: E731
    with (
        pytest.raises(RuntimeError),
        claim_output_dir(out, owned=OWNED, what="a run", keep_on_error=keep),
    ):
        (out / "checkpoints").mkdir()
        raise RuntimeError("crash after the first checkpoint")
    assert (out / "checkpoints").is_dir() and not (out / LOCK_NAME).exists()
    with pytest.raises(RuntimeError), claim_output_dir(out, owned=OWNED, what="a run"):
        raise RuntimeError("a failure in a directory that existed")
    assert out.is_dir()


def test_the_lock_of_a_killed_writer_does_not_block_the_next(tmp_path):
    out = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", (
            "import sys, time\n"
            "from d3_core.outputs import claim_output_dir\n"
            f"with claim_output_dir({str(out)!r}, owned=(), what='samples'):\n"
            "    print('held', flush=True)\n"
            "    time.sleep(60)\n"
        )],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        busy = pytest.raises(OutputBusyError, match=rf"pid {holder.pid}\)")
        with busy, claim_output_dir(out, owned=(), what="samples"):
            pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (out / LOCK_NAME).exists()  # left by the killed process, but no longer locked
    deadline = time.monotonic() + 5
    with claim_output_dir(out, owned=(), what="samples"):
        assert time.monotonic() < deadline


@pytest.mark.parametrize(
    ("code", "fix"),
    [(errno.ENOSPC, "disk is full"), (errno.EROFS, "read-only"), (errno.EACCES, "permission")],
)
def test_disk_errors_become_one_line_errors_naming_the_path(tmp_path, code, fix):
    error = disk_error(OSError(code, os.strerror(code), str(tmp_path / "x")))
    assert fix in str(error) and str(tmp_path / "x") in str(error) and "\n" not in str(error)
    assert disk_error(OSError(errno.ENOENT, "gone")) is None
