"""The DeepSTARR oracle: SPEC §12's layer names and sizes, strict loading, the published forward."""

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from d3_core.errors import CheckpointError
from d3_core.oracles.oracle import load_oracle, tokens_to_input
from d3_deepstarr.oracle import ORACLE, DeepSTARROracle

# The published checkpoint's state_dict, as SPEC's oracle-state-dict-keys.txt lists it (under the
# Lightning prefix "model.").
SPEC_KEYS = [
    ("conv1_filters", (256, 4, 7)), ("conv2_filters", (60, 256, 3)),
    ("conv3_filters", (60, 60, 5)), ("conv4_filters", (120, 60, 3)),
    *[(f"batchnorm{i}.{k}", shape)
      for i, width in ((1, 256), (2, 60), (3, 60), (4, 120))
      for k, shape in (("weight", (width,)), ("bias", (width,)), ("running_mean", (width,)),
                       ("running_var", (width,)), ("num_batches_tracked", ()))],
    ("fc5.weight", (256, 1800)), ("fc5.bias", (256,)),
    *[(f"batchnorm5.{k}", s) for k, s in (("weight", (256,)), ("bias", (256,)),
      ("running_mean", (256,)), ("running_var", (256,)), ("num_batches_tracked", ()))],
    ("fc6.weight", (256, 256)), ("fc6.bias", (256,)),
    *[(f"batchnorm6.{k}", s) for k, s in (("weight", (256,)), ("bias", (256,)),
      ("running_mean", (256,)), ("running_var", (256,)), ("num_batches_tracked", ()))],
    ("fc7.weight", (2, 256)), ("fc7.bias", (2,)),
]  # fmt: skip


def _spec_weights(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights for every key of the list; running variances positive, counts integer."""
    generator = torch.Generator().manual_seed(seed)
    weights = {}
    for name, shape in SPEC_KEYS:
        if name.endswith("num_batches_tracked"):
            weights[name] = torch.tensor(1000)
        elif name.endswith("running_var"):
            weights[name] = torch.rand(shape, generator=generator) + 0.5
        else:
            weights[name] = torch.randn(shape, generator=generator) * 0.1
    return weights


def _published_file(path, weights, prefix="model."):
    torch.save({"epoch": 40, "global_step": 125_000, "pytorch-lightning_version": "1.9.0",
                "state_dict": {prefix + k: v for k, v in weights.items()},
                "hyper_parameters": {"lr": 0.002, "input_h5_file": "DeepSTARR_data.h5"}},
               path)  # fmt: skip
    return path


def _spec_forward(w: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """SPEC §12 written out with functional ops (eval mode: BatchNorm uses running stats)."""

    def bn(h, i):
        p = f"batchnorm{i}."
        return F.batch_norm(h, w[p + "running_mean"], w[p + "running_var"], w[p + "weight"],
                            w[p + "bias"], training=False, eps=1e-5)  # fmt: skip

    for i, kernel in enumerate((7, 3, 5, 3), start=1):
        h = F.conv1d(x, w[f"conv{i}_filters"], padding=kernel // 2)  # "same", no bias
        x = F.max_pool1d(F.relu(bn(h, i)), 2)
    x = x.reshape(len(x), -1)  # (N, 120 * 15)
    x = F.relu(bn(x @ w["fc5.weight"].T + w["fc5.bias"], 5))
    x = F.relu(bn(x @ w["fc6.weight"].T + w["fc6.bias"], 6))
    return x @ w["fc7.weight"].T + w["fc7.bias"]


def test_the_network_has_the_published_keys_shapes_and_size():
    model = DeepSTARROracle()
    assert [(k, tuple(v.shape)) for k, v in model.state_dict().items()] == SPEC_KEYS
    assert sum(p.numel() for p in model.parameters()) == 622_226


def test_a_published_checkpoint_loads_strictly_and_predicts_as_the_spec_forward(tmp_path):
    weights = _spec_weights()
    oracle = load_oracle(_published_file(tmp_path / "DeepSTARR.ckpt", weights), ORACLE)
    tokens = np.random.default_rng(0).integers(0, 4, size=(9, 249))
    expected = _spec_forward(weights, tokens_to_input(torch.as_tensor(tokens))).numpy()
    assert np.allclose(oracle.predict(tokens, batch_size=4), expected, rtol=1e-5, atol=1e-5)
    assert not oracle.model.training  # dropout off, BatchNorm on running statistics


def test_a_checkpoint_under_another_prefix_is_refused(tmp_path):
    path = _published_file(tmp_path / "o.ckpt", _spec_weights(), prefix="net.")
    with pytest.raises(CheckpointError, match=re.escape("its keys start with 'net.'")):
        load_oracle(path, ORACLE)


def test_a_checkpoint_of_another_shape_is_refused_naming_the_key(tmp_path):
    weights = _spec_weights()
    weights["fc7.weight"] = torch.zeros(3, 256)  # a three-output (MPRA-like) head
    weights["fc7.bias"] = torch.zeros(3)
    path = _published_file(tmp_path / "o.ckpt", weights)
    message = (
        "shape mismatches ['fc7.weight: checkpoint (3, 256) vs model (2, 256)', "
        "'fc7.bias: checkpoint (3,) vs model (2,)']"
    )
    with pytest.raises(CheckpointError, match=re.escape(message)):
        load_oracle(path, ORACLE)


def test_a_checkpoint_missing_a_layer_is_refused_naming_it(tmp_path):
    weights = _spec_weights()
    del weights["batchnorm6.running_var"]
    with pytest.raises(CheckpointError, match=re.escape("missing ['batchnorm6.running_var']")):
        load_oracle(_published_file(tmp_path / "o.ckpt", weights), ORACLE)


def test_the_plugin_declares_the_oracle():
    from d3_core.registry import load_dataset_plugin

    plugin = load_dataset_plugin("deepstarr")
    assert plugin.load("oracle") is ORACLE
    assert ORACLE.output_names == plugin.label_names
    recipe = ORACLE.recipe  # SPEC §12's published recipe
    assert (recipe.lr, recipe.weight_decay, recipe.batch_size) == (2e-3, 1e-6, 128)
    assert (recipe.plateau_factor, recipe.plateau_patience, recipe.early_stop_patience) == (
        0.1, 10, 10,
    )  # fmt: skip
