"""Conformance tests that every dataset package's test suite subclasses."""

from __future__ import annotations

import re
from importlib import metadata
from typing import ClassVar

from d3_core.errors import PluginError
from d3_core.registry import (
    ENTRY_POINT_GROUP,
    DatasetPlugin,
    list_datasets,
    load_dataset_plugin,
    require_ready,
)


class DatasetPluginConformance:
    """Checks that an installed dataset plugin is discoverable and declares what it promises.

    Subclass it in a dataset package's ``tests/test_plugin.py`` under a name starting with
    ``Test`` and set the class attributes below; pytest then runs every ``test_*`` method against
    the installed package. The base class itself is not collected.
    """

    name: ClassVar[str]
    distribution: ClassVar[str]
    sequence_length: ClassVar[int]
    label_names: ClassVar[tuple[str, ...]]
    label_mode: ClassVar[str]

    def load_plugin(self) -> DatasetPlugin:
        """The plugin under test, loaded the way d3-core's commands load it."""
        return load_dataset_plugin(self.name)

    def test_entry_point_is_registered_by_the_package(self) -> None:
        installed = list_datasets()
        assert self.name in installed, f"{self.name!r} not among {sorted(installed)}"
        entry_point = installed[self.name]
        assert entry_point.group == ENTRY_POINT_GROUP
        assert entry_point.dist is not None
        assert entry_point.dist.name == self.distribution

    def test_plugin_declares_the_promised_name_length_and_labels(self) -> None:
        plugin = self.load_plugin()
        assert plugin.name == self.name
        assert plugin.distribution == self.distribution
        assert plugin.sequence_length == self.sequence_length
        assert plugin.label_names == self.label_names
        assert plugin.label_mode == self.label_mode
        assert plugin.label_width == len(self.label_names)
        assert plugin.description

    def test_plugin_version_is_the_installed_package_version(self) -> None:
        assert self.load_plugin().version == metadata.version(self.distribution)

    def test_plugin_is_found_whatever_the_case_of_its_name(self) -> None:
        assert load_dataset_plugin(self.name.upper()) is self.load_plugin()

    def test_readiness_is_declared_honestly(self) -> None:
        import pytest  # only test suites import this module; pytest is no runtime dependency

        plugin = self.load_plugin()
        if plugin.ready:
            require_ready(plugin)  # a ready plugin passes
            return
        message = (
            f"{self.distribution} {plugin.version} is installed but is an empty placeholder: its "
            "data loader, models and oracle arrive in a later release"
        )
        with pytest.raises(PluginError, match=f"^{re.escape(message)}$"):
            require_ready(plugin)
