"""The checkpoint half of the conformance tests: every file a user already has
(docs/checkpoint-formats.md).

`d3_core.testing.conformance.DatasetPluginConformance` inherits these tests, so every dataset
package runs them against its research, d3-dna and converted checkpoints of both architectures.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from d3_core.registry import DatasetPlugin, get_model_class_for_dataset


class CheckpointConformance:
    """Reading the dataset's research, d3-dna and converted checkpoints; see
    `d3_core.testing.conformance`.

    The subclass sets ``name`` and ``sequence_length``, provides ``load_plugin`` and declares
    the published files' quirks below.
    """

    name: ClassVar[str]
    sequence_length: ClassVar[int]

    # What the published research checkpoints of this dataset hold
    # (docs/checkpoint-formats.md#research-checkpoints).
    research_label_classes: ClassVar[int]
    """Rows of the unused ``label_embed.embedding_table`` (n_cls + 1)."""
    research_fourier_embed: ClassVar[tuple[str, ...]] = ()
    """Architectures whose research files hold the unused ``embed`` (DeepSTARR-Tran)."""
    research_conv_label_width: ClassVar[dict[str, int | None]]
    """Input width of the conv ``label_emb`` in each architecture's file; None: no label_emb."""
    research_ema_lengths: ClassVar[dict[str, int]]
    """Length of the positional EMA list of each architecture's paper-size file."""

    @classmethod
    def load_plugin(cls) -> DatasetPlugin:
        raise NotImplementedError

    # -- checkpoints users already have (docs/checkpoint-formats.md)
    # ------------------------------------------

    @classmethod
    def _research_file(cls, tmp_path, arch: str, **sizes: Any):
        from d3_core.testing.checkpoint_writers import write_research

        plugin = cls.load_plugin()
        return write_research(
            tmp_path / "model_zoo" / cls.name / ("Tran" if arch == "transformer" else "Conv"),
            dataset=cls.name,
            arch=arch,
            signal=plugin.label_width,
            length=cls.sequence_length,
            label_classes=cls.research_label_classes,
            fourier=arch in cls.research_fourier_embed,
            label_emb_width=cls.research_conv_label_width[arch],
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

        from d3_core.checkpoints.load import load_checkpoint
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

        from d3_core.checkpoints.load import read_contents, write_checkpoint

        written = self._research_file(tmp_path, arch)
        source = read_contents(written.path)
        again = read_contents(write_checkpoint(source, tmp_path / "converted.ckpt"))
        assert (again.format, again.plugin.name, again.architecture) == ("d3", self.name, arch)
        for ours, theirs in ((again.weights, source.weights), (again.ema, source.ema)):
            assert ours.keys() == theirs.keys()
            assert all(torch.equal(ours[k], theirs[k]) for k in ours)

    @pytest.mark.parametrize("arch", ["transformer", "conv"])
    def test_a_research_checkpoint_is_refused_by_another_dataset(self, tmp_path, arch):
        from d3_core.checkpoints.load import load_checkpoint
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
        """docs/checkpoint-formats.md#research-checkpoints's table at paper size passes d3's layout
        check with every shape, and its trained tower is exactly d3's paper model (names and
        shapes)."""
        import torch

        from d3_core.checkpoints import layouts, towers
        from d3_core.config import model_sizes, resolve_config
        from d3_core.testing.key_tables import PAPER_LAYOUTS, research_key_table

        plugin = self.load_plugin()
        spec = PAPER_LAYOUTS[(self.name, arch)]
        assert (spec["signal"], spec["length"]) == (plugin.label_width, self.sequence_length)
        assert spec["label_classes"] == self.research_label_classes
        assert spec["fourier"] == (arch in self.research_fourier_embed)
        assert spec["label_emb_width"] == self.research_conv_label_width[arch]
        table = research_key_table(
            arch=arch, **{k: v for k, v in spec.items() if k != "ema_length"}
        )
        with torch.device("meta"):
            state = {key.name: torch.empty(key.shape) for key in table}
            cfg = resolve_config(self.name, arch, preset="paper")
            ours = get_model_class_for_dataset(self.name, arch)(model_sizes(cfg, plugin))
        expected = layouts.check_layout(state, layouts.RESEARCH, "paper-size file")
        assert [(e.name, e.shape, e.trainable) for e in expected] == [
            (key.name, key.shape, key.ema) for key in table
        ]
        assert sum(key.ema for key in table) == self.research_ema_lengths[arch]
        kept, _ = towers.tower_weights(state, arch)
        assert {k: tuple(v.shape) for k, v in kept.items()} == {
            k: tuple(v.shape) for k, v in ours.state_dict().items()
        }

    @pytest.mark.parametrize("arch", ["transformer", "conv"])
    def test_a_research_run_reproduces_the_research_model_through_every_path(self, tmp_path, arch):
        """Research run, its earlier-Lightning conversion and its `d3 convert` output all give the
        research forward pass's log-scores (docs/models.md#transformer/docs/models.md#convolutional
        on the file's EMA tensors), and `d3 sample` designs from the research run."""
        import numpy as np
        import torch

        from d3_core.checkpoints.load import load_model_local
        from d3_core.cli.main import main
        from d3_core.testing.checkpoint_writers import write_converted
        from d3_core.testing.reference import reference_log_scores

        written = self._research_file(tmp_path, arch)
        tokens, labels, sigma = self._inputs()
        theirs = reference_log_scores(written.ema_state(), arch, tokens, labels, sigma, n_heads=2)
        lightning = write_converted(written, tmp_path / "lightning.ckpt", dataset=self.name,
                                    arch=arch)  # fmt: skip
        assert main(["convert", str(written.path)]) == 0
        ours = written.path.with_name("checkpoint.d3.ckpt")
        scores = {}
        for name, path, trusted in (("research", written.run_dir, False),
                                    ("converted", lightning, True), ("d3", ours, False)):  # fmt: skip
            model, _, _ = load_model_local(path, "cpu", trusted=trusted)
            with torch.no_grad():
                scores[name] = model(tokens, labels, sigma)
            assert (scores[name].double() - theirs).abs().max() < 2e-5, name
        assert torch.equal(scores["d3"], scores["research"])
        assert torch.equal(scores["converted"], scores["research"])
        labels_file = tmp_path / "labels.npy"
        np.save(labels_file, labels.numpy())
        out = tmp_path / "samples"
        argv = ["sample", "--checkpoint", str(written.run_dir), "--labels", str(labels_file),
                "--steps", "2", "--out", str(out), "--no-progress"]  # fmt: skip
        assert main(argv) == 0
        with np.load(out / "samples.npz") as data:
            assert data["tokens"].shape == (len(labels), self.sequence_length)

    @pytest.mark.slow
    @pytest.mark.parametrize("arch", ["transformer", "conv"])
    def test_a_paper_size_research_file_reproduces_the_research_model(self, tmp_path, arch):
        """A research run at paper size (both towers, ~0.8 GB) loads strictly and gives the
        research forward pass's log-scores within 2e-5 (float32 CPU against float64)."""
        import torch

        from d3_core.checkpoints.load import load_model_local
        from d3_core.testing.reference import reference_log_scores

        written = self._research_file(tmp_path, arch, hidden=768, n_blocks=12, n_heads=12,
                                      channels=256, conv_blocks=20)  # fmt: skip
        assert written.ema_length == self.research_ema_lengths[arch]
        model, _, _ = load_model_local(written.run_dir, "cpu")
        tokens, labels, sigma = self._inputs()
        with torch.no_grad():
            ours = model(tokens, labels, sigma)
        theirs = reference_log_scores(written.ema_state(), arch, tokens, labels, sigma, n_heads=12)
        error = float((ours.double() - theirs).abs().max())
        print(f"{self.name} {arch} paper size: max |log-score error| {error:.2e}")
        assert error < 2e-5

    def test_a_packaged_transformer_checkpoint_loads_safely_as_when_trusted(self, tmp_path):
        """Its OmegaConf config is plain data on the allowlist: no full unpickle is needed."""
        import torch

        from d3_core.checkpoints.load import load_checkpoint
        from d3_core.testing.checkpoint_writers import write_packaged

        plugin = self.load_plugin()
        written = write_packaged(
            tmp_path / "release.ckpt", dataset=self.name, arch="transformer",
            signal=plugin.label_width, length=self.sequence_length,
        )  # fmt: skip
        safe = load_checkpoint(written.path, dataset=self.name)
        loaded = load_checkpoint(written.path, trusted=True, dataset=self.name)
        assert loaded.format == safe.format == "packaged" and loaded.cfg.model.cond_dim == 128
        params = dict(loaded.model.named_parameters())
        assert params.keys() == written.ema.keys()
        assert all(torch.equal(params[k], v) for k, v in written.ema.items())
        safe_params = dict(safe.model.named_parameters())
        assert all(torch.equal(safe_params[k], v) for k, v in written.ema.items())

    def test_a_packaged_conv_checkpoint_loads_only_for_one_label_channel(self, tmp_path):
        """d3-dna's conv model takes a per-position track or one global label, nothing wider."""
        from d3_core.checkpoints.load import load_checkpoint
        from d3_core.errors import CheckpointError
        from d3_core.testing.checkpoint_writers import write_packaged

        plugin = self.load_plugin()
        written = write_packaged(
            tmp_path / "release.ckpt", dataset=self.name, arch="conv",
            signal=plugin.label_width, length=self.sequence_length,
        )  # fmt: skip
        if plugin.label_width == 1:
            loaded = load_checkpoint(written.path, trusted=True)
            assert (loaded.architecture, loaded.cfg.model.cond_dim) == ("conv", 128)
        else:
            with pytest.raises(CheckpointError, match="takes one label channel"):
                load_checkpoint(written.path, trusted=True)

    @pytest.mark.parametrize("arch", ["transformer", "conv"])
    def test_a_converted_lightning_file_loads_as_its_research_file(self, tmp_path, arch):
        import torch

        from d3_core.checkpoints.load import load_checkpoint
        from d3_core.testing.checkpoint_writers import write_converted

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
