"""Dataset-plugin registry: finds installed dataset packages through their entry points."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import metadata
from typing import Literal

from d3_core.errors import PluginError

ENTRY_POINT_GROUP = "d3.datasets"
"""The entry-point group under which a dataset package registers its `DatasetPlugin`."""

KNOWN_DISTRIBUTIONS = {
    "deepstarr": "d3-deepstarr",
    "mpra": "d3-mpra",
    "promoter": "d3-promoter",
}
"""Dataset names published by this project, with the pip package that provides each."""

LABEL_MODES = ("global", "per_position")

_NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]*")


@dataclass(frozen=True)
class DatasetPlugin:
    """What a dataset package declares about itself to d3-core.

    Attributes:
        name: Lower-case dataset name, equal to the entry-point name, e.g. ``"deepstarr"``.
        distribution: The pip package that provides the plugin, e.g. ``"d3-deepstarr"``.
        sequence_length: Length L of every sequence in base pairs, > 0.
        label_names: One name per label channel, e.g. ``("Dev", "Hk")``; its length is the
            label width S.
        label_mode: ``"global"`` for one (S,) label per sequence, ``"per_position"`` for an
            (L, S) label track.
        version: The providing package's version (read from its ``__version__``).
        ready: False while the package is an empty placeholder without data loader, models and
            oracle.
        description: One sentence on what the data is.
    """

    name: str
    distribution: str
    sequence_length: int
    label_names: tuple[str, ...]
    label_mode: Literal["global", "per_position"]
    version: str
    ready: bool
    description: str

    def __post_init__(self) -> None:
        """Rejects declarations that d3-core could not use."""
        if not isinstance(self.name, str) or not _NAME_PATTERN.fullmatch(self.name):
            raise PluginError(
                f"DatasetPlugin.name must be lower-case letters, digits and underscores starting "
                f"with a letter, got {self.name!r}"
            )
        if (
            isinstance(self.sequence_length, bool)
            or not isinstance(self.sequence_length, int)
            or self.sequence_length <= 0
        ):
            raise PluginError(
                f"DatasetPlugin {self.name!r}: sequence_length must be a positive int, "
                f"got {self.sequence_length!r}"
            )
        if (
            not isinstance(self.label_names, tuple)
            or not self.label_names
            or not all(isinstance(label, str) and label for label in self.label_names)
        ):
            raise PluginError(
                f"DatasetPlugin {self.name!r}: label_names must be a non-empty tuple of "
                f"non-empty strings, got {self.label_names!r}"
            )
        if self.label_mode not in LABEL_MODES:
            raise PluginError(
                f"DatasetPlugin {self.name!r}: label_mode must be one of {LABEL_MODES}, "
                f"got {self.label_mode!r}"
            )

    @property
    def label_width(self) -> int:
        """Number of label channels S."""
        return len(self.label_names)


def _distribution_name(entry_point: metadata.EntryPoint) -> str:
    """The name of the distribution that declares an entry point."""
    dist = getattr(entry_point, "dist", None)
    return dist.name if dist is not None else "an unknown distribution"


def _entry_points_by_name() -> dict[str, list[metadata.EntryPoint]]:
    """Groups the ``d3.datasets`` entry points by lower-cased name, one per distribution."""
    grouped: dict[str, list[metadata.EntryPoint]] = {}
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        same_name = grouped.setdefault(entry_point.name.lower(), [])
        # One distribution seen twice on sys.path is not a conflict; two distributions are.
        if all(_distribution_name(ep) != _distribution_name(entry_point) for ep in same_name):
            same_name.append(entry_point)
    return grouped


def _duplicate_error(name: str, entry_points: list[metadata.EntryPoint]) -> PluginError:
    """The error for a dataset name that more than one distribution registers."""
    owners = " and ".join(sorted(_distribution_name(ep) for ep in entry_points))
    return PluginError(
        f"dataset name {name!r} is registered by more than one installed package: {owners}; "
        f"uninstall all but one of them"
    )


def list_datasets() -> dict[str, metadata.EntryPoint]:
    """Finds installed dataset plugins without importing any of them.

    Returns:
        The ``d3.datasets`` entry points keyed by lower-cased dataset name, sorted by name.

    Raises:
        PluginError: Two installed distributions register the same dataset name.
    """
    found = {}
    for name, entry_points in sorted(_entry_points_by_name().items()):
        if len(entry_points) > 1:
            raise _duplicate_error(name, entry_points)
        found[name] = entry_points[0]
    return found


def _not_installed_error(name: str, installed: list[str]) -> PluginError:
    """The error for a dataset name that no installed package registers."""
    listing = ", ".join(installed) if installed else "none"
    if name in KNOWN_DISTRIBUTIONS:
        fix = f"install it with `pip install {KNOWN_DISTRIBUTIONS[name]}`"
    else:
        fix = f"the datasets published by d3 are {', '.join(KNOWN_DISTRIBUTIONS)}"
    return PluginError(
        f"no dataset plugin named {name!r} is installed; {fix} (installed: {listing})"
    )


def load_dataset_plugin(name: str) -> DatasetPlugin:
    """Imports one installed dataset plugin, and only that one.

    Args:
        name: Dataset name, case-insensitive, e.g. ``"deepstarr"`` or ``"DeepSTARR"``.

    Returns:
        The plugin that the package registered under that name.

    Raises:
        PluginError: No installed package registers the name (the message names the pip package
            to install), two packages register it, its module fails to import, or the entry
            point does not lead to a `DatasetPlugin` of the same name.
    """
    key = name.strip().lower()
    grouped = _entry_points_by_name()
    if key not in grouped:
        raise _not_installed_error(key, sorted(grouped))
    if len(grouped[key]) > 1:
        raise _duplicate_error(key, grouped[key])
    entry_point = grouped[key][0]
    owner = _distribution_name(entry_point)
    source = f"entry point {entry_point.name!r} ({entry_point.value}) of {owner}"
    try:
        plugin = entry_point.load()
    except Exception as err:
        raise PluginError(
            f"{source} failed to import: {type(err).__name__}: {err}; reinstall that package"
        ) from err
    if not isinstance(plugin, DatasetPlugin):
        raise PluginError(
            f"{source} leads to a {type(plugin).__name__}, not a d3_core.registry.DatasetPlugin"
        )
    if plugin.name != key:
        raise PluginError(
            f"{source} leads to a plugin named {plugin.name!r}; the entry-point name and "
            f"DatasetPlugin.name must be the same"
        )
    return plugin


def require_ready(plugin: DatasetPlugin) -> None:
    """Stops work that needs a dataset package's content when the package is a placeholder.

    Args:
        plugin: A loaded dataset plugin.

    Raises:
        PluginError: ``plugin.ready`` is False.
    """
    if not plugin.ready:
        raise PluginError(
            f"{plugin.distribution} {plugin.version} is installed but is an empty placeholder: "
            f"its data loader, models and oracle arrive in a later release"
        )
