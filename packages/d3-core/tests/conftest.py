"""Shared fixtures of d3-core's tests."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace

import pytest

from d3_core.registry import ENTRY_POINT_GROUP, DatasetPlugin


def _make_plugin(name: str = "deepstarr", **changes) -> DatasetPlugin:
    """A valid `DatasetPlugin` shaped like DeepSTARR's, with ``changes`` applied."""
    fields = {
        "name": name,
        "distribution": f"d3-{name}",
        "sequence_length": 249,
        "label_names": ("Dev", "Hk"),
        "label_mode": "global",
        "version": "0.1.0",
        "ready": False,
        "description": "A test dataset.",
    }
    return DatasetPlugin(**{**fields, **changes})


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
