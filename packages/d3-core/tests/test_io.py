"""Atomic file writing: the target is replaced whole on success and left untouched on failure."""

import os
import stat

import pytest

from d3_core.io import atomic_path, atomic_write


def _listing(folder):
    return sorted(p.name for p in folder.iterdir())


def test_atomic_write_creates_the_file_with_its_text(tmp_path):
    with atomic_write(tmp_path / "out.txt") as out:
        out.write("ACGT\n")
    assert (tmp_path / "out.txt").read_text() == "ACGT\n"
    assert _listing(tmp_path) == ["out.txt"]


def test_atomic_write_replaces_an_existing_file(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old content that is longer than the new one\n")
    with atomic_write(target) as out:
        out.write("new\n")
    assert target.read_text() == "new\n"
    assert _listing(tmp_path) == ["out.txt"]


def test_atomic_write_writes_bytes_in_binary_mode(tmp_path):
    with atomic_write(tmp_path / "out.bin", mode="wb") as out:
        out.write(b"\x00\xff")
    assert (tmp_path / "out.bin").read_bytes() == b"\x00\xff"


def test_atomic_write_writes_text_as_utf8(tmp_path):
    with atomic_write(tmp_path / "out.txt") as out:
        out.write("σ → ∞\n")
    assert (tmp_path / "out.txt").read_bytes() == "σ → ∞\n".encode()


def test_atomic_write_creates_missing_parent_folders(tmp_path):
    target = tmp_path / "a" / "b" / "out.txt"
    with atomic_write(target) as out:
        out.write("x")
    assert target.read_text() == "x"


def test_the_target_does_not_exist_while_the_block_runs(tmp_path):
    target = tmp_path / "out.txt"
    with atomic_write(target) as out:
        out.write("half")
        out.flush()
        assert not target.exists()
    assert target.read_text() == "half"


def test_an_exception_in_atomic_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old\n")
    with pytest.raises(RuntimeError, match=r"^crash$"), atomic_write(target) as out:
        out.write("half of the new")
        raise RuntimeError("crash")
    assert target.read_text() == "old\n"
    assert _listing(tmp_path) == ["out.txt"]


def test_an_exception_in_atomic_write_creates_no_file_where_there_was_none(tmp_path):
    with pytest.raises(KeyboardInterrupt), atomic_write(tmp_path / "out.txt") as out:
        out.write("half")
        raise KeyboardInterrupt
    assert _listing(tmp_path) == []


def test_atomic_path_yields_a_temporary_beside_the_target_that_replaces_it(tmp_path):
    target = tmp_path / "out.npz"
    target.write_bytes(b"old")
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp != target
        assert tmp.name.startswith(".out.npz.") and tmp.name.endswith(".tmp")
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"
    assert _listing(tmp_path) == ["out.npz"]


def test_an_exception_in_atomic_path_keeps_the_old_file_and_deletes_the_temporary(tmp_path):
    target = tmp_path / "out.npz"
    target.write_bytes(b"old")
    with pytest.raises(OSError, match=r"^disk full$"), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise OSError("disk full")
    assert target.read_bytes() == b"old"
    assert _listing(tmp_path) == ["out.npz"]


def test_atomic_write_gives_the_file_the_permissions_a_plain_open_would(tmp_path):
    previous = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "atomic.txt") as out:
            out.write("x")
        with open(tmp_path / "plain.txt", "w") as out:
            out.write("x")
    finally:
        os.umask(previous)
    mode = {name: stat.S_IMODE((tmp_path / name).stat().st_mode) for name in _listing(tmp_path)}
    assert mode["plain.txt"] == 0o644
    assert mode["atomic.txt"] == mode["plain.txt"]
