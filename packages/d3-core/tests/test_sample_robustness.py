"""`d3 sample`, `d3 design`, `d3 evaluate` and `d3 oracle train` refuse bad devices, outputs and
inputs in one line, never leave a partial set behind, and sample each sequence from its own seed."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from d3_core.cli.main import main
from d3_core.devices import resolve_device
from d3_core.errors import D3ConfigError, D3InputError
from d3_core.generation.sequences import read_samples
from d3_core.outputs import LOCK_NAME

pytestmark = pytest.mark.usefixtures("one_thread")


def sample(checkpoint: Path, out: Path, *extra: str) -> int:
    return main(["sample", "--checkpoint", str(checkpoint), "--out", str(out), "--no-progress",
                 "--steps", "3", *extra])  # fmt: skip


def one_error(capsys) -> str:
    """The one line on stderr, which must be a `d3: error:` line; returns its message."""
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("d3: error: "), lines
    return lines[0].removeprefix("d3: error: ")


def entries(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir())


def snapshot(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


# -- devices -------------------------------------------------------------------------------------


def test_an_unusable_device_names_the_available_ones(monkeypatch):
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(D3ConfigError, match=r"--device cuda: .*; available: cpu$"):
            resolve_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("cuda:0") == "cuda:0" and resolve_device(None) == "cuda"
    message = r"--device cuda:7: this machine has 1 CUDA device\(s\) \(cuda:0..cuda:0\)"
    with pytest.raises(D3ConfigError, match=message + "; available: cpu, cuda:0"):
        resolve_device("cuda:7")
    with pytest.raises(D3ConfigError, match=r"'banana' is not a device; use one of: cpu, cuda:0"):
        resolve_device("banana")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(D3ConfigError, match="no Apple MPS device here"):
        resolve_device("mps")
    assert resolve_device("CPU") == "cpu"


@pytest.mark.parametrize("device", ["cuda", "cuda:7", "mps", "banana"])
@pytest.mark.parametrize("command", ["sample", "design", "evaluate", "oracle"])
def test_every_command_refuses_a_missing_device_in_one_line_before_writing(
    command, device, tmp_path, capsys, monkeypatch, toy
):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "out"
    argv = {
        "sample": ["sample", "--checkpoint", "x.ckpt", "--from-test-set", "--device", device],
        "design": ["design", "--checkpoint", "x.ckpt", "--target", "copies=1", "--device", device],
        "evaluate": ["evaluate", "--dataset", "toy", "--samples", "s.npz", "--ground-truth",
                     "--device", device],
        "oracle": ["oracle", "train", "--dataset", "toy", "--data", "d.npz", "--gpus"],
    }[command]  # fmt: skip
    assert main([*argv, "--out", str(out)]) == 1
    message = one_error(capsys)
    assert message.endswith("available: cpu") or message.endswith("use one of: cpu"), message
    assert (device if command != "oracle" else "--gpus") in message
    assert not out.exists()


# -- output directories --------------------------------------------------------------------------


def test_sample_refuses_a_file_and_a_directory_of_other_files_as_out(tmp_path, capsys):
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    assert sample(Path("x.ckpt"), target, "--from-test-set") == 1
    assert "is a file; give a directory for samples" in one_error(capsys)
    assert target.read_text() == "mine"
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.tex").write_text("mine")
    assert sample(Path("x.ckpt"), folder, "--from-test-set") == 1
    assert "holds files d3 did not write (thesis.tex)" in one_error(capsys)
    assert entries(folder) == ["thesis.tex"]


@pytest.mark.parametrize("command", ["design", "evaluate"])
def test_design_and_evaluate_refuse_a_directory_of_other_files(command, tmp_path, capsys, toy):
    (tmp_path / "data.csv").write_text("mine")
    argv = {
        "design": ["design", "--checkpoint", "x.ckpt", "--target", "copies=1"],
        "evaluate": ["evaluate", "--dataset", "toy", "--samples", "s.npz", "--ground-truth"],
    }[command]
    assert main([*argv, "--out", str(tmp_path)]) == 1
    assert "holds files d3 did not write (data.csv)" in one_error(capsys)
    assert entries(tmp_path) == ["data.csv"]


def test_a_second_sample_into_the_same_out_is_refused_while_the_first_writes(
    tmp_path, checkpoint, capsys
):
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c", (
            "import time\n"
            "from d3_core.generation.filesets import claim\n"
            "from d3_core.generation.sequences import OUTPUT_FILES\n"
            f"with claim({str(out)!r}, owned=OUTPUT_FILES, what='samples'):\n"
            "    print('held', flush=True)\n"
            "    time.sleep(60)\n"
        )],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        assert sample(checkpoint, out, "--from-test-set", "--num-samples", "2") == 1
        message = one_error(capsys)
        assert f"another d3 process (pid {holder.pid}) is writing samples into {out}" in message
        assert entries(out) == [LOCK_NAME]  # nothing of the refused run
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert sample(checkpoint, out, "--from-test-set", "--num-samples", "2") == 0


# -- replacing a set: all or nothing -------------------------------------------------------------


def _fail_on(monkeypatch, module, names: set[str], code: int = errno.ENOSPC) -> None:
    """Makes `module`'s open() of any of `names` (wherever it is) fail as a full disk would."""
    real_open = open

    def failing_open(path, *args, **kwargs):
        if Path(path).name in names:
            raise OSError(code, os.strerror(code), str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(module, "open", failing_open, raising=False)


@pytest.mark.parametrize("failing", ["labels.tsv", "provenance.json"])
def test_a_full_disk_during_sample_force_keeps_the_old_set_and_leaves_nothing_else(
    tmp_path, checkpoint, capsys, monkeypatch, failing
):
    from d3_core.generation import sequences

    out = tmp_path / "out"
    assert sample(checkpoint, out, "--from-test-set", "--num-samples", "3", "--seed", "1") == 0
    before = snapshot(out)
    capsys.readouterr()
    argv = ["--from-test-set", "--num-samples", "5", "--seed", "2", "--force"]
    with monkeypatch.context() as patch:
        _fail_on(patch, sequences, {failing})
        assert sample(checkpoint, out, *argv) == 1
    assert one_error(capsys) == (
        f"cannot write {str(out / failing)!r}: the disk is full; free some space or choose "
        "another --out"
    )
    assert snapshot(out) == before  # no partial, temporary, staging or lock file either
    assert sample(checkpoint, out, *argv) == 0
    assert snapshot(out) != before and entries(out) == sorted(before)


def test_a_full_disk_in_the_npz_of_sample_force_keeps_the_old_set(
    tmp_path, checkpoint, capsys, monkeypatch
):
    out = tmp_path / "out"
    assert sample(checkpoint, out, "--from-test-set", "--num-samples", "3") == 0
    before = snapshot(out)
    capsys.readouterr()

    def full(file, **arrays):
        file.write(b"PK partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # a write() names no file

    monkeypatch.setattr(np, "savez", full)
    assert sample(checkpoint, out, "--from-test-set", "--num-samples", "4", "--force") == 1
    assert one_error(capsys) == (
        f"cannot write {str(out / 'samples.npz')!r}: the disk is full; free some space or "
        "choose another --out"
    )
    assert snapshot(out) == before


def test_a_read_only_out_is_one_line_and_keeps_the_old_set(
    tmp_path, checkpoint, capsys, monkeypatch
):
    out = tmp_path / "out"
    assert sample(checkpoint, out, "--from-test-set", "--num-samples", "2") == 0
    before = snapshot(out)
    capsys.readouterr()
    if os.geteuid() == 0:  # root writes through chmod; fail the lock's open as the kernel would
        import d3_core.outputs

        _fail_on(monkeypatch, d3_core.outputs, {LOCK_NAME}, errno.EACCES)
    else:
        out.chmod(0o555)
    try:
        assert sample(checkpoint, out, "--from-test-set", "--num-samples", "2", "--force") == 1
    finally:
        out.chmod(0o755)
    assert one_error(capsys) == (
        f"cannot write {str(out)!r}: permission denied; choose a directory you can write to"
    )
    assert snapshot(out) == before


def _write_samples_npz(path: Path, toy, toy_data: Path, reverse: bool) -> None:
    tokens = toy.load("data_loader")(toy_data)["test"].tokens.numpy()
    np.savez(path, tokens=(tokens[::-1] if reverse else tokens).astype(np.uint8))


@pytest.mark.parametrize("failing", ["report.md", "kmer_spectrum_k3.png"])
def test_a_failed_evaluate_force_keeps_the_whole_old_report(
    tmp_path, toy, toy_data, capsys, monkeypatch, failing
):
    samples = tmp_path / "s.npz"
    _write_samples_npz(samples, toy, toy_data, reverse=False)
    out = tmp_path / "eval"
    argv = ["evaluate", "--dataset", "toy", "--data", str(toy_data), "--samples", str(samples),
            "--ground-truth", "--no-discriminator", "--kmer", "3", "--out", str(out),
            "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    before = snapshot(out)
    assert {"report.json", "report.md", "kmer_spectrum_k3.png"} <= set(before)
    capsys.readouterr()
    _write_samples_npz(samples, toy, toy_data, reverse=True)
    if failing.endswith(".png"):
        import matplotlib.figure

        real_savefig = matplotlib.figure.Figure.savefig

        def full(self, path, *args, **kwargs):
            if failing in Path(path).name:  # written beside its name, then renamed
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
            return real_savefig(self, path, *args, **kwargs)

        monkeypatch.setattr(matplotlib.figure.Figure, "savefig", full)
    else:  # report.md is written by Path.write_text
        real = Path.write_text

        def write_text(self, *args, **kwargs):
            if self.name == failing:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
            return real(self, *args, **kwargs)

        monkeypatch.setattr(Path, "write_text", write_text)
    assert main([*argv, "--force"]) == 1
    assert one_error(capsys) == (
        f"cannot write {str(out / failing)!r}: the disk is full; free some space or choose "
        "another --out"
    )
    assert snapshot(out) == before


# -- inputs that used to end in a traceback ------------------------------------------------------


@pytest.mark.parametrize("count", ["1e12", "0", "-3", "2.5"])
def test_a_num_samples_that_is_not_a_positive_integer_is_a_usage_error(count, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        sample(Path("x.ckpt"), tmp_path / "out", "--from-test-set", "--num-samples", count)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "--num-samples" in err.splitlines()[-1]
    assert not (tmp_path / "out").exists()


def test_a_num_samples_that_cannot_fit_in_memory_is_refused_before_sampling(
    tmp_path, checkpoint, capsys
):
    assert sample(checkpoint, tmp_path / "out", "--from-test-set", "--num-samples",
                  "1000000000000") == 1  # fmt: skip
    message = one_error(capsys)
    assert message.startswith("--num-samples 1000000000000: 1000000000000 sequences of 32 bp")
    assert "GiB of memory available" in message and "--first-index" in message
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("option", "value"), [("--seed", "-1"), ("--first-index", "-2")])
def test_a_negative_seed_or_index_is_one_line(option, value, tmp_path, capsys):
    assert sample(Path("x.ckpt"), tmp_path / "out", "--from-test-set", option, value) == 1
    assert one_error(capsys) == f"{option} must be between 0 and 2**63 - 1, got {value}"
    assert not (tmp_path / "out").exists()


def test_design_and_evaluate_refuse_a_negative_seed(tmp_path, capsys, toy):
    argv = ["design", "--checkpoint", "x", "--target", "copies=1", "--seed", "-1"]
    assert main([*argv, "--out", str(tmp_path / "d")]) == 1
    assert one_error(capsys) == "--seed must be between 0 and 2**63 - 1, got -1"
    argv = ["evaluate", "--dataset", "toy", "--samples", "s.npz", "--ground-truth", "--seed", "-1"]
    assert main([*argv, "--out", str(tmp_path / "e")]) == 1
    assert one_error(capsys) == "--seed must be between 0 and 2**63 - 1, got -1"
    assert not (tmp_path / "d").exists() and not (tmp_path / "e").exists()


LABELS = {
    "ragged.csv": (b"copies,other\n1.0,2.0\n3.0\n", "line 3 has 1 columns but the header has 2"),
    "long.tsv": (b"copies\n1.0\t2.0\n", "line 2 has 2 columns but the header has 1"),
    "nan.tsv": (b"copies\n1.0\nnan\n", "labels hold NaN or infinite values (first in row 2)"),
    "inf.csv": (b"copies\ninf\n", "labels hold NaN or infinite values (first in row 1)"),
    "empty.tsv": (b"", "is empty; give a header row naming ['copies']"),
    "empty.npy": (b"", "is empty; give labels"),
    "header.csv": (b"copies\n", "no label rows; give at least one row of labels"),
    "wide.npy": (None, "labels of shape (3, 2), but the model's dataset takes (N, S) = (N, 1)"),
    "binary.tsv": (bytes(range(128, 256)) * 4, "is not a text table (binary data?)"),
    "binary.npy": (b"\x93NUMPY garbage" + bytes(range(256)), "cannot read labels file"),
}


@pytest.mark.parametrize("name", sorted(LABELS))
def test_a_bad_labels_file_is_one_line_naming_it(name, tmp_path, checkpoint, capsys):
    content, expected = LABELS[name]
    path = tmp_path / name
    if content is None:
        np.save(path, np.zeros((3, 2), dtype=np.float32))
    else:
        path.write_bytes(content)
    assert sample(checkpoint, tmp_path / "out", "--labels", str(path)) == 1
    message = one_error(capsys)
    assert str(path) in message and expected in message, message
    assert not (tmp_path / "out").exists()


def test_a_binary_file_given_as_samples_is_one_line(tmp_path, toy, toy_data, capsys):
    path = tmp_path / "samples.fasta"
    path.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(D3InputError, match="neither an NPZ file nor FASTA text"):
        read_samples(path, length=32)
    path.write_text(">a\n" + "ACGTN" * 6 + "AC\n")
    with pytest.raises(
        D3InputError, match=r"sequence 1 holds letters other than A, C, G, T: \['N'\]"
    ):
        read_samples(path, length=32)
    path.write_bytes(b"\xff\xfe>seq\n")
    argv = ["evaluate", "--dataset", "toy", "--data", str(toy_data), "--samples", str(path),
            "--ground-truth", "--out", str(tmp_path / "e")]  # fmt: skip
    assert main(argv) == 1
    assert "neither an NPZ file nor FASTA text (it holds binary data)" in one_error(capsys)
    assert not (tmp_path / "e").exists()


# -- sharded sampling through the command line --------------------------------------------------


def test_shards_sampled_with_first_index_concatenate_into_one_run(tmp_path, checkpoint):
    labels = tmp_path / "labels.tsv"
    labels.write_text("copies\n" + "".join(f"{v}\n" for v in np.linspace(0, 2, 8)))
    assert sample(checkpoint, tmp_path / "all", "--labels", str(labels), "--seed", "5") == 0
    for first in (0, 4):
        argv = ["--labels", str(labels), "--seed", "5", "--first-index", str(first),
                "--num-samples", "4", "--batch-size", "3"]  # fmt: skip
        assert sample(checkpoint, tmp_path / f"shard{first}", *argv) == 0

    def tokens(name):
        with np.load(tmp_path / name / "samples.npz") as data:
            return data["tokens"]

    assert np.array_equal(np.concatenate([tokens("shard0"), tokens("shard4")]), tokens("all"))
    whole = (tmp_path / "all" / "samples.fasta").read_text()
    parts = "".join((tmp_path / f"shard{i}" / "samples.fasta").read_text() for i in (0, 4))
    assert parts == whole  # run-wide headers: sample_4 ... sample_7 in the second shard
    table = (tmp_path / "shard4" / "labels.tsv").read_text().splitlines()
    assert [row.split("\t")[0] for row in table[1:]] == ["4", "5", "6", "7"]


# -- replace_set on its own ----------------------------------------------------------------------


def test_a_move_that_fails_half_way_through_the_swap_puts_the_old_set_back(tmp_path, monkeypatch):
    from d3_core.generation import filesets

    for name, text in (("a.txt", "old a"), ("b.txt", "old b")):
        (tmp_path / name).write_text(text)
    real_replace = os.replace
    moved_in = []

    def replace(src, dst):
        if Path(src).parent.name == filesets.STAGING:
            if moved_in:  # the second new file cannot be moved in
                raise OSError(errno.EIO, os.strerror(errno.EIO), str(src))
            moved_in.append(dst)
        return real_replace(src, dst)

    monkeypatch.setattr(filesets.os, "replace", replace)
    with (
        pytest.raises(OSError, match="Input/output error"),
        filesets.replace_set(tmp_path, names=("a.txt", "b.txt")) as stage,
    ):
        (stage / "a.txt").write_text("new a")
        (stage / "b.txt").write_text("new b")
    assert moved_in and snapshot(tmp_path) == {"a.txt": b"old a", "b.txt": b"old b"}


def test_a_set_replaces_only_its_own_names_and_removes_what_a_killed_run_left(tmp_path):
    from d3_core.generation.filesets import STAGING, NamePatterns, replace_set

    (tmp_path / "kmer_k6.png").write_text("old plot")
    (tmp_path / "notes.txt").write_text("not part of the set")
    (tmp_path / STAGING).mkdir()
    (tmp_path / STAGING / "half.json").write_text("{")  # a process killed while staging
    with replace_set(tmp_path, names=NamePatterns("report.json", "*.png")) as stage:
        assert entries(stage) == []
        (stage / "report.json").write_text("{}")
        (stage / "kmer_k3.png").write_text("new plot")
    assert entries(tmp_path) == ["kmer_k3.png", "notes.txt", "report.json"]


def test_evaluate_refuses_sample_sets_that_cannot_fit_in_memory(
    tmp_path, checkpoint, toy_data, capsys
):
    argv = ["evaluate", "--dataset", "toy", "--model-path", str(checkpoint), "--data",
            str(toy_data), "--ground-truth", "--paired-repeat", "100000000000", "--out",
            str(tmp_path / "e"), "--no-progress"]  # fmt: skip
    assert main(argv) == 1
    message = one_error(capsys)
    assert message.startswith("test labels x --replicates (or --paired-repeat) 25600000000000:")
    assert "GiB of memory available" in message
    assert not (tmp_path / "e").exists()
