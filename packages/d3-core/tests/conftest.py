"""Shared fixtures of d3-core's tests."""

from __future__ import annotations

import importlib.metadata
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest

from d3_core.registry import ENTRY_POINT_GROUP, DatasetPlugin

# The toy dataset plugin (tests/toyplugin) is imported by name, as an installed one would be.
sys.path.insert(0, str(Path(__file__).parent))


def _make_plugin(name: str = "deepstarr", **changes) -> DatasetPlugin:
    """A valid `DatasetPlugin` shaped like DeepSTARR's, with ``changes`` applied."""
    fields = {
        "name": name,
        "distribution": f"d3-{name}",
        "sequence_length": 249,
        "label_names": ("Dev", "Hk"),
        "label_mode": "global",
        "version": "0.1.0",
        "description": "A test dataset.",
    }
    return DatasetPlugin(**{**fields, **changes})


@pytest.fixture
def one_thread():
    """Runs torch on one thread: on a busy shared CPU, tiny models run ~100x slower on two."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def ready_components() -> dict:
    """The toy plugin's components: what makes a `DatasetPlugin` ready to train."""
    import toyplugin

    plugin = toyplugin.PLUGIN
    return {
        "lightning_module": plugin.lightning_module,
        "score_models": plugin.score_models,
        "configs": plugin.configs,
        "data_loader": plugin.data_loader,
    }


@dataclass
class FakeEntryPoint:
    """Stands in for an `importlib.metadata.EntryPoint`; records whether it was loaded.

    Attributes:
        name: The entry-point name.
        target: What `load` returns, or the exception it raises.
        distribution: Name of the distribution that declares it.
    """

    name: str
    target: object
    distribution: str = "d3-fake"
    group: str = ENTRY_POINT_GROUP
    loaded: bool = False

    @property
    def value(self) -> str:
        return f"{self.distribution.replace('-', '_')}.plugin:PLUGIN"

    @property
    def dist(self) -> SimpleNamespace:
        return SimpleNamespace(name=self.distribution, version="0.1.0")

    def load(self) -> object:
        self.loaded = True
        if isinstance(self.target, BaseException):
            raise self.target
        return self.target


@pytest.fixture
def make_plugin() -> Callable[..., DatasetPlugin]:
    """Builds a valid `DatasetPlugin` shaped like DeepSTARR's: ``make_plugin(name, **changes)``."""
    return _make_plugin


@pytest.fixture
def fake_entry_point() -> type[FakeEntryPoint]:
    """The `FakeEntryPoint` class, for tests that build entry points by hand."""
    return FakeEntryPoint


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch) -> Callable[..., list[FakeEntryPoint]]:
    """Replaces the installed entry points with fakes.

    Call it with `FakeEntryPoint`s, or with `DatasetPlugin`s to have each registered under its own
    name by its own distribution; returns the fake entry points.
    """

    def install(*items: FakeEntryPoint | DatasetPlugin) -> list[FakeEntryPoint]:
        entry_points = [
            FakeEntryPoint(item.name, item, item.distribution)
            if isinstance(item, DatasetPlugin)
            else item
            for item in items
        ]

        def entry_points_in(*, group: str) -> list[FakeEntryPoint]:
            return [ep for ep in entry_points if ep.group == group]

        monkeypatch.setattr(importlib.metadata, "entry_points", entry_points_in)
        return entry_points

    return install


@pytest.fixture
def toy(installed) -> DatasetPlugin:
    """Installs the toy dataset plugin (32 bp, one global label) as the only dataset."""
    import toyplugin

    installed(toyplugin.PLUGIN)
    return toyplugin.PLUGIN


@pytest.fixture
def toy_data(toy, tmp_path_factory) -> Path:
    """A small toy data file (2048/256/256 sequences), written once per test session."""
    import toyplugin

    path = tmp_path_factory.getbasetemp() / "toy-small.npz"
    if not path.exists():
        toyplugin.write_synthetic(path, seed=0, size="small")
    return path


@pytest.fixture
def checkpoint(toy_data, tmp_path_factory, monkeypatch) -> Path:
    """A toy transformer trained for 5 steps through ``d3 train``, once per test session."""
    from d3_core.cli.main import main
    from d3_core.training.run import RUN_DIR_ENV

    path = tmp_path_factory.getbasetemp() / "toy-run" / "checkpoints" / "last.ckpt"
    if not path.exists():
        monkeypatch.delenv(RUN_DIR_ENV, raising=False)
        argv = ["train", "--dataset", "toy", "--arch", "Tran", "--data", str(toy_data),
                "--out", str(path.parent.parent), "--max-steps", "5", "--no-progress"]  # fmt: skip
        assert main(argv) == 0
    return path
