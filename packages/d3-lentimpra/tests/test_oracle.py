"""The lentiMPRA oracle, LegNet: the published key table and size (as d3-dna's own LegNet lists
them), strict loading, the forward pass written out from docs/oracles.md, the same predictions as
d3-dna's LegNet on the same weights, refusals naming the key at fault, and an oracle that
``d3 oracle train --dataset lentimpra`` fits to the synthetic data.

The fixtures (``legnet-keys.json``, ``legnet-tiny.*``) were written by d3-dna's vendored LegNet
and by Lightning (``make_d3dna_fixtures.py``), not by d3.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from d3_core.errors import CheckpointError
from d3_core.oracles import load_oracle
from d3_core.testing.package_conformance import PublishedOracleConformance
from d3_lentimpra.oracle import ORACLE, LegNetOracle, legnet_sizes

FIXTURES = Path(__file__).parent / "fixtures"
KEYS = json.loads((FIXTURES / "legnet-keys.json").read_text())
TINY = FIXTURES / "legnet-tiny.ckpt"


def _published_forward(w, x):
    """docs/oracles.md#lentimpra-oracle-legnet with functional ops, eval mode."""

    def bn(h, p):
        return F.batch_norm(h, w[p + ".running_mean"], w[p + ".running_var"], w[p + ".weight"],
                            w[p + ".bias"], training=False, eps=1e-5)  # fmt: skip

    def conv(h, p, groups=1):
        weight = w[p + ".weight"]
        return F.conv1d(h, weight, w.get(p + ".bias"), padding=weight.shape[-1] // 2,
                        groups=groups)  # fmt: skip

    def linear(h, p):
        return h @ w[p + ".weight"].T + w[p + ".bias"]

    x = F.silu(bn(conv(x, "stem.block.0"), "stem.block.1"))
    for i in range(4):
        p = f"main.{i}.0.fn.block"
        y = F.silu(bn(conv(x, p + ".0"), p + ".1"))
        y = F.silu(bn(conv(y, p + ".3", groups=y.shape[1]), p + ".4"))
        gate = torch.sigmoid(linear(F.silu(linear(y.mean(-1), p + ".6.fc.0")), p + ".6.fc.2"))
        y = F.silu(bn(conv(y * gate[..., None], p + ".7"), p + ".8"))
        x = F.silu(bn(conv(torch.cat([y, x], 1), f"main.{i}.1.block.0"), f"main.{i}.1.block.1"))
        x = F.max_pool1d(x, 2)
    x = conv(bn(x, "mapper.block.0"), "mapper.block.1").mean(-1)
    return linear(F.silu(bn(linear(x, "head.0"), "head.1")), "head.3")


class TestLegNetOracle(PublishedOracleConformance):
    name = "lentimpra"
    published_keys = [(k, tuple(s)) for k, s in KEYS["k562"]["keys"]]  # noqa: RUF012
    parameters = KEYS["k562"]["parameters"]
    published_forward = staticmethod(_published_forward)
    # At 0.1 every sequence gets the same output to 5 digits; at 0.3 they spread (s.d. 0.9 on ~50).
    weight_scale = 0.3
    tolerance = 1e-4
    recipe = {"lr": 2e-3, "batch_size": 128, "standardise_targets": True}  # noqa: RUF012


def test_the_k562_and_hepg2_oracles_share_one_published_layout():
    assert KEYS["k562"] == KEYS["hepg2"]
    assert KEYS["k562"]["parameters"] == 1_322_465 and KEYS["k562"]["input_length"] == 230


def test_ours_predicts_as_d3dnas_legnet_on_the_same_weights():
    stored = np.load(FIXTURES / "legnet-tiny-output.npz")
    oracle = load_oracle(TINY, ORACLE)
    predicted = oracle.predict(stored["tokens"], batch_size=5)
    error = float(np.abs(predicted - stored["prediction"]).max())
    print(f"LegNet vs d3-dna: max abs error {error:.3g} over {predicted.size} predictions")
    assert predicted.shape == (12, 1)
    assert error <= 1e-6
    assert stored["prediction"].std() > 0.03  # the sequences are told apart: not a trivial match
    # the sizes d3-dna's config gave (legnet-tiny.json) were read from the weights
    config = json.loads((FIXTURES / "legnet-tiny.json").read_text())
    sizes = legnet_sizes({k.removeprefix("model."): v for k, v in _tiny_weights().items()})
    assert sizes["block_channels"] == tuple(config["ef_block_sizes"])
    assert (sizes["stem_channels"], sizes["stem_kernel"], sizes["kernel"], sizes["expansion"]) == (
        config["stem_ch"], config["stem_ks"], config["ef_ks"], config["resize_factor"])  # fmt: skip


def _tiny_weights() -> dict[str, torch.Tensor]:
    return torch.load(TINY, weights_only=True)["state_dict"]


def _refusal(tmp_path, weights) -> str:
    torch.save({"state_dict": weights}, tmp_path / "bad.ckpt")
    with pytest.raises(CheckpointError) as caught:
        load_oracle(tmp_path / "bad.ckpt", ORACLE)
    return str(caught.value)


def test_a_checkpoint_missing_a_key_is_refused_naming_it(tmp_path):
    weights = _tiny_weights()
    del weights["model.main.2.0.fn.block.6.fc.0.bias"]
    message = _refusal(tmp_path, weights)
    assert "missing ['main.2.0.fn.block.6.fc.0.bias']; unexpected none" in message


def test_a_checkpoint_with_an_extra_key_is_refused_naming_it(tmp_path):
    weights = _tiny_weights()
    weights["model.main.2.0.fn.block.6.fc.1.weight"] = torch.zeros(12, 12)
    message = _refusal(tmp_path, weights)
    assert "missing none; unexpected ['main.2.0.fn.block.6.fc.1.weight']" in message


def test_a_misshapen_key_is_refused_with_both_shapes(tmp_path):
    weights = _tiny_weights()
    weights["model.main.1.0.fn.block.3.weight"] = torch.zeros(32, 1, 7)  # kernel 7, not 9
    message = _refusal(tmp_path, weights)
    expected = (
        "shape mismatches ['main.1.0.fn.block.3.weight: checkpoint (32, 1, 7) vs model (32, 1, 9)']"
    )
    assert expected in message


def test_a_stem_of_another_input_width_is_refused_saying_what_is_supported(tmp_path):
    weights = _tiny_weights()
    weights["model.stem.block.0.weight"] = torch.zeros(8, 3, 11)
    message = _refusal(tmp_path, weights)
    assert "stem takes 3 input channels (stem.block.0.weight); only 4 (one-hot) or 5" in message


def test_a_reverse_channel_network_reads_the_forward_strand_as_zeros():
    torch.manual_seed(0)
    five = LegNetOracle(stem_channels=8, block_channels=(8, 8), reverse_channel=True).eval()
    four = LegNetOracle(stem_channels=8, block_channels=(8, 8)).eval()
    weights = five.state_dict()
    assert legnet_sizes(weights)["reverse_channel"] is True
    weights["stem.block.0.weight"] = weights["stem.block.0.weight"][:, :4]  # the flag's column
    four.load_state_dict(weights)
    x = F.one_hot(torch.randint(0, 4, (3, 230)), 4).permute(0, 2, 1).float()
    with torch.no_grad():
        assert torch.allclose(five(x), four(x), atol=1e-6)


@pytest.mark.parametrize(
    ("name", "cell"),
    [("Oracle_MPRA_K562.ckpt", "K562"), ("Oracle_MPRA_HepG2.ckpt", "HepG2"), ("mine.ckpt", "K562")],
)
def test_a_published_files_output_is_named_after_the_cell_in_its_name(tmp_path, name, cell):
    path = tmp_path / name
    path.write_bytes(TINY.read_bytes())
    assert load_oracle(path, ORACLE).output_names == (cell,)


def test_an_oracle_trained_by_d3_keeps_the_label_name_it_learned(tmp_path):
    from d3_core.oracles import recipe_with, train_oracle
    from d3_lentimpra.data import load_data
    from d3_lentimpra.synthetic import write_synthetic

    data = write_synthetic(tmp_path / "tiny.h5", seed=0, size="tiny")
    tiny = recipe_with(ORACLE.recipe, max_epochs=1, batch_size=64)
    result = train_oracle(ORACLE, load_data(data), tmp_path / "oracle", dataset="lentimpra",
                          output_names=("HepG2",), recipe=tiny, progress=False)  # fmt: skip
    published_name = tmp_path / "Oracle_MPRA_K562.ckpt"  # a d3 file's names win over its name
    published_name.write_bytes(result.checkpoint.read_bytes())
    assert load_oracle(published_name, ORACLE).output_names == ("HepG2",)


def _composition(tokens: np.ndarray) -> np.ndarray:
    """Mono- and dinucleotide frequencies (N, 20) and a constant: the trivial baseline's input."""
    mono = np.stack([(tokens == b).mean(1) for b in range(4)], 1)
    pairs = tokens[:, :-1] * 4 + tokens[:, 1:]
    di = np.stack([(pairs == p).mean(1) for p in range(16)], 1)
    return np.concatenate([mono, di, np.ones((len(tokens), 1))], 1)


@pytest.mark.slow
def test_an_oracle_trained_on_the_synthetic_data_beats_a_composition_baseline(tmp_path):
    """``d3 oracle train --dataset lentimpra`` on the small synthetic file (the recipe, fewer
    epochs): test Pearson well above a least-squares fit to nucleotide composition."""
    from d3_core.oracles import recipe_with, train_oracle
    from d3_core.registry import load_dataset_plugin

    plugin = load_dataset_plugin("lentimpra")
    path = plugin.load("synthetic_data")(tmp_path / f"small{plugin.data_suffix}", seed=0,
                                         size="small")  # fmt: skip
    splits = plugin.load("load_data")(path)
    result = train_oracle(ORACLE, splits, tmp_path / "oracle", dataset="lentimpra",
                          recipe=recipe_with(ORACLE.recipe, max_epochs=8), progress=False)  # fmt: skip
    ((name, pearson),) = result.test_pearson.items()

    def xy(split):
        data = splits[split]  # a TokenDataset: tokens (N, L) uint8, labels (N, 1)
        return _composition(data.tokens.long().numpy()), data.labels.double().numpy()[:, 0]

    (x_train, y_train), (x_test, y_test) = xy("train"), xy("test")
    coef, *_ = np.linalg.lstsq(x_train, y_train, rcond=None)
    baseline = float(np.corrcoef(x_test @ coef, y_test)[0, 1])
    print(f"LegNet test Pearson {pearson:.3f} ({name}); composition baseline {baseline:.3f}")
    assert pearson > baseline + 0.2 and pearson > 0.6, (pearson, baseline)
