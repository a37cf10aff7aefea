"""Conformance tests that every dataset package's test suite subclasses."""

from __future__ import annotations

from importlib import metadata
from typing import Any, ClassVar

import pytest

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

    # What the published research checkpoints of this dataset hold (SPEC §10 A).
    research_label_classes: ClassVar[int]
    """Rows of the unused ``label_embed.embedding_table`` (n_cls + 1)."""
    research_fourier_embed: ClassVar[tuple[str, ...]] = ()
    """Architectures whose research files hold the unused ``embed`` (DeepSTARR-Tran)."""
    research_conv_label_width: ClassVar[dict[str, int | None]]
    """Input width of the conv ``label_emb`` in each architecture's file; None: no label_emb."""
    research_ema_lengths: ClassVar[dict[str, int]]
    """Length of the positional EMA list of each architecture's paper-size file."""

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

    # -- checkpoints users already have (SPEC §10) ------------------------------------------

    def _research_file(self, tmp_path, arch: str, **sizes: Any):
        from d3_core.checkpoint_fixtures import write_research

        plugin = self.load_plugin()
        return write_research(
            tmp_path / "model_zoo" / self.name / ("Tran" if arch == "transformer" else "Conv"),
            dataset=self.name,
            arch=arch,
            signal=plugin.label_width,
            length=self.sequence_length,
            label_classes=self.research_label_classes,
            fourier=arch in self.research_fourier_embed,
            label_emb_width=self.research_conv_label_width[arch],
            **sizes,
        )

    def _inputs(self, batch: int = 2) -> tuple[Any, Any, Any]:
        import torch

        generator = torch.Generator().manual_seed(3)
        plugin = self.load_plugin()
        tokens = torch.randint(0, 4, (batch, self.sequence_length), generator=generator)
        labels = torch.randn(batch, *plugin.label_shape, generator=generator)
        return tokens, labels, torch.rand(batch, generator=generator) * 3

    @pytest.mark.parametrize("arch", ["transformer", "conv"])
    def test_a_research_checkpoint_loads_its_trained_tower_with_the_ema(self, tmp_path, arch):
        import torch

        from d3_core.checkpoint import load_checkpoint
        from d3_core.config import model_sizes

        written = self._research_file(tmp_path, arch)
        loaded = load_checkpoint(written.run_dir, dataset=self.name)
        model_class = get_model_class_for_dataset(self.name, arch)
        assert type(loaded.model) is model_class
        assert (loaded.dataset, loaded.architecture, loaded.format) == (self.name, arch, "research")
        params = dict(loaded.model.named_parameters())
        assert params.keys() == written.ema.keys()
        for name, value in written.ema.items():
            assert torch.equal(params[name], value), name
            assert not torch.equal(value, written.weights[name]), name
        # The same scores as the dataset's model given the intended weights by hand.
        direct = model_class(model_sizes(loaded.cfg, self.load_plugin()))
        buffers = {k: v for k, v in written.weights.items() if k not in written.ema}
        direct.load_state_dict({**buffers, **written.ema}, strict=True)
        tokens, labels, sigma = self._inputs()
        with torch.no_grad():
            ours = loaded.model(tokens, labels, sigma)
            assert torch.equal(ours, direct.eval()(tokens, labels, sigma))
            assert torch.equal(loaded.model(tokens, labels, False, sigma), ours)

    @pytest.mark.parametrize("arch", ["transformer", "conv"])
    def test_a_research_checkpoint_converts_bit_exactly(self, tmp_path, arch):
        import torch

        from d3_core.checkpoint import read_contents, write_checkpoint

        written = self._research_file(tmp_path, arch)
        source = read_contents(written.path)
        again = read_contents(write_checkpoint(source, tmp_path / "converted.ckpt"))
        assert (again.format, again.plugin.name, again.architecture) == ("d3", self.name, arch)
        for ours, theirs in ((again.weights, source.weights), (again.ema, source.ema)):
            assert ours.keys() == theirs.keys()
            assert all(torch.equal(ours[k], theirs[k]) for k in ours)

    @pytest.mark.parametrize("arch", ["transformer", "conv"])
    def test_a_research_checkpoint_is_refused_by_another_dataset(self, tmp_path, arch):
        from d3_core.checkpoint import load_checkpoint
        from d3_core.errors import CheckpointError

        written = self._research_file(tmp_path, arch)
        other = "mpra" if self.name != "mpra" else "deepstarr"
        message = (
            f"{written.path} is a {self.name} checkpoint (data.train in its config); it cannot be "
            f"used as a {other} model"
        )
        with pytest.raises(CheckpointError) as error:
            load_checkpoint(written.run_dir, dataset=other)
        assert str(error.value) == message

    @pytest.mark.parametrize("arch", ["transformer", "conv"])
    def test_a_paper_size_research_file_has_spec_layout_and_fits_the_paper_model(self, arch):
        import torch

        from d3_core import formats
        from d3_core.checkpoint_fixtures import ResearchModel
        from d3_core.config import model_sizes, resolve_config

        plugin = self.load_plugin()
        with torch.device("meta"):
            research = ResearchModel(
                signal=plugin.label_width,
                length=self.sequence_length,
                label_classes=self.research_label_classes,
                fourier=arch in self.research_fourier_embed,
                label_emb_width=self.research_conv_label_width[arch],
                cond=128 if arch == "transformer" else 256,
            )
            cfg = resolve_config(self.name, arch, preset="paper")
            ours = get_model_class_for_dataset(self.name, arch)(model_sizes(cfg, plugin))
        state = research.state_dict()
        expected = formats.check_layout(state, formats.RESEARCH, "paper-size file")
        trainable = [spec.name for spec in expected if spec.trainable]
        assert len(trainable) == self.research_ema_lengths[arch]
        assert trainable == [n for n, p in research.named_parameters() if p.requires_grad]
        kept, _ = formats.tower_weights(state, arch)
        assert {k: tuple(v.shape) for k, v in kept.items()} == {
            k: tuple(v.shape) for k, v in ours.state_dict().items()
        }

    def test_a_packaged_transformer_checkpoint_loads_when_trusted(self, tmp_path):
        import torch

        from d3_core.checkpoint import load_checkpoint
        from d3_core.checkpoint_fixtures import write_packaged
        from d3_core.errors import CheckpointError

        plugin = self.load_plugin()
        written = write_packaged(
            tmp_path / "release.ckpt", dataset=self.name, arch="transformer",
            signal=plugin.label_width, length=self.sequence_length,
        )  # fmt: skip
        with pytest.raises(CheckpointError, match="--trust-checkpoint"):
            load_checkpoint(written.path)
        loaded = load_checkpoint(written.path, trusted=True, dataset=self.name)
        assert loaded.format == "packaged" and loaded.cfg.model.cond_dim == 128
        params = dict(loaded.model.named_parameters())
        assert params.keys() == written.ema.keys()
        assert all(torch.equal(params[k], v) for k, v in written.ema.items())

    def test_a_packaged_conv_checkpoint_loads_only_for_a_per_position_label(self, tmp_path):
        from d3_core.checkpoint import load_checkpoint
        from d3_core.checkpoint_fixtures import write_packaged
        from d3_core.errors import CheckpointError

        plugin = self.load_plugin()
        written = write_packaged(
            tmp_path / "release.ckpt", dataset=self.name, arch="conv",
            signal=plugin.label_width, length=self.sequence_length,
        )  # fmt: skip
        if plugin.label_mode == "per_position":
            loaded = load_checkpoint(written.path, trusted=True)
            assert (loaded.architecture, loaded.cfg.model.cond_dim) == ("conv", 128)
        else:
            with pytest.raises(CheckpointError, match="takes a per-position label only"):
                load_checkpoint(written.path, trusted=True)

    @pytest.mark.parametrize("arch", ["transformer", "conv"])
    def test_a_converted_lightning_file_loads_as_its_research_file(self, tmp_path, arch):
        import torch

        from d3_core.checkpoint import load_checkpoint
        from d3_core.checkpoint_fixtures import write_converted

        written = self._research_file(tmp_path, arch)
        path = write_converted(written, tmp_path / "converted.ckpt", dataset=self.name, arch=arch)
        loaded = load_checkpoint(path, trusted=True)
        assert (loaded.format, loaded.architecture, loaded.step) == (
            "converted",
            arch,
            written.step,
        )
        params = dict(loaded.model.named_parameters())
        assert all(torch.equal(params[k], v) for k, v in written.ema.items())
