"""The DeepSTARR oracle: the published layer names and sizes, strict loading, the published
forward pass (d3-core's conformance suite with this package's key table and forward)."""

import re

import pytest
import torch
import torch.nn.functional as F

from d3_core.errors import CheckpointError
from d3_core.oracles import load_oracle
from d3_core.testing.package_conformance import PublishedOracleConformance
from d3_deepstarr.oracle import ORACLE

# The published checkpoint's state_dict, as the published key list gives it (under the
# Lightning prefix "model.").
PUBLISHED_KEYS = [
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


def _published_forward(w: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """docs/oracles.md written out with functional ops (eval mode: BatchNorm uses running stats)."""

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


class TestDeepSTARROracle(PublishedOracleConformance):
    name = "deepstarr"
    published_keys = PUBLISHED_KEYS
    parameters = 622_226
    published_forward = staticmethod(_published_forward)
    recipe = {  # noqa: RUF012 (docs/oracles.md's published recipe)
        "lr": 2e-3,
        "weight_decay": 1e-6,
        "batch_size": 128,
        "plateau_factor": 0.1,
        "plateau_patience": 10,
        "early_stop_patience": 10,
    }

    def test_a_checkpoint_of_another_shape_is_refused_naming_the_key(self, tmp_path):
        weights = self.published_weights()
        weights["fc7.weight"] = torch.zeros(3, 256)  # a three-output (MPRA-like) head
        weights["fc7.bias"] = torch.zeros(3)
        path = self.published_file(tmp_path / "o.ckpt", weights)
        message = (
            "shape mismatches ['fc7.weight: checkpoint (3, 256) vs model (2, 256)', "
            "'fc7.bias: checkpoint (3,) vs model (2,)']"
        )
        with pytest.raises(CheckpointError, match=re.escape(message)):
            load_oracle(path, ORACLE)
