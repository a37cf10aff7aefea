"""Conformance tests that every dataset package's test suite subclasses."""

from __future__ import annotations

from importlib import metadata
from typing import Any, ClassVar

import pytest

from d3_core.registry import (
    COMPONENTS,
    ENTRY_POINT_GROUP,
    DatasetPlugin,
    get_model_class_for_dataset,
    list_datasets,
    load_dataset_plugin,
    require_ready,
)
from d3_core.testing.checkpoint_conformance import CheckpointConformance


class DatasetPluginConformance(CheckpointConformance):
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

    score_model_names: ClassVar[dict[str, str]]
    """The promised class names of the score models, per architecture."""
    lightning_module_name: ClassVar[str]
    """The promised class name of the LightningModule, e.g. ``"DeepSTARRD3LightningModule"``."""

    def test_every_component_is_declared_and_imports(self) -> None:
        plugin = self.load_plugin()
        assert all(plugin.provides(component) for component in COMPONENTS)
        for component in ("data_loader", "synthetic_data", "ground_truth"):
            assert callable(plugin.load(component)), component

    def test_the_classes_are_the_promised_names_of_the_package(self) -> None:
        plugin = self.load_plugin()
        package = list_datasets()[self.name].value.split(".")[0]
        module_class = plugin.load("lightning_module")
        assert module_class.__name__ == self.lightning_module_name
        assert module_class.__module__.split(".")[0] == package
        for arch, name in self.score_model_names.items():
            model_class = plugin.score_model_class(arch)
            assert model_class.__name__ == name
            assert model_class.__module__.split(".")[0] == package

    def test_loading_the_plugin_imports_neither_torch_nor_h5py_nor_its_components(self) -> None:
        import subprocess
        import sys

        module = list_datasets()[self.name].value.split(":")[0]
        package = module.split(".")[0]
        heavy = ("torch", "h5py", f"{package}.models", f"{package}.data")
        code = f"import sys, {module}; print([m for m in {heavy!r} if m in sys.modules])"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True)  # fmt: skip
        assert out.stdout.strip() == "[]"

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
        from d3_core.training.module import D3LightningModule
        from d3_core.training.run import create_lightning_module

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

        from d3_core.data.loader import check_example

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

    # -- the paper-size model trains on CPU ---------------------------------------------------

    paper_parameters: ClassVar[dict[str, int]]
    """Parameters of the paper preset's score model per architecture (docs/models.md#transformer,
    docs/models.md#convolutional)."""
    paper_step_batch: ClassVar[int] = 2
    """Sequences in the paper-size training step (one micro-batch each)."""

    @pytest.mark.parametrize("arch", ["transformer", "conv"])
    def test_the_paper_size_module_takes_one_training_step_on_cpu(self, arch) -> None:
        """The paper preset's module, optimizer and EMA take a real step."""
        import torch

        from d3_core.config import resolve_config
        from d3_core.models import count_parameters
        from d3_core.training.run import create_lightning_module
        from d3_core.training.step import train_step

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

        from d3_core.config import resolve_config
        from d3_core.testing.checkpoint_writers import write_converted, write_packaged
        from d3_core.training.run import RunDir, train

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

        from d3_core.cli.main import main

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

        from d3_core.evaluation.metrics import sp_mse
        from d3_core.generation.sequences import read_samples
        from d3_core.oracles.oracle import load_oracle

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
