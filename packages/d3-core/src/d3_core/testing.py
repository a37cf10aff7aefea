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

    @classmethod
    def load_plugin(cls) -> DatasetPlugin:
        """The plugin under test, loaded the way d3-core's commands load it."""
        return load_dataset_plugin(cls.name)

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

    @classmethod
    def _research_file(cls, tmp_path, arch: str, **sizes: Any):
        from d3_core.checkpoint_fixtures import write_research

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
        """SPEC §10 A's table at paper size passes d3's layout check with every shape, and its
        trained tower is exactly d3's paper model (names and shapes)."""
        import torch

        from d3_core import formats
        from d3_core.checkpoint_fixtures import PAPER_LAYOUTS, research_key_table
        from d3_core.config import model_sizes, resolve_config

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
        expected = formats.check_layout(state, formats.RESEARCH, "paper-size file")
        assert [(e.name, e.shape, e.trainable) for e in expected] == [
            (key.name, key.shape, key.ema) for key in table
        ]
        assert sum(key.ema for key in table) == self.research_ema_lengths[arch]
        kept, _ = formats.tower_weights(state, arch)
        assert {k: tuple(v.shape) for k, v in kept.items()} == {
            k: tuple(v.shape) for k, v in ours.state_dict().items()
        }

    @pytest.mark.parametrize("arch", ["transformer", "conv"])
    def test_a_research_run_reproduces_the_research_model_through_every_path(self, tmp_path, arch):
        """Research run, its earlier-Lightning conversion and its `d3 convert` output all give the
        research forward pass's log-scores (SPEC §6/§7 on the file's EMA tensors), and
        `d3 sample` designs from the research run."""
        import numpy as np
        import torch

        from d3_core.checkpoint import load_model_local
        from d3_core.checkpoint_fixtures import reference_log_scores, write_converted
        from d3_core.cli import main

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

        from d3_core.checkpoint import load_model_local
        from d3_core.checkpoint_fixtures import reference_log_scores

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

    def test_a_packaged_conv_checkpoint_loads_only_for_one_label_channel(self, tmp_path):
        """d3-dna's conv model takes a per-position track or one global label, nothing wider."""
        from d3_core.checkpoint import load_checkpoint
        from d3_core.checkpoint_fixtures import write_packaged
        from d3_core.errors import CheckpointError

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

    # -- the paper-size model trains on CPU ---------------------------------------------------

    paper_parameters: ClassVar[dict[str, int]]
    """Parameters of the paper preset's score model per architecture (SPEC §6, §7)."""
    paper_step_batch: ClassVar[int] = 2
    """Sequences in the paper-size training step (one micro-batch each)."""

    @pytest.mark.parametrize("arch", ["transformer", "conv"])
    def test_the_paper_size_module_takes_one_training_step_on_cpu(self, arch) -> None:
        """The paper preset's module, optimizer and EMA take a real step."""
        import torch

        from d3_core.config import resolve_config
        from d3_core.models import count_parameters
        from d3_core.train import create_lightning_module
        from d3_core.training import train_step

        torch.manual_seed(0)
        cfg = resolve_config(self.name, arch, preset="paper")
        module = create_lightning_module(cfg, self.name)
        model = module.score_model.train()
        assert count_parameters(model) == self.paper_parameters[arch]
        optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.training.lr)
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        tokens, labels, _ = self._inputs(self.paper_step_batch)
        loss = train_step(model, optimizer, module.ema, tokens, labels, graph=module.graph,
                          noise=module.noise, micro_batch=1)  # fmt: skip
        assert torch.isfinite(loss) and loss > 0
        assert any(not torch.equal(p, before[n]) for n, p in model.named_parameters())
        assert module.ema.num_updates == 1

    # -- `d3 evaluate` from every checkpoint format ---------------------------------------------

    EVALUATE_OUTPUTS: ClassVar[tuple[str, ...]] = (
        "report.json", "report.md", "requested_vs_oracle.png", "distributions_oracle.png",
        "kmer_spectrum_k3.png",
    )  # fmt: skip

    @pytest.fixture(scope="class")
    @classmethod
    def evaluate_inputs(cls, tmp_path_factory) -> dict[str, Any]:
        """Tiny synthetic data, an oracle file in the published layout, one checkpoint of each
        format (d3: two training steps of the conv default preset)."""
        import torch

        from d3_core.checkpoint_fixtures import write_converted, write_packaged
        from d3_core.config import resolve_config
        from d3_core.train import RunDir, train

        plugin = cls.load_plugin()
        if not plugin.provides("oracle"):
            pytest.skip(f"the {cls.name} plugin declares no oracle to evaluate with")
        root = tmp_path_factory.mktemp(f"evaluate-{cls.name}")
        data = root / f"tiny{plugin.data_suffix}"
        plugin.load("synthetic_data")(data, seed=0, size="tiny")
        spec = plugin.load("oracle")
        torch.manual_seed(0)
        oracle = root / "oracle.ckpt"
        weights = {f"{spec.prefixes[0]}{k}": v for k, v in spec.build().state_dict().items()}
        torch.save({"epoch": 1, "state_dict": weights}, oracle)
        cfg = resolve_config(cls.name, "conv", overrides=[
            f"dataset.data={data}", "training.max_steps=2", "training.num_workers=0"])  # fmt: skip
        research = cls._research_file(root, "transformer")
        checkpoints = {
            "d3": train(cfg, RunDir(root / "ours"), progress=False).last_checkpoint,
            "research": research.run_dir,
            "research-conv": cls._research_file(root, "conv").run_dir,
            "packaged": write_packaged(
                root / "release.ckpt", arch="transformer", dataset=cls.name,
                signal=plugin.label_width, length=cls.sequence_length,
            ).path,
            "converted": write_converted(research, root / "converted.ckpt", dataset=cls.name,
                                         arch="transformer"),
        }  # fmt: skip
        n_test = len(plugin.load("data_loader")(data)["test"])
        return {"data": data, "oracle": oracle, "checkpoints": checkpoints, "n_test": n_test}

    def _evaluate(self, inputs: dict[str, Any], out: Any, *extra: str) -> dict[str, Any]:
        import json

        from d3_core.cli import main

        argv = ["evaluate", "--dataset", self.name, "--data", str(inputs["data"]), "--oracle",
                str(inputs["oracle"]), "--num-samples", "24", "--steps", "4", "--kmer", "3",
                "--out", str(out), "--no-progress", *extra]  # fmt: skip
        assert main(argv) == 0
        for name in self.EVALUATE_OUTPUTS:
            assert (out / name).is_file(), name
        return json.loads((out / "report.json").read_text())

    @pytest.mark.parametrize("fmt", ["d3", "research", "research-conv", "packaged", "converted"])
    def test_d3_evaluate_runs_from_every_checkpoint_format(self, evaluate_inputs, tmp_path, fmt):
        import numpy as np

        path = evaluate_inputs["checkpoints"][fmt]
        trust = ["--trust-checkpoint"] if fmt in ("packaged", "converted") else []
        report = self._evaluate(evaluate_inputs, tmp_path, "--model-path", str(path), *trust)
        assert report["checkpoint"]["format"] == fmt.split("-")[0]
        assert report["dataset"] == self.name
        samples = report["metrics"]["samples"]["mean"]
        keys = ["sp_mse.oracle", "ks.oracle", "js.k3", "memorisation.mean", "diversity"]
        if report["num_sequences"] >= 20:  # fewer cannot train the discriminator
            keys.append("auroc")
        for key in keys:
            assert np.isfinite(samples[key]), key
        assert report["metrics"]["parameters"]["kmer_k"] == [3]

    def test_d3_evaluate_scores_another_tools_npz(self, evaluate_inputs, tmp_path) -> None:
        import numpy as np

        rng = np.random.default_rng(0)
        tokens = rng.integers(0, 4, size=(min(24, evaluate_inputs["n_test"]), self.sequence_length))
        np.savez(tmp_path / "theirs.npz", arr_0=np.eye(4, dtype=np.float32)[tokens])  # (N, L, 4)
        report = self._evaluate(evaluate_inputs, tmp_path / "eval", "--samples",
                                str(tmp_path / "theirs.npz"))  # fmt: skip
        assert report["checkpoint"] is None and report["sampling"] is None
        # Uniform random sequences score as the random-sequence ceiling does.
        ceiling = report["metrics"]["baselines"]["random_sequences"]["sp_mse.oracle"]
        assert report["metrics"]["samples"]["mean"]["sp_mse.oracle"] == pytest.approx(
            ceiling, rel=0.5
        )

    def test_a_second_evaluation_with_the_same_seed_reproduces_the_numbers(
        self, evaluate_inputs, tmp_path
    ) -> None:
        path = str(evaluate_inputs["checkpoints"]["d3"])
        first = self._evaluate(evaluate_inputs, tmp_path / "a", "--model-path", path,
                               "--replicates", "2")  # fmt: skip
        second = self._evaluate(evaluate_inputs, tmp_path / "b", "--model-path", path,
                                "--replicates", "2")  # fmt: skip
        assert first["metrics"] == second["metrics"]
        assert first["scores"] == second["scores"]
        assert len(first["metrics"]["samples"]["replicates"]) == 2
        assert (tmp_path / "a" / "samples-r1" / "samples.npz").is_file()

    def test_paired_repeat_pools_sp_mse_over_k_samples_per_test_label(
        self, evaluate_inputs, tmp_path
    ) -> None:
        import numpy as np

        from d3_core.generate import read_samples
        from d3_core.metrics import sp_mse
        from d3_core.oracle import load_oracle

        path = str(evaluate_inputs["checkpoints"]["d3"])
        report = self._evaluate(evaluate_inputs, tmp_path, "--model-path", path,
                                "--paired-repeat", "2", "--no-discriminator")  # fmt: skip
        assert report["metrics"]["parameters"]["paired_repeat"] == 2
        n = report["num_sequences"]
        plugin = self.load_plugin()
        real = plugin.load("data_loader")(evaluate_inputs["data"])["test"].tokens[:n].numpy()
        oracle = load_oracle(evaluate_inputs["oracle"], plugin.load("oracle"))
        pairs = [read_samples(tmp_path / folder / "samples.npz", length=self.sequence_length)
                 for folder in ("samples", "samples-r1")]  # fmt: skip
        pooled = sp_mse(np.concatenate([oracle.predict(real)] * 2),
                        np.concatenate([oracle.predict(tokens) for tokens in pairs]))  # fmt: skip
        mean = report["metrics"]["samples"]["mean"]["sp_mse.oracle"]
        assert pooled > 0 and mean == pytest.approx(pooled, rel=1e-5)
