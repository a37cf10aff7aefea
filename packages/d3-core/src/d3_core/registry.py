"""Dataset-plugin registry: finds installed dataset packages through their entry points."""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Literal

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


ARCHITECTURES = ("transformer", "conv")
"""Canonical architecture names; `canonical_arch` maps every accepted spelling to one of them."""

_ARCH_ALIASES = {
    "transformer": "transformer",
    "tran": "transformer",
    "ddit": "transformer",
    "conv": "conv",
    "convolutional": "conv",
    "cnn": "conv",
}
_ARCH_LABELS = {"transformer": "Tran", "conv": "Conv"}

COMPONENTS = {
    "lightning_module": "a LightningModule subclass",
    "score_models": "score models",
    "configs": "packaged configs",
    "data_loader": "a data loader",
    "synthetic_data": "a synthetic-data writer",
    "ground_truth": "a ground-truth scorer for its synthetic data",
    "oracle": "an oracle",
}
"""What a dataset package may provide, with the words used in error messages."""

TRAINING_COMPONENTS = ("lightning_module", "score_models", "configs", "data_loader")
"""The components without which a dataset cannot be trained."""

Ref = Any
"""A component: an object, or the ``"module:attribute"`` path that imports it lazily."""


def canonical_arch(arch: str) -> str:
    """Maps an architecture name to ``"transformer"`` or ``"conv"``.

    Args:
        arch: ``Tran``, ``transformer``, ``Conv``, ``conv`` or ``convolutional``, in any case.

    Raises:
        PluginError: The name is none of these.
    """
    key = str(arch).strip().lower()
    if key not in _ARCH_ALIASES:
        raise PluginError(
            f"unknown architecture {arch!r}; use Tran (transformer) or Conv (conv), in any case"
        )
    return _ARCH_ALIASES[key]


def arch_label(arch: str) -> str:
    """The short label of an architecture used in run names: ``"Tran"`` or ``"Conv"``."""
    return _ARCH_LABELS[canonical_arch(arch)]


def resolve_ref(ref: Ref, *, what: str) -> Any:
    """Imports a ``"module:attribute"`` path; any other object is returned unchanged.

    Args:
        ref: The path or the object itself.
        what: Words for the error message, e.g. "d3-deepstarr's data loader".

    Raises:
        PluginError: The module fails to import or lacks the attribute.
    """
    if not isinstance(ref, str):
        return ref
    module_name, _, attribute = ref.partition(":")
    try:
        target = importlib.import_module(module_name)
        for part in attribute.split(".") if attribute else ():
            target = getattr(target, part)
    except (ImportError, AttributeError) as err:
        raise PluginError(
            f"{what} ({ref}) cannot be imported: {type(err).__name__}: {err}; "
            f"reinstall that package"
        ) from err
    return target


@dataclass(frozen=True)
class DatasetPlugin:
    """What a dataset package declares about itself to d3-core.

    Components are given as ``"module:attribute"`` paths, imported only when used, so that
    listing datasets imports no torch; an object works too (tests use that).

    Attributes:
        name: Lower-case dataset name, equal to the entry-point name, e.g. ``"deepstarr"``.
        distribution: The pip package that provides the plugin, e.g. ``"d3-deepstarr"``.
        sequence_length: Length L of every sequence in base pairs, > 0.
        label_names: One name per label channel, e.g. ``("Dev", "Hk")``; its length is the
            label width S.
        label_mode: ``"global"`` for one (S,) label per sequence, ``"per_position"`` for an
            (L, S) label track.
        version: The providing package's version (read from its ``__version__``).
        description: One sentence on what the data is.
        lightning_module: The dataset's `D3LightningModule` subclass, built as ``cls(cfg)``.
        score_models: Score-model class per architecture (``"transformer"``, ``"conv"``).
        configs: Package holding ``<arch>/<preset>.yaml`` config files (presets ``paper`` and
            ``cpu``).
        data_loader: ``load(path) -> {"train", "valid", "test"}`` datasets of (tokens (L,) int64,
            labels (S,) or (L, S) float32), reading the dataset's real file format.
        synthetic_data: ``write(path, *, seed, size)`` writes synthetic data in that same format,
            with a planted label-sequence rule; ``size`` is ``"tiny"``, ``"small"`` or ``"full"``.
        ground_truth: ``score(tokens (N, L) int64) -> (N, S) or (N, L, S) float32``: the planted
            rule's noise-free labels, for judging samples of models trained on synthetic data.
        oracle: The dataset's `d3_core.oracles.OracleSpec`: the activity predictor that scores
            designed sequences, its published checkpoint layout and training recipe.
        data_suffix: File-name suffix of the data format, e.g. ``".h5"``; names the files that
            `d3 demo` writes (loaders recognise files by content, not by suffix).
    """

    name: str
    distribution: str
    sequence_length: int
    label_names: tuple[str, ...]
    label_mode: Literal["global", "per_position"]
    version: str
    description: str
    lightning_module: Ref | None = None
    score_models: Mapping[str, Ref] = field(default_factory=dict)
    configs: str | None = None
    data_loader: Ref | None = None
    synthetic_data: Ref | None = None
    ground_truth: Ref | None = None
    oracle: Ref | None = None
    data_suffix: str = ""

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
        unknown = sorted(set(self.score_models) - set(ARCHITECTURES))
        if unknown:
            raise PluginError(
                f"DatasetPlugin {self.name!r}: score_models keys must be among {ARCHITECTURES}, "
                f"got {unknown}"
            )
        # A copy, so that the caller's dict cannot change a declared plugin.
        object.__setattr__(self, "score_models", dict(self.score_models))

    @property
    def label_width(self) -> int:
        """Number of label channels S."""
        return len(self.label_names)

    @property
    def label_shape(self) -> tuple[int, ...]:
        """Shape of one sequence's labels: (S,) or (L, S)."""
        if self.label_mode == "global":
            return (self.label_width,)
        return (self.sequence_length, self.label_width)

    def provides(self, component: str) -> bool:
        """Whether the package provides `component` (a key of `COMPONENTS`)."""
        value = getattr(self, component)
        if component == "score_models":
            return set(value) == set(ARCHITECTURES)
        return value is not None

    @property
    def ready(self) -> bool:
        """Whether the package provides everything training needs."""
        return all(self.provides(component) for component in TRAINING_COMPONENTS)

    def require(self, component: str) -> None:
        """Stops work that needs a component the package does not provide.

        Raises:
            PluginError: naming the package, its version and the missing component.
        """
        if not self.provides(component):
            raise PluginError(
                f"{self.distribution} {self.version} does not provide {COMPONENTS[component]} "
                f"yet; upgrade it (`pip install -U {self.distribution}`)"
            )

    def load(self, component: str) -> Any:
        """Imports one component (not ``score_models``; see `score_model_class`)."""
        self.require(component)
        return resolve_ref(
            getattr(self, component), what=f"{self.distribution}'s {COMPONENTS[component]}"
        )

    def score_model_class(self, arch: str) -> type:
        """The score-model class for an architecture name in any accepted spelling."""
        key = canonical_arch(arch)
        self.require("score_models")
        return resolve_ref(
            self.score_models[key], what=f"{self.distribution}'s {arch_label(key)} score model"
        )


def package_components(
    package: str, *, lightning_module: str, score_models: tuple[str, str]
) -> dict[str, Any]:
    """The component fields of a package laid out as d3's: ``<package>.lightning`` (the module
    class), ``.models`` (score models for (transformer, conv)), ``.configs``, ``.data``
    (``load_data``), ``.synthetic`` (``write_synthetic``, ``ground_truth``) and ``.oracle``
    (``ORACLE``); a plugin is ``DatasetPlugin(..., **package_components(...))``.
    """
    models = dict(zip(ARCHITECTURES, score_models, strict=True))
    return {
        "lightning_module": f"{package}.lightning:{lightning_module}",
        "score_models": {arch: f"{package}.models:{name}" for arch, name in models.items()},
        "configs": f"{package}.configs",
        "data_loader": f"{package}.data:load_data",
        "synthetic_data": f"{package}.synthetic:write_synthetic",
        "ground_truth": f"{package}.synthetic:ground_truth",
        "oracle": f"{package}.oracle:ORACLE",
    }


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


def as_plugin(dataset: str | DatasetPlugin) -> DatasetPlugin:
    """The plugin itself, or the installed one a name stands for: the one step a public function
    that takes either does at its edge, so that the plugin, not the name, is passed down.

    Raises:
        PluginError: As `load_dataset_plugin`, for a name.
    """
    return dataset if isinstance(dataset, DatasetPlugin) else load_dataset_plugin(dataset)


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
    """Stops training work when a dataset package lacks what training needs.

    Args:
        plugin: A loaded dataset plugin.

    Raises:
        PluginError: naming the package, its version and every missing component.
    """
    missing = [COMPONENTS[c] for c in TRAINING_COMPONENTS if not plugin.provides(c)]
    if missing:
        raise PluginError(
            f"{plugin.distribution} {plugin.version} is installed but does not provide "
            f"{', '.join(missing)}; upgrade it (`pip install -U {plugin.distribution}`)"
        )


def get_model_class_for_dataset(dataset: str, arch: str) -> type:
    """The score-model class of a dataset and architecture (the original design's router).

    Imports only the dataset package asked for.

    Args:
        dataset: Dataset name, any case.
        arch: ``Tran``/``transformer`` or ``Conv``/``conv``, any case.
    """
    return load_dataset_plugin(dataset).score_model_class(arch)
