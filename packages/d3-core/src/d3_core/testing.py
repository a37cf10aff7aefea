"""Conformance tests that every dataset package's test suite subclasses."""

from __future__ import annotations

from importlib import metadata
from typing import ClassVar

from d3_core.registry import (
    ENTRY_POINT_GROUP,
    DatasetPlugin,
    get_model_class_for_dataset,
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

    def test_plugin_provides_everything_training_needs(self) -> None:
        plugin = self.load_plugin()
        require_ready(plugin)
        assert plugin.ready

    def test_both_architectures_resolve_to_score_model_classes(self) -> None:
        from d3_core.models.layers import ScoreModel

        for arch in ("Tran", "transformer", "Conv", "conv"):
            model_class = get_model_class_for_dataset(self.name, arch)
            assert issubclass(model_class, ScoreModel)
        assert get_model_class_for_dataset(self.name, "Tran").config_class is not (
            get_model_class_for_dataset(self.name, "Conv").config_class
        )

    def test_every_architecture_and_preset_resolves_to_a_valid_config(self) -> None:
        from d3_core.config import PRESETS, model_sizes, resolve_config

        plugin = self.load_plugin()
        for arch in ("transformer", "conv"):
            for preset in PRESETS:
                cfg = resolve_config(self.name, arch, preset=preset)
                assert cfg.model.architecture == arch
                assert cfg.dataset.name == self.name
                assert cfg.dataset.sequence_length == self.sequence_length
                sizes = model_sizes(cfg, plugin)
                assert (sizes.length, sizes.signal_dim) == (
                    self.sequence_length,
                    len(self.label_names),
                )

    def test_create_lightning_module_returns_the_dataset_subclass(self) -> None:
        from d3_core.config import resolve_config
        from d3_core.lightning import D3LightningModule
        from d3_core.train import create_lightning_module

        module_class = self.load_plugin().load("lightning_module")
        assert issubclass(module_class, D3LightningModule)
        assert module_class is not D3LightningModule
        for arch in ("transformer", "conv"):
            module = create_lightning_module(resolve_config(self.name, arch), self.name)
            assert type(module) is module_class
            assert module.dataset_name == self.name
            assert isinstance(module.score_model, get_model_class_for_dataset(self.name, arch))

    def test_synthetic_data_loads_with_the_plugin_loader(self, tmp_path) -> None:
        import torch

        from d3_core.data import check_example

        plugin = self.load_plugin()
        path = tmp_path / "synthetic-data"
        plugin.load("synthetic_data")(path, seed=0, size="tiny")
        splits = plugin.load("data_loader")(path)
        assert set(splits) == {"train", "valid", "test"}
        for dataset in splits.values():
            assert len(dataset) > 0
            check_example(dataset[0], length=self.sequence_length, label_shape=plugin.label_shape)
        tokens = torch.stack([splits["test"][i][0] for i in range(min(8, len(splits["test"])))])
        truth = plugin.load("ground_truth")(tokens)
        assert tuple(truth.shape) == (len(tokens), *plugin.label_shape)
