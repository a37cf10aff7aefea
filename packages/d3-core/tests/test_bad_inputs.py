"""Bad input, as a new user would give it, through the ``d3`` command line.

Every case must end in one ``d3: error:`` line on stderr that names the input and says what to do
instead, exit with status 1 (a d3 error) or 2 (a usage error), and write no file anywhere under
the test's directory. The inputs cover data files, configs, checkpoints, labels files and flags.
"""

from __future__ import annotations

import os
import shlex
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch

from d3_core.cli.main import main
from d3_core.training.run import RUN_DIR_ENV


@pytest.fixture(autouse=True)
def _fresh_run_dir_env(monkeypatch):
    monkeypatch.delenv(RUN_DIR_ENV, raising=False)


@pytest.fixture
def trained(checkpoint) -> Path:
    """The shared toy checkpoint (conftest.py)."""
    return checkpoint


@dataclass(frozen=True)
class Case:
    """One bad input.

    Attributes:
        argv: The command line; ``{x}`` placeholders are the paths `make` returns, ``{data}``
            the good toy data file, ``{ckpt}`` a good checkpoint, ``{out}`` a fresh directory.
        says: Fragments the error line must hold (the input's name, the fix), ``{x}`` as above.
        make: Writes the bad file(s) into a directory; returns their placeholders.
        code: 2 where argparse must refuse it as a usage error; 1 where d3 does (a d3 error)
            or either may.
    """

    argv: str
    says: tuple[str, ...]
    make: Callable[[Path, Path, Path], dict[str, Path]] = field(default=lambda d, data, ckpt: {})
    code: int = 1


def _npz(**arrays):
    """A maker writing an NPZ of toy splits from the good file with `arrays` replaced."""

    def make(directory: Path, data: Path, ckpt: Path) -> dict[str, Path]:
        with np.load(data) as good:
            content = {key: good[key] for key in good.files}
        for key, value in arrays.items():
            if value is None:
                content.pop(key)
            else:
                content[key] = value(content) if callable(value) else value
        path = directory / "bad.npz"
        np.savez(path, **content)
        return {"x": path}

    return make


def _bytes(name: str, content: bytes | Callable[[Path, Path], bytes]):
    def make(directory: Path, data: Path, ckpt: Path) -> dict[str, Path]:
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content(data, ckpt) if callable(content) else content)
        return {"x": path}

    return make


def _text(name: str, text: str):
    return _bytes(name, text.encode())


def _checkpoint(change: Callable[[dict], None]):
    """A maker writing the good checkpoint with `change` applied to its payload."""

    def make(directory: Path, data: Path, ckpt: Path) -> dict[str, Path]:
        payload = torch.load(ckpt, weights_only=True)
        change(payload)
        path = directory / "changed.ckpt"
        torch.save(payload, path)
        return {"x": path}

    return make


def _widen_first_weight(payload: dict) -> None:
    name = next(k for k, v in payload["state_dict"].items() if v.ndim == 2)
    tensor = payload["state_dict"][name]
    payload["state_dict"][name] = torch.zeros(tensor.shape[0] + 1, tensor.shape[1])


class _RunsCode:
    """A pickle that would run ``os.getcwd`` when loaded (harmless, but code all the same)."""

    def __reduce__(self):
        return (os.getcwd, ())


def _pickle_with_code(directory: Path, data: Path, ckpt: Path) -> dict[str, Path]:
    payload = torch.load(ckpt, weights_only=True)
    payload["extra"] = _RunsCode()
    path = directory / "code.ckpt"
    torch.save(payload, path)
    return {"x": path}


def _foreign_dir(directory: Path, data: Path, ckpt: Path) -> dict[str, Path]:
    path = directory / "mine"
    path.mkdir()
    (path / "notes.txt").write_text("not d3's")
    return {"x": path}


def _a_file(directory: Path, data: Path, ckpt: Path) -> dict[str, Path]:
    path = directory / "a-file"
    path.write_text("not a directory")
    return {"x": path}


def _a_dir(directory: Path, data: Path, ckpt: Path) -> dict[str, Path]:
    path = directory / "a dir"
    path.mkdir()
    return {"x": path}


def _truncated(source: str):
    def make(directory: Path, data: Path, ckpt: Path) -> dict[str, Path]:
        content = Path(data if source == "data" else ckpt).read_bytes()
        path = directory / f"truncated{Path(data if source == 'data' else ckpt).suffix}"
        path.write_bytes(content[: len(content) // 2])
        return {"x": path}

    return make


def _flipped_checkpoint(directory: Path, data: Path, ckpt: Path) -> dict[str, Path]:
    """The good checkpoint with one byte changed inside its largest tensor's storage."""
    content = bytearray(ckpt.read_bytes())
    with zipfile.ZipFile(ckpt) as archive:
        info = max(
            (i for i in archive.infolist() if "/data/" in i.filename), key=lambda i: i.file_size
        )
    # The local header is 30 bytes plus the name and the extra field; the data follows.
    name_length = int.from_bytes(
        content[info.header_offset + 26 : info.header_offset + 28], "little"
    )
    extra_length = int.from_bytes(
        content[info.header_offset + 28 : info.header_offset + 30], "little"
    )
    start = info.header_offset + 30 + name_length + extra_length
    content[start + info.file_size // 2] ^= 0x40
    path = directory / "flipped.ckpt"
    path.write_bytes(bytes(content))
    return {"x": path}


TRAIN = "train --dataset toy --arch Tran --no-progress --out {out}"
SAMPLE = "sample --checkpoint {ckpt} --out {out} --no-progress --num-samples 2 --steps 2"
TOKENS = "train_tokens"

CASES: dict[str, Case] = {
    # -- data files ------------------------------------------------------------------------------
    "data missing": Case(f"{TRAIN} --data {{d}}/nope.npz", ("{d}/nope.npz", "does not exist")),
    "data path with spaces missing": Case(
        f"{TRAIN} --data '{{d}}/my data/x 1.npz'", ("{d}/my data/x 1.npz", "does not exist")
    ),
    "data empty file": Case(f"{TRAIN} --data {{x}}", ("{x}",), _bytes("empty.npz", b"")),
    "data random bytes": Case(
        f"{TRAIN} --data {{x}}",
        ("{x}", "not a toy data file"),
        _bytes("noise.npz", os.urandom(512)),
    ),
    "data truncated npz": Case(f"{TRAIN} --data {{x}}", ("{x}",), _truncated("data")),
    "data is a directory": Case(f"{TRAIN} --data {{x}}", ("{x}",), _a_dir),
    "data wrong length": Case(
        f"{TRAIN} --data {{x}}", ("{x}", "32"), _npz(train_tokens=lambda c: c[TOKENS][:, :31])
    ),
    "data token out of range (N)": Case(
        f"{TRAIN} --data {{x}}",
        ("{x}", "token"),
        _npz(train_tokens=lambda c: np.where(np.arange(32) == 3, 4, c[TOKENS]).astype(np.uint8)),
    ),
    "data NaN label": Case(
        f"{TRAIN} --data {{x}}",
        ("{x}", "finite"),
        _npz(
            train_labels=lambda c: np.where(
                np.arange(len(c["train_labels"]))[:, None] == 7, np.nan, c["train_labels"]
            ).astype(np.float32)
        ),
    ),
    "data inf label": Case(
        f"{TRAIN} --data {{x}}",
        ("{x}", "finite"),
        _npz(train_labels=lambda c: np.full_like(c["train_labels"], np.inf)),
    ),
    "data wrong label width": Case(
        f"{TRAIN} --data {{x}}",
        ("{x}", "label"),
        _npz(train_labels=lambda c: np.repeat(c["train_labels"], 2, axis=1)),
    ),
    "data labels fewer than sequences": Case(
        f"{TRAIN} --data {{x}}", ("{x}",), _npz(train_labels=lambda c: c["train_labels"][:-5])
    ),
    "data zero-row train split": Case(
        f"{TRAIN} --data {{x}}",
        ("{x}",),
        _npz(train_tokens=lambda c: c[TOKENS][:0], train_labels=lambda c: c["train_labels"][:0]),
    ),
    "data missing split": Case(
        f"{TRAIN} --data {{x}}", ("{x}", "not a toy data file"), _npz(valid_tokens=None)
    ),
    "data text file": Case(f"{TRAIN} --data {{x}}", ("{x}",), _text("data.npz", "ACGT\nACGT\n")),
    # -- configs ---------------------------------------------------------------------------------
    "config unknown key": Case(
        f"{TRAIN} --data {{data}} training.learning_rate=1e-3",
        ("training.learning_rate", "training.lr"),
    ),
    "config unknown section": Case(
        f"{TRAIN} --data {{data}} trainig.lr=1e-3", ("trainig", "did you mean 'training'")
    ),
    "config wrong type": Case(f"{TRAIN} --data {{data}} training.batch_size=abc", ("batch_size",)),
    "config zero batch size": Case(
        f"{TRAIN} --data {{data}} training.batch_size=0", ("batch_size",)
    ),
    "config negative batch size": Case(
        f"{TRAIN} --data {{data}} training.batch_size=-4", ("batch_size",)
    ),
    "config zero lr": Case(f"{TRAIN} --data {{data}} training.lr=0", ("lr",)),
    "config negative lr": Case(f"{TRAIN} --data {{data}} training.lr=-1e-3", ("lr",)),
    "config zero hidden size": Case(
        f"{TRAIN} --data {{data}} model.hidden_size=0", ("hidden_size",)
    ),
    "config override without value": Case(
        f"{TRAIN} --data {{data}} training.lr", ("training.lr", "section.key=value")
    ),
    "config file missing": Case(
        f"{TRAIN} --data {{data}} --config {{d}}/nope.yaml", ("{d}/nope.yaml", "does not exist")
    ),
    "config file not yaml": Case(
        f"{TRAIN} --data {{data}} --config {{x}}",
        ("{x}", "not valid YAML"),
        _text("bad.yaml", "training: [1, 2\n"),
    ),
    "config file a list": Case(
        f"{TRAIN} --data {{data}} --config {{x}}", ("{x}", "mapping"), _text("list.yaml", "- 1\n")
    ),
    # -- train flags -----------------------------------------------------------------------------
    "train zero max steps": Case(
        f"{TRAIN} --data {{data}} --max-steps 0", ("--max-steps",), code=2
    ),
    "train unknown preset": Case(f"{TRAIN} --data {{data}} --preset gpu", ("--preset",), code=2),
    "train unknown architecture": Case(
        "train --dataset toy --arch lstm --data {data} --out {out}", ("lstm", "Tran")
    ),
    "train unknown dataset": Case(
        "train --dataset toyy --arch Tran --data {data} --out {out}", ("toyy",)
    ),
    "train out is a file": Case(
        f"{TRAIN.replace('{out}', '{x}')} --data {{data}}", ("{x}",), _a_file
    ),
    "train out holds other files": Case(
        f"{TRAIN.replace('{out}', '{x}')} --data {{data}}", ("{x}", "notes.txt"), _foreign_dir
    ),
    "train resume missing": Case(
        "train --resume {d}/none/last.ckpt --no-progress", ("{d}/none/last.ckpt",)
    ),
    "train resume other dataset": Case(
        "train --resume {ckpt} --dataset other --no-progress", ("--dataset other",)
    ),
    "train resume other architecture": Case(
        "train --resume {ckpt} --arch Conv --no-progress", ("--arch Conv",)
    ),
    "train negative seed": Case(f"{TRAIN} --data {{data}} training.seed=-1", ("seed",)),
    "train accelerator tpu": Case(f"{TRAIN} --data {{data}} trainer.accelerator=tpu", ("tpu",)),
    "train unknown strategy": Case(f"{TRAIN} --data {{data}} --strategy bogus", ("bogus",)),
    # -- checkpoints -----------------------------------------------------------------------------
    "checkpoint missing": Case(
        SAMPLE.replace("{ckpt}", "{d}/none.ckpt") + " --from-test-set", ("{d}/none.ckpt",)
    ),
    "checkpoint random bytes": Case(
        SAMPLE.replace("{ckpt}", "{x}") + " --from-test-set",
        ("{x}",),
        _bytes("noise.ckpt", os.urandom(4096)),
    ),
    "checkpoint truncated": Case(
        SAMPLE.replace("{ckpt}", "{x}") + " --from-test-set", ("{x}",), _truncated("ckpt")
    ),
    "checkpoint one flipped byte": Case(
        SAMPLE.replace("{ckpt}", "{x}") + " --from-test-set", ("{x}",), _flipped_checkpoint
    ),
    "checkpoint of another dataset": Case(
        SAMPLE + " --from-test-set --dataset deepstarr", ("deepstarr", "toy")
    ),
    "checkpoint of another architecture": Case(SAMPLE + " --from-test-set --arch Conv", ("Conv",)),
    "checkpoint mismatched shapes": Case(
        SAMPLE.replace("{ckpt}", "{x}") + " --from-test-set",
        ("{x}",),
        _checkpoint(_widen_first_weight),
    ),
    "checkpoint holding code": Case(
        SAMPLE.replace("{ckpt}", "{x}") + " --from-test-set",
        ("{x}", "posix.getcwd"),
        _pickle_with_code,
    ),
    "checkpoint a directory without a run": Case(
        SAMPLE.replace("{ckpt}", "{x}") + " --from-test-set", ("{x}",), _a_dir
    ),
    # -- labels files ----------------------------------------------------------------------------
    "labels missing": Case(SAMPLE + " --labels {d}/nope.tsv", ("{d}/nope.tsv",)),
    "labels empty": Case(SAMPLE + " --labels {x}", ("{x}",), _text("empty.tsv", "")),
    "labels ragged": Case(
        SAMPLE + " --labels {x}", ("{x}",), _text("ragged.csv", "copies\n1.0\n2.0,3.0\n")
    ),
    "labels NaN": Case(
        SAMPLE + " --labels {x}", ("{x}", "finite"), _text("nan.tsv", "copies\n1.0\nnan\n")
    ),
    "labels wrong width": Case(
        SAMPLE + " --labels {x}", ("{x}",), _text("wide.tsv", "a\tb\n1.0\t2.0\n")
    ),
    "labels not numbers": Case(
        SAMPLE + " --labels {x}", ("{x}",), _text("words.tsv", "copies\nmany\n")
    ),
    "labels binary": Case(SAMPLE + " --labels {x}", ("{x}",), _bytes("bin.npy", os.urandom(256))),
    # -- sample flags ----------------------------------------------------------------------------
    "sample zero samples": Case(
        SAMPLE.replace("--num-samples 2", "--num-samples 0") + " --from-test-set",
        ("--num-samples",),
        code=2,
    ),
    "sample 1e12 samples": Case(
        SAMPLE.replace("--num-samples 2", "--num-samples 1e12") + " --from-test-set",
        ("--num-samples",),
        code=2,
    ),
    "sample too many samples": Case(
        SAMPLE.replace("--num-samples 2", "--num-samples 1000000000000") + " --from-test-set",
        ("--num-samples",),
    ),
    "sample negative seed": Case(SAMPLE + " --from-test-set --seed -1", ("--seed",)),
    "sample cuda without cuda": Case(SAMPLE + " --from-test-set --device cuda", ("cuda",)),
    "sample unknown device": Case(SAMPLE + " --from-test-set --device gpu7", ("gpu7",)),
    "sample out is a file": Case(
        SAMPLE.replace("{out}", "{x}") + " --from-test-set", ("{x}",), _a_file
    ),
    "sample out holds other files": Case(
        SAMPLE.replace("{out}", "{x}") + " --from-test-set", ("{x}", "notes.txt"), _foreign_dir
    ),
    "sample labels and test set": Case(
        SAMPLE + " --from-test-set --labels {d}/x.tsv", ("--labels", "--from-test-set"), code=2
    ),
    "sample zero steps": Case(
        SAMPLE.replace("--steps 2", "--steps 0") + " --from-test-set", ("--steps",), code=2
    ),
    # -- other commands --------------------------------------------------------------------------
    "make-data into a directory": Case("make-data --dataset toy --out {x}", ("{x}",), _a_dir),
    "evaluate FASTA with N": Case(
        "evaluate --dataset toy --samples {x} --data {data} --ground-truth --out {out} --no-progress",
        ("{x}", "sequence 2", "'N'"),
        _text("n.fasta", ">a\n" + "ACGT" * 8 + "\n>b\n" + "ACGN" * 8 + "\n"),
    ),
    "evaluate FASTA of the wrong length": Case(
        "evaluate --dataset toy --samples {x} --data {data} --ground-truth --out {out} --no-progress",
        ("{x}", "32 bp"),
        _text("short.fasta", ">a\n" + "ACGT" * 7 + "\n"),
    ),
    "evaluate binary samples": Case(
        "evaluate --dataset toy --samples {x} --data {data} --ground-truth --out {out} --no-progress",
        ("{x}",),
        _bytes("samples.fasta", bytes(range(256)) * 4),
    ),
}


def _tree(root: Path) -> set[tuple[str, int]]:
    return {(str(p.relative_to(root)), p.stat().st_size) for p in root.rglob("*") if p.is_file()}


def test_the_table_is_wide():
    assert len(CASES) >= 40


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_ends_in_one_error_line_and_writes_nothing(
    name, tmp_path, toy_data, trained, capsys, monkeypatch
):
    case = CASES[name]
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # where a default output (runs/...) would go
    places = {"data": toy_data, "ckpt": trained, "out": tmp_path / "out", "d": inputs}
    places.update(case.make(inputs, toy_data, trained))
    fill = {key: str(value) for key, value in places.items()}
    argv = shlex.split(case.argv.format(**{k: shlex.quote(v) for k, v in fill.items()}))
    before, checkpoint_before = _tree(tmp_path), trained.read_bytes()
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code in (1, 2) and (case.code != 2 or code == 2), (code, err)
    assert lines and lines[-1].startswith("d3: error: "), err
    assert sum(line.startswith("d3: error:") for line in lines) == 1, err
    assert "Traceback" not in err, err
    for fragment in case.says:
        assert fragment.format(**fill) in lines[-1], (fragment, lines[-1])
    assert _tree(tmp_path) == before, "a refused command wrote a file"
    assert trained.read_bytes() == checkpoint_before
