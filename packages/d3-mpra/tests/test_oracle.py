"""The MPRA oracle: the published layer names and sizes, strict loading, the published forward
pass (d3-core's conformance suite with this package's key table and forward), the output width
read from the weights, and the label names an oracle d3 trains records."""

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from d3_core.errors import CheckpointError
from d3_core.oracles import load_oracle
from d3_core.testing.package_conformance import PublishedOracleConformance
from d3_mpra.oracle import ORACLE, MPRAOracle


def _bn(prefix: str, width: int) -> list:
    return [(f"{prefix}.{k}", s) for k, s in (("weight", (width,)), ("bias", (width,)),
            ("running_mean", (width,)), ("running_var", (width,)), ("num_batches_tracked", ()))]  # fmt: skip


def _block(prefix: str, width: int, dilations: int) -> list:
    keys = [(f"{prefix}.block.0.weight", (width, width, 3)), (f"{prefix}.block.0.bias", (width,)),
            *_bn(f"{prefix}.block.1", width)]  # fmt: skip
    for i in range(dilations):
        keys += [(f"{prefix}.block.{4 * i + 4}.weight", (width, width, 3)),
                 *_bn(f"{prefix}.block.{4 * i + 5}", width)]  # fmt: skip
    return keys


# The published key list of the MPRA oracle (under the Lightning prefix "model.").
PUBLISHED_KEYS = [
    ("conv1.0.weight", (196, 4, 15)), ("conv1.0.bias", (196,)), *_bn("conv1.1", 196),
    *_block("res1.0", 196, 4),
    ("conv2.0.weight", (256, 196, 5)), ("conv2.0.bias", (256,)), *_bn("conv2.1", 256),
    *_block("res2.0", 256, 3),
    ("conv3.0.weight", (256, 256, 3)), ("conv3.0.bias", (256,)), *_bn("conv3.1", 256),
    *_block("res3.0", 256, 1),
    ("fc4.weight", (512, 1536)), ("fc4.bias", (512,)), *_bn("batchnorm4", 512),
    ("fc5.weight", (256, 512)), ("fc5.bias", (256,)), *_bn("batchnorm5", 256),
    ("fc6.weight", (3, 256)), ("fc6.bias", (3,)),
]  # fmt: skip


def _published_forward(w, x):
    """docs/oracles.md with functional ops, eval mode."""

    def bn(h, p):
        return F.batch_norm(h, w[p + ".running_mean"], w[p + ".running_var"], w[p + ".weight"],
                            w[p + ".bias"], training=False, eps=1e-5)  # fmt: skip

    def conv(h, p, dilation=1, bias=True):
        weight = w[p + ".weight"]
        pad = dilation * (weight.shape[-1] // 2)
        return F.conv1d(h, weight, w[p + ".bias"] if bias else None, padding=pad,
                        dilation=dilation)  # fmt: skip

    def residual(h, p, dilations, pool):
        y = bn(conv(h, f"{p}.block.0"), f"{p}.block.1")
        for i, d in enumerate(dilations):
            y = bn(
                conv(F.relu(y), f"{p}.block.{4 * i + 4}", d, bias=False), f"{p}.block.{4 * i + 5}"
            )
        return F.max_pool1d(F.relu(y + h), pool)

    x = F.elu(bn(conv(x, "conv1.0"), "conv1.1"))
    x = residual(x, "res1.0", (1, 2, 4, 8), 4)
    x = F.relu(bn(conv(x, "conv2.0"), "conv2.1"))
    x = residual(x, "res2.0", (1, 2, 4), 4)
    x = F.relu(bn(conv(x, "conv3.0"), "conv3.1"))
    x = residual(x, "res3.0", (1,), 2).reshape(len(x), -1)
    x = F.relu(bn(x @ w["fc4.weight"].T + w["fc4.bias"], "batchnorm4"))
    x = F.relu(bn(x @ w["fc5.weight"].T + w["fc5.bias"], "batchnorm5"))
    return x @ w["fc6.weight"].T + w["fc6.bias"]


class TestMPRAOracle(PublishedOracleConformance):
    name = "mpra"
    published_keys = PUBLISHED_KEYS
    parameters = 3_143_579
    published_forward = staticmethod(_published_forward)
    weight_scale = 0.05
    tolerance = 1e-4
    recipe = {"lr": 1e-3, "weight_decay": 1e-6, "batch_size": 128, "plateau_patience": 5}  # noqa: RUF012

    def published_weights(self, seed: int = 0, outputs: int = 3) -> dict[str, torch.Tensor]:
        """The published weights with an output head of ``outputs`` rows."""
        weights = super().published_weights(seed)
        generator = torch.Generator().manual_seed(seed + 1)
        for key in ("fc6.weight", "fc6.bias"):
            shape = (outputs, *weights[key].shape[1:])
            weights[key] = torch.randn(shape, generator=generator) * self.weight_scale
        return weights

    def test_the_output_width_is_read_from_the_weights(self, tmp_path):
        path = self.published_file(tmp_path / "two.ckpt", self.published_weights(outputs=2))
        assert load_oracle(path, ORACLE).predict(np.zeros((4, 200), dtype=np.int64)).shape == (4, 2)

    def test_a_checkpoint_for_another_length_is_refused_naming_the_key(self, tmp_path):
        weights = self.published_weights()
        weights["fc4.weight"] = torch.zeros(512, 1024)  # a network for another length
        message = "shape mismatches ['fc4.weight: checkpoint (512, 1024) vs model (512, 1536)']"
        with pytest.raises(CheckpointError, match=re.escape(message)):
            load_oracle(self.published_file(tmp_path / "b.ckpt", weights), ORACLE)


def test_an_oracle_trained_by_d3_carries_the_label_names_of_its_data_file(tiny_file, tmp_path):
    import h5py

    from d3_core.oracles import recipe_with, train_oracle
    from d3_mpra.data import load_data

    names = ["K562 (rep 2)", "HepG2 (rep 2)", "SK-N-SH (rep 2)"]
    data = tmp_path / "named.h5"
    data.write_bytes(tiny_file.read_bytes())
    with h5py.File(data, "a") as out:
        out.attrs["label_names"] = names
    result = train_oracle(ORACLE, load_data(data), tmp_path / "oracle", dataset="mpra",
                          recipe=recipe_with(ORACLE.recipe, max_epochs=1), progress=False)  # fmt: skip
    assert list(result.test_pearson) == names
    assert list(load_oracle(result.checkpoint, ORACLE).output_names) == names
    # A published checkpoint names nothing: the declared names.
    weights = {f"model.{k}": v for k, v in MPRAOracle().state_dict().items()}
    torch.save({"state_dict": weights}, tmp_path / "published.ckpt")
    assert load_oracle(tmp_path / "published.ckpt", ORACLE).output_names == ORACLE.output_names
