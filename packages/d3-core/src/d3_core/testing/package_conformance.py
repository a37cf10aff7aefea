"""Conformance tests of a dataset package's score-model variants, presets, oracle and designs.

For tests only. A dataset package subclasses these in its tests under names starting with
``Test`` and sets the class attributes each documents; pytest then runs every ``test_*`` method
against the installed package:

* `ScoreModelVariantConformance` (``tests/test_models.py``): the variants are core's models and
  refuse a config of another dataset, naming the value.
* `PresetConformance` (``tests/test_configs.py``): every preset is a packaged file that
  resolves; the paper preset trains as the research runs did; the CPU preset is small.
* `PublishedOracleConformance` (``tests/test_oracle.py``): the oracle has the published keys and
  size, and a checkpoint written from the published key table loads strictly and predicts as
  the published forward pass, written out by the package's test with functional ops.
* `TrainedRunFixtures` and `GlobalLabelDesignConformance` (``tests/test_end_to_end.py``): one
  CPU-preset run on the package's small synthetic file per test class, and designs that follow
  their labels better than the baselines, judged by the planted rule.

The expected messages, keys and numbers come from the attributes (what the package promises),
not from the package's own declarations.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from d3_core.errors import CheckpointError, D3ConfigError
from d3_core.registry import ARCHITECTURES, DatasetPlugin, load_dataset_plugin

__all__ = [
    "GlobalLabelDesignConformance",
    "PresetConformance",
    "PublishedOracleConformance",
    "ScoreModelVariantConformance",
    "TrainedRunFixtures",
]

SMALL_SIZES = {
    "transformer": {"hidden_size": 32, "n_blocks": 1, "n_heads": 2, "cond_dim": 16},
    "conv": {"channels": 16, "n_blocks": 2, "cond_dim": 16},
}
"""Sizes of the small variants the model checks build, per architecture."""


class _Dataset:
    name: ClassVar[str]
    """The dataset's registered name, e.g. ``"deepstarr"``."""

    @classmethod
    def plugin(cls) -> DatasetPlugin:
        return load_dataset_plugin(cls.name)


class ScoreModelVariantConformance(_Dataset):
    """The dataset's score-model variants. Set `name` and `title`."""

    title: ClassVar[str]
    """The dataset's name in messages, e.g. ``"DeepSTARR"``."""

    def config(self, arch: str, **changes: Any) -> Any:
        """A small config of the dataset's shape for ``arch``, with ``changes``."""
        plugin = self.plugin()
        fields = {"length": plugin.sequence_length, "signal_dim": plugin.label_width,
                  "label_mode": plugin.label_mode, **SMALL_SIZES[arch], **changes}  # fmt: skip
        return plugin.score_model_class(arch).config_class(**fields)

    def refused(self, arch: str, message: str, config: Any) -> None:
        with pytest.raises(D3ConfigError, match=message):
            self.plugin().score_model_class(arch)(config)

    @pytest.mark.parametrize("arch", ARCHITECTURES)
    def test_a_variant_is_cores_model_with_cores_config_class(self, arch) -> None:
        import torch

        from d3_core.models import ConvScoreModel, TransformerScoreModel

        plugin = self.plugin()
        variant = plugin.score_model_class(arch)
        core = {"transformer": TransformerScoreModel, "conv": ConvScoreModel}[arch]
        assert issubclass(variant, core) and variant is not core
        assert variant.config_class is core.config_class
        length = plugin.sequence_length
        model = variant(self.config(arch))
        out = model(torch.randint(0, 4, (3, length)), torch.randn(3, *plugin.label_shape),
                    torch.rand(3))  # fmt: skip
        assert out.shape == (3, length, 4)

    @pytest.mark.parametrize("arch", ARCHITECTURES)
    def test_a_variant_rejects_another_sequence_length(self, arch) -> None:
        plugin = self.plugin()
        length, width = plugin.sequence_length, plugin.label_width
        variant = plugin.score_model_class(arch).__name__
        mode = plugin.label_mode.replace("_", "-")
        message = (
            f"{variant} models {self.title} data ({length}-bp sequences, {width} {mode} labels "
            f"{', '.join(plugin.label_names)}): config length={length + 1}, expected {length}"
        )
        self.refused(arch, f"^{re.escape(message)}$", self.config(arch, length=length + 1))

    @pytest.mark.parametrize("arch", ARCHITECTURES)
    def test_a_variant_rejects_another_label_width(self, arch) -> None:
        width = self.plugin().label_width
        message = rf"config signal_dim={width + 1}, expected {width}$"
        self.refused(arch, message, self.config(arch, signal_dim=width + 1))

    def test_a_variant_rejects_the_other_label_mode(self) -> None:
        # The transformer's config takes either mode at any width (the conv's ties per-position
        # labels to one channel, so its config refuses the change first).
        mode = self.plugin().label_mode
        other = "per_position" if mode == "global" else "global"
        message = f"config label_mode='{other}', expected '{mode}'"
        config = self.config("transformer", label_mode=other)
        self.refused("transformer", re.escape(message), config)

    @pytest.mark.parametrize("arch", ARCHITECTURES)
    def test_a_variant_rejects_the_other_architectures_config(self, arch) -> None:
        plugin = self.plugin()
        other = next(a for a in ARCHITECTURES if a != arch)
        variant, theirs = plugin.score_model_class(arch), plugin.score_model_class(other)
        message = (
            f"{variant.__name__} takes a {variant.config_class.__name__}, got "
            f"{theirs.config_class.__name__}"
        )
        self.refused(arch, f"^{re.escape(message)}$", self.config(other))


class PresetConformance(_Dataset):
    """The packaged configs. Set `name` and `paper_training`."""

    paper_training: ClassVar[dict[str, Any]]
    """``training`` values of the paper preset, as the research runs trained."""
    cpu_limits: ClassVar[dict[str, int]] = {"batch_size": 32, "max_steps": 2000}
    """The CPU preset's ``training`` values at most."""
    cpu_sampling_steps: ClassVar[int] = 128
    """The CPU preset's sampler steps at most."""

    @pytest.mark.parametrize("arch", ARCHITECTURES)
    @pytest.mark.parametrize("preset", ["paper", "cpu"])
    def test_every_preset_is_a_packaged_file_that_resolves(self, arch, preset) -> None:
        from d3_core.config import resolve_config

        assert (resources.files(self.plugin().configs) / arch / f"{preset}.yaml").is_file()
        cfg = resolve_config(self.name, arch, preset=preset)
        assert (cfg.dataset.name, cfg.model.architecture) == (self.name, arch)

    @pytest.mark.parametrize("arch", ARCHITECTURES)
    def test_the_paper_preset_trains_as_the_research_runs(self, arch) -> None:
        from d3_core.config import resolve_config, to_plain

        training = to_plain(resolve_config(self.name, arch, preset="paper").training)
        assert {key: training[key] for key in self.paper_training} == self.paper_training

    @pytest.mark.parametrize("arch", ARCHITECTURES)
    def test_the_cpu_preset_is_small(self, arch) -> None:
        from d3_core.config import resolve_config

        cfg = resolve_config(self.name, arch, preset="cpu")
        for key, most in self.cpu_limits.items():
            assert cfg.training[key] <= most, (key, cfg.training[key])
        assert cfg.sampling.steps <= self.cpu_sampling_steps


class PublishedOracleConformance(_Dataset):
    """The dataset's oracle against its published layout. Set `name` and:"""

    published_keys: ClassVar[list[tuple[str, tuple[int, ...]]]]
    """The published ``state_dict`` (without the Lightning prefix): (key, shape), in order."""
    parameters: ClassVar[int]
    """The published network's parameter count."""
    recipe: ClassVar[dict[str, Any]]
    """The training recipe's values the package promises."""
    weight_scale: ClassVar[float] = 0.1
    """Standard deviation of the random weights."""
    tolerance: ClassVar[float] = 1e-5
    """Relative tolerance of the prediction against the published forward pass."""
    published_forward: ClassVar[Callable[[dict, Any], Any]]
    """``published_forward(weights, onehot)``: the published forward pass in eval mode, written out
    with functional ops by the package's test (a staticmethod)."""

    def oracle(self) -> Any:
        return self.plugin().load("oracle")

    def published_weights(self, seed: int = 0) -> dict[str, Any]:
        """Random weights for every published key; running variances positive, counts whole."""
        import torch

        generator = torch.Generator().manual_seed(seed)
        weights = {}
        for name, shape in self.published_keys:
            if name.endswith("num_batches_tracked"):
                weights[name] = torch.tensor(1000)
            elif name.endswith("running_var"):
                weights[name] = torch.rand(shape, generator=generator) + 0.5
            else:
                weights[name] = torch.randn(shape, generator=generator) * self.weight_scale
        return weights

    @staticmethod
    def published_file(path: Path, weights: dict[str, Any], prefix: str = "model.") -> Path:
        """A checkpoint as the published training wrote it: Lightning's envelope, prefixed."""
        import torch

        torch.save({"epoch": 40, "global_step": 125_000, "pytorch-lightning_version": "1.9.0",
                    "state_dict": {prefix + k: v for k, v in weights.items()},
                    "hyper_parameters": {"lr": 0.002}}, path)  # fmt: skip
        return path

    def load(self, path: Path) -> Any:
        from d3_core.oracles import load_oracle

        return load_oracle(path, self.oracle())

    def test_the_network_has_the_published_keys_shapes_and_size(self) -> None:
        model = self.oracle().build()
        assert [(k, tuple(v.shape)) for k, v in model.state_dict().items()] == self.published_keys
        assert sum(p.numel() for p in model.parameters()) == self.parameters

    def test_a_published_checkpoint_loads_strictly_and_predicts_as_the_published_forward(
        self, tmp_path
    ) -> None:
        import torch

        from d3_core.oracles import tokens_to_input

        weights = self.published_weights()
        oracle = self.load(self.published_file(tmp_path / "oracle.ckpt", weights))
        length = self.plugin().sequence_length
        tokens = np.random.default_rng(0).integers(0, 4, size=(9, length))
        expected = type(self).published_forward(weights, tokens_to_input(torch.as_tensor(tokens)))
        predicted = oracle.predict(tokens, batch_size=4)
        assert np.allclose(predicted, expected.numpy(), rtol=self.tolerance, atol=1e-5)
        assert not oracle.model.training  # dropout off, BatchNorm on running statistics

    def test_a_checkpoint_under_another_prefix_is_refused(self, tmp_path) -> None:
        path = self.published_file(tmp_path / "o.ckpt", self.published_weights(), prefix="net.")
        with pytest.raises(CheckpointError, match=re.escape("its keys start with 'net.'")):
            self.load(path)

    def test_a_checkpoint_missing_a_layer_is_refused_naming_it(self, tmp_path) -> None:
        weights = self.published_weights()
        dropped = [k for k, _ in self.published_keys if k.endswith("running_var")][-1]
        del weights[dropped]
        with pytest.raises(CheckpointError, match=re.escape(f"missing [{dropped!r}]")):
            self.load(self.published_file(tmp_path / "o.ckpt", weights))

    def test_the_plugin_declares_the_oracle_and_its_recipe(self) -> None:
        from dataclasses import asdict

        oracle, plugin = self.oracle(), self.plugin()
        assert oracle.output_names == plugin.label_names
        recipe = asdict(oracle.recipe)
        assert {key: recipe[key] for key in self.recipe} == self.recipe


class TrainedRunFixtures(_Dataset):
    """One run of a CPU preset (`arch`, Conv by default) on the package's small synthetic file,
    per test class.

    Set `name`; `design_batch` and `steps` are the sampler's batch and steps.

    Every test of a subclass is ``slow``: the run trains for about 2 minutes on 2 cores, which
    over five packages would not fit the quick ``nox``. CI runs the design classes after the
    quick sessions (``nox -s slow -- -k Designs``).
    """

    pytestmark = pytest.mark.slow

    arch: ClassVar[str] = "conv"
    """The architecture whose CPU preset `run` trains: "conv" or "transformer"."""
    design_batch: ClassVar[int] = 128
    steps: ClassVar[int] = 64  # as the CPU presets sample
    oracle_epochs: ClassVar[int] = 10
    """Epochs of the `oracle` fixture's training (the recipe's other settings are kept)."""

    @pytest.fixture(scope="class")
    def data_file(self, tmp_path_factory) -> Path:
        """The small synthetic file (8,000/1,000/1,000 sequences), seed 0."""
        plugin = self.plugin()
        path = tmp_path_factory.mktemp(f"{self.name}-e2e") / f"small{plugin.data_suffix}"
        return plugin.load("synthetic_data")(path, seed=0, size="small")

    @pytest.fixture(scope="class")
    def run(self, data_file, tmp_path_factory) -> tuple[dict[str, Any], Any]:
        """(data splits, loaded model) of `arch`'s CPU preset trained on `data_file`."""
        from d3_core.checkpoints import load_checkpoint
        from d3_core.config import resolve_config
        from d3_core.training.run import RunDir, train

        cfg = resolve_config(self.name, self.arch, preset="cpu",
                             overrides=[f"dataset.data={data_file}"])  # fmt: skip
        result = train(cfg, RunDir(tmp_path_factory.mktemp(f"{self.name}-run")), progress=False)
        splits = self.plugin().load("data_loader")(data_file)
        return splits, load_checkpoint(result.last_checkpoint)

    @pytest.fixture(scope="class")
    def oracle(self, run, tmp_path_factory) -> Any:
        """The dataset's oracle trained on the run's file with its recipe, cut to
        `oracle_epochs` (a `d3_core.oracles.TrainedOracle`)."""
        import torch

        from d3_core.oracles import recipe_with, train_oracle

        splits, _ = run
        spec = self.plugin().load("oracle")
        torch.set_num_threads(2)
        return train_oracle(spec, splits, tmp_path_factory.mktemp(f"{self.name}-oracle"),
                            dataset=self.name, progress=False,
                            recipe=recipe_with(spec.recipe, max_epochs=self.oracle_epochs))  # fmt: skip

    def design(self, loaded: Any, labels: np.ndarray, seed: int, **options: Any) -> np.ndarray:
        """Tokens sampled for ``labels`` as ``d3 sample`` samples them: with the checkpoint's
        classifier-free guidance (``sampling.guidance`` of the preset) unless ``options`` give
        ``guidance``; ``options`` go to `sample_sequences` (guidance, oracle, ...)."""
        from d3_core.diffusion.guidance import resolve_guidance
        from d3_core.generation.sequences import sample_sequences

        if "guidance" not in options:
            options["guidance"], _ = resolve_guidance(loaded.model, loaded.cfg.sampling)
        return sample_sequences(loaded, labels.astype(np.float32), seed=seed, steps=self.steps,
                                batch_size=self.design_batch, progress=False,
                                **options).tokens  # fmt: skip

    def ground_truth(self, tokens: np.ndarray) -> np.ndarray:
        return np.asarray(self.plugin().load("ground_truth")(tokens))


class GlobalLabelDesignConformance(TrainedRunFixtures):
    """Designs for test-split labels follow them better than the baselines (planted rule).

    Set `name`, `shuffled_ratio` and `random_ratio`: the samples' SP-MSE must be below those
    fractions of the shuffled-label and random-sequence baselines'.
    """

    designs: ClassVar[int] = 256
    shuffled_ratio: ClassVar[float]
    random_ratio: ClassVar[float]

    def fidelity(self, run: tuple[dict[str, Any], Any], tokens: np.ndarray | None = None,
                 seed: int = 0) -> dict[str, Any]:  # fmt: skip
        """`conditional_fidelity` of designs for the first test labels, by the planted rule."""
        from d3_core.evaluation.run import conditional_fidelity

        splits, loaded = run
        test = splits["test"]
        real = test.tokens[: self.designs].numpy()
        labels = test.labels[: self.designs].numpy()
        if tokens is None:
            tokens = self.design(loaded, labels, seed=seed)
        return conditional_fidelity(self.ground_truth, real, tokens, labels,
                                    names=self.plugin().label_names, scorer="planted rule")  # fmt: skip

    def guided_fidelity(self, run: tuple[dict[str, Any], Any], oracle: Any,
                        seed: int = 3) -> tuple[dict[str, Any], Any]:  # fmt: skip
        """`fidelity` of designs sampled as ``d3 sample --oracle`` samples them: guided by
        `oracle` (the fixture's trained network) with the preset's ``sampling.oracle_guidance``
        and its classifier-free weight ``sampling.guidance_with_oracle``.

        Returns:
            (the report, the `Guidance` used).
        """
        from d3_core.diffusion.guidance import resolve_guidance
        from d3_core.oracles import load_oracle

        splits, loaded = run
        labels = splits["test"].labels[: self.designs].numpy()
        guide = load_oracle(oracle.checkpoint, self.plugin().load("oracle"))
        guidance, _ = resolve_guidance(loaded.model, loaded.cfg.sampling, has_oracle=True)
        tokens = self.design(loaded, labels, seed=seed, guidance=guidance, oracle=guide)
        return self.fidelity(run, tokens), guidance

    def test_samples_follow_their_labels_better_than_shuffled_real_sequences(self, run) -> None:
        mse = self.fidelity(run)["sp_mse"]
        print(f"{self.name} planted-rule SP-MSE {mse}")
        assert mse["samples"] < self.shuffled_ratio * mse["baseline_shuffled_labels"], mse
        assert mse["samples"] < self.random_ratio * mse["baseline_random_sequences"], mse
