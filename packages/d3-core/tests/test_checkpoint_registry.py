"""The checkpoint formats behind one interface: detection, the registry walk, the safe loader.

Each fixture file (written by `d3_core.testing.checkpoint_writers` from docs/checkpoint-formats.md's
key tables, or by `write_checkpoint`) must be detected by exactly one format, the one the loader
reports; an unknown file is refused naming the file and what every format looks for; a format added
to the registry is used without touching the loader.
"""

import argparse
import importlib
import pkgutil
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import d3_core.checkpoints
from d3_core.checkpoints import registry
from d3_core.checkpoints.interface import CheckpointFormat
from d3_core.checkpoints.load import load_checkpoint, load_payload, read_contents
from d3_core.checkpoints.locate import locate_checkpoint
from d3_core.checkpoints.native import write_checkpoint
from d3_core.checkpoints.safe_load import (
    MMAP_NOTE,
    UnreadableFileError,
    UntrustedFileError,
    safe_load,
)
from d3_core.errors import CheckpointError
from d3_core.testing.checkpoint_writers import write_converted, write_packaged, write_research

TOY = {"dataset": "toy", "signal": 1, "length": 32, "label_classes": 5}

pytestmark = pytest.mark.usefixtures("one_thread")


def exactly(message: str) -> str:
    return f"^{re.escape(message)}$"


def _fixture_files(tmp_path: Path) -> dict[str, Path]:
    """One file of every format, by the format's name."""
    written = write_research(tmp_path / "run", arch="transformer", **TOY)
    packaged = write_packaged(
        tmp_path / "packaged.ckpt", dataset="toy", arch="conv", signal=1, length=32
    )
    return {
        "research": written.path,
        "converted": write_converted(
            written, tmp_path / "converted.ckpt", dataset="toy", arch="transformer"
        ),
        "packaged": packaged.path,
        "d3": write_checkpoint(read_contents(written.path), tmp_path / "native.ckpt"),
    }


# -- the registry -----------------------------------------------------------------------------


def test_the_registry_lists_the_four_formats_each_with_the_interface():
    assert registry.FORMAT_NAMES == ("d3", "research", "packaged", "converted")
    assert d3_core.checkpoints.FORMATS is registry.FORMATS
    for fmt in registry.FORMATS:
        assert isinstance(fmt, CheckpointFormat)
        assert callable(fmt.detect) and callable(fmt.read)
        assert fmt.description and "\n" not in fmt.description
        assert registry.format_named(fmt.name) is fmt
    with pytest.raises(CheckpointError, match=r"no checkpoint format is named 'x'; the formats"):
        registry.format_named("x")


def test_each_fixture_file_is_detected_by_exactly_one_format_the_one_that_reads_it(toy, tmp_path):
    for name, path in _fixture_files(tmp_path).items():
        payload = load_payload(path, trusted=True)
        assert [fmt.name for fmt in registry.detected_formats(payload)] == [name], path
        assert registry.format_of(payload, path).name == name
        assert load_checkpoint(path, trusted=True).format == name


@pytest.mark.parametrize(
    "payload", [{"optimizer": {}}, {"state_dict": {"other.weight": torch.zeros(1)}}, [1, 2]]
)
def test_no_format_detects_what_is_not_a_checkpoint(payload):
    assert registry.detected_formats(payload) == []


def test_an_unknown_file_is_refused_naming_it_and_what_each_format_looks_for(tmp_path):
    path = tmp_path / "optimizer.pt"
    torch.save({"optimizer": {}, "step": 3}, path)
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(path)
    message = str(error.value)
    assert message.startswith(
        f"{path} is not a checkpoint d3 reads (top-level entries: ['optimizer', 'step']); expected "
    )
    for fmt in registry.FORMATS:
        assert fmt.expects in message, fmt.name


def test_a_format_added_to_the_registry_is_read_by_the_loader(toy, tmp_path, monkeypatch):
    """Adding a format is one module (here: a `CheckpointFormat`) and one registry entry."""
    written = write_research(tmp_path / "run", arch="conv", label_emb_width=1, **TOY)
    wrapped = tmp_path / "wrapped.pt"
    torch.save({"wrapped": torch.load(written.path, weights_only=True)}, wrapped)
    research = registry.format_named("research")

    def read(path, payload, *, dataset=None, arch=None):
        contents = research.read(path, payload["wrapped"], dataset=dataset, arch=arch)
        return replace(contents, format="wrapped")

    wrapper = CheckpointFormat(
        name="wrapped",
        description="a research checkpoint under one 'wrapped' key",
        expects="a wrapped checkpoint ('wrapped')",
        detect=lambda payload: isinstance(payload, dict) and "wrapped" in payload,
        read=read,
    )
    with pytest.raises(CheckpointError, match="not a checkpoint d3 reads"):
        load_checkpoint(wrapped)
    monkeypatch.setattr(registry, "FORMATS", (*registry.FORMATS, wrapper))
    loaded = load_checkpoint(wrapped)
    assert (loaded.format, loaded.architecture) == ("wrapped", "conv")
    assert torch.equal(
        dict(loaded.model.named_parameters())["final.2.bias"], written.ema["final.2.bias"]
    )


def test_a_directory_no_format_locates_is_refused_naming_what_each_looks_for(tmp_path):
    message = (
        f"{tmp_path} is not a run directory d3 reads: it has neither "
        f"{tmp_path / 'checkpoints' / 'last.ckpt'} (a d3 run) nor hydra/config.yaml or "
        ".hydra/config.yaml (a research run)"
    )
    with pytest.raises(CheckpointError, match=exactly(message)):
        locate_checkpoint(tmp_path)


# -- the safe loader --------------------------------------------------------------------------


def test_the_safe_loader_refuses_python_objects_unless_trusted(tmp_path):
    path = tmp_path / "objects.pt"
    torch.save({"x": torch.ones(2), "args": argparse.Namespace(a=1)}, path)
    message = (
        f"refusing to load checkpoint {str(path)!r}: it holds argparse.Namespace, which is not "
        "plain data, so loading it would run code named by the file (torch.load("
        "weights_only=True) allows only tensors and plain data). Trust it, then"
    )
    with pytest.raises(UntrustedFileError, match=exactly(message)) as error:
        safe_load(path, trust_hint="Trust it, then")
    assert error.value.path == path and isinstance(error.value, CheckpointError)
    assert error.value.refused == "argparse.Namespace"
    assert safe_load(path, trusted=True)["args"].a == 1


def test_the_safe_loader_names_an_unreadable_file_and_what_it_is(tmp_path):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"not a checkpoint")
    message = (
        f"cannot read oracle checkpoint {str(path)!r}: not a PyTorch file: neither a zip "
        "archive nor a pickle (pickle exhausted before seeing STOP)"
    )
    with pytest.raises(UnreadableFileError, match=exactly(message)):
        safe_load(path, what="oracle checkpoint")
    with pytest.raises(UnreadableFileError, match=exactly(message)):
        safe_load(path, trusted=True, what="oracle checkpoint")  # trust cannot read it either


def test_the_safe_loader_reads_a_file_that_cannot_be_memory_mapped_whole(tmp_path):
    path = tmp_path / "legacy.pt"
    torch.save({"x": torch.arange(3)}, path, _use_new_zipfile_serialization=False)
    notes: list[str] = []
    assert torch.equal(safe_load(path, mmap=True, notes=notes)["x"], torch.arange(3))
    assert notes == [MMAP_NOTE]


# -- the package --------------------------------------------------------------------------------


def test_every_checkpoints_module_says_what_it_owns_and_is_under_400_lines():
    package = Path(d3_core.checkpoints.__file__).parent
    for info in pkgutil.iter_modules([str(package)]):
        module = importlib.import_module(f"d3_core.checkpoints.{info.name}")
        assert (module.__doc__ or "").strip(), info.name
        lines = (package / f"{info.name}.py").read_text().count("\n")
        assert lines < 400, f"{info.name}.py has {lines} lines"


def test_the_package_exports_its_main_names_on_first_use_without_importing_torch_early():
    code = (
        "import sys, d3_core, d3_core.checkpoints as c; assert 'torch' not in sys.modules; "
        "from d3_core.checkpoints import load_checkpoint, load_model_local, write_checkpoint, "
        "LoadedModel, LoadedCheckpoint, CheckpointContents, FORMATS; "
        "assert LoadedCheckpoint is LoadedModel and len(FORMATS) == 4"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
