"""Tests of the Sei oracle: spline basis, architecture, padding, names, strict loading, readout.

No test needs the real weights: a reduced-width Sei (channels 8/12/16, 30 outputs) is written in
the published checkpoint layout and read back.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
import torch

from d3_core.errors import CheckpointError, D3ConfigError, D3InputError
from d3_promoter.sei import (
    Sei,
    SeiTarget,
    StrandAveraged,
    assay_indices,
    bspline_basis,
    load_sei,
    pad_for_sei,
    read_sei_names,
)

SMALL = {"channels": (8, 12, 16), "n_targets": 30, "spline_df": 16, "sequence_length": 4096}
ASSAYS = ("H3K4me3", "DNase", "CTCF", "H3K27ac", "H3K4me1")  # every fifth output is H3K4me3
H3K4ME3 = np.arange(0, 30, 5)


def _names(n: int = 30, assays: tuple[str, ...] = ASSAYS) -> str:
    return "".join(f"Cell{i % 7}|{assays[i % len(assays)]}|ID:{1000 + i}|x\n" for i in range(n))


def _onehot(tokens: torch.Tensor) -> torch.Tensor:
    """(N, L) tokens → (N, 4, L) float, written independently of the code under test."""
    return torch.nn.functional.one_hot(tokens, 4).permute(0, 2, 1).float()


@pytest.fixture(scope="module")
def small_sei() -> Sei:
    torch.manual_seed(0)
    return Sei(**SMALL).eval()


def _write(
    directory: Path, model: Sei, prefix: str = "module.model.", edit=None, names: str | None = None
) -> Path:
    """Writes `model` as ``best.sei.model.pth.tar`` (+ ``target.sei.names``) in the real layout."""
    state = {prefix + k: v.clone() for k, v in model.state_dict().items()}
    if edit is not None:
        edit(state)
    path = directory / "best.sei.model.pth.tar"
    torch.save({"epoch": 3, "state_dict": state}, path)
    (directory / "target.sei.names").write_text(_names() if names is None else names)
    return path


# -- the spline basis ---------------------------------------------------------------------------


def _cox_de_boor(knots: np.ndarray, i: int, degree: int, x: float) -> float:
    """B-spline i of `degree` at x by the Cox–de Boor recursion (half-open intervals)."""
    if degree == 0:
        return float(knots[i] <= x < knots[i + 1])
    value = 0.0
    if knots[i + degree] > knots[i]:
        left = (x - knots[i]) / (knots[i + degree] - knots[i])
        value += left * _cox_de_boor(knots, i, degree - 1, x)
    if knots[i + degree + 1] > knots[i + 1]:
        right = (knots[i + degree + 1] - x) / (knots[i + degree + 1] - knots[i + 1])
        value += right * _cox_de_boor(knots, i + 1, degree - 1, x)
    return value


def test_the_basis_is_the_cubic_bspline_basis_of_sei_with_rows_summing_to_one():
    basis = bspline_basis(256, 16)
    assert basis.shape == (256, 16) and basis.dtype == torch.float32
    assert torch.allclose(basis.sum(1), torch.ones(256), atol=1e-5)
    assert (basis >= 0).all()
    # Interior knots at 12 evenly spaced percentiles of 0..255 (linear interpolation: 255 q).
    knots = np.concatenate([[0.0] * 4, 255 * np.linspace(0, 1, 14)[1:-1], [255.0] * 4])
    for x in (0, 1, 17, 100, 128, 200, 254):
        expected = [_cox_de_boor(knots, i, 3, float(x)) for i in range(16)]
        np.testing.assert_allclose(basis[x].numpy(), expected, atol=1e-6)
    # The last position is the limit from the left: only the last function, with value 1.
    np.testing.assert_allclose(basis[255].numpy(), np.eye(16)[15], atol=1e-6)


def test_the_basis_is_a_buffer_that_is_not_in_the_state_dict(small_sei):
    buffers = dict(small_sei.named_buffers())
    assert torch.equal(buffers["spline_tr.1.basis"], bspline_basis(256, 16))
    assert not any("basis" in key for key in small_sei.state_dict())


def test_a_basis_with_too_few_functions_is_refused():
    with pytest.raises(D3ConfigError, match=r"df >= 4; got n=256, df=3"):
        bspline_basis(256, 3)


# -- the architecture ---------------------------------------------------------------------------


def _published_keys() -> list[str]:
    layers = ["lconv1.0", "lconv1.1", "conv1.0", "conv1.2", "lconv2.2", "lconv2.3"]
    layers += ["conv2.1", "conv2.3", "lconv3.2", "lconv3.3", "conv3.1", "conv3.3"]
    layers += [f"dconv{i}.1" for i in range(1, 6)] + ["classifier.0", "classifier.2"]
    return [f"{layer}.{kind}" for layer in layers for kind in ("weight", "bias")]


def test_the_full_sei_on_the_meta_device_has_the_published_size_and_key_names():
    with torch.device("meta"):
        model = Sei()
    assert all(p.is_meta for p in model.parameters())  # nothing of the 3.6 GB allocated
    assert sum(p.numel() for p in model.parameters()) == 889_979_983
    keys = list(model.state_dict())
    assert keys[:3] == ["lconv1.0.weight", "lconv1.0.bias", "lconv1.1.weight"]
    assert keys[-1] == "classifier.2.bias"
    assert keys == _published_keys()
    assert model.state_dict()["classifier.0.weight"].shape == (21907, 15360)
    assert model.spline_tr[1].basis.shape == (256, 16)


def test_the_network_maps_4096_positions_to_one_probability_per_output(small_sei):
    x = _onehot(torch.randint(0, 4, (2, 4096), generator=torch.Generator().manual_seed(1)))
    with torch.no_grad():
        out = small_sei(x)
    assert out.shape == (2, 30)
    assert ((out > 0) & (out < 1)).all()


def _reference_forward(w: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Sei's forward pass written out with torch.nn.functional from the weights (eval mode)."""
    F = torch.nn.functional

    def conv(h, name, dilation=1):
        weight = w[f"{name}.weight"]
        pad = dilation * (weight.shape[-1] - 1) // 2
        return F.conv1d(h, weight, w[f"{name}.bias"], padding=pad, dilation=dilation)

    lout1 = conv(conv(x, "lconv1.0"), "lconv1.1")
    out1 = F.relu(conv(F.relu(conv(lout1, "conv1.0")), "conv1.2"))
    lout2 = conv(conv(F.max_pool1d(out1 + lout1, 4), "lconv2.2"), "lconv2.3")
    out2 = F.relu(conv(F.relu(conv(lout2, "conv2.1")), "conv2.3"))
    lout3 = conv(conv(F.max_pool1d(out2 + lout2, 4), "lconv3.2"), "lconv3.3")
    out3 = F.relu(conv(F.relu(conv(lout3, "conv3.1")), "conv3.3"))
    out = out3 + F.relu(conv(out3 + lout3, "dconv1.1", 2))
    for i, dilation in zip(range(2, 6), (4, 8, 16, 25), strict=True):
        out = out + F.relu(conv(out, f"dconv{i}.1", dilation))
    splined = torch.einsum("ncl,lk->nck", out, bspline_basis(out.shape[-1], 16))
    hidden = F.relu(
        F.linear(splined.reshape(len(x), -1), w["classifier.0.weight"], w["classifier.0.bias"])
    )
    return torch.sigmoid(F.linear(hidden, w["classifier.2.weight"], w["classifier.2.bias"]))


def test_the_forward_pass_is_seis_written_out_by_hand(small_sei):
    x = _onehot(torch.randint(0, 4, (2, 4096), generator=torch.Generator().manual_seed(6)))
    with torch.no_grad():
        expected = _reference_forward(small_sei.state_dict(), x)
        got = small_sei(x)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def test_an_input_of_the_wrong_length_and_a_bad_size_are_refused(small_sei):
    with pytest.raises(D3InputError, match=r"one-hot \(N, 4, 4096\); got \(1, 4, 1024\)"):
        small_sei(torch.zeros(1, 4, 1024))
    with pytest.raises(D3ConfigError, match=r"multiple of 16 of at least 32 .*; got 1000"):
        Sei(**{**SMALL, "sequence_length": 1000})
    with pytest.raises(D3ConfigError, match=r"three positive channel widths.*\(8, 12\)"):
        Sei(**{**SMALL, "channels": (8, 12)})


def test_the_strand_average_is_the_same_for_a_sequence_and_its_reverse_complement(small_sei):
    tokens = torch.randint(0, 4, (3, 4096), generator=torch.Generator().manual_seed(2))
    reverse_complement = 3 - tokens.flip(1)  # A↔T, C↔G in A, C, G, T order, then reversed
    averaged = StrandAveraged(small_sei).eval()
    with torch.no_grad():
        forward = averaged(_onehot(tokens))
        backward = averaged(_onehot(reverse_complement))
        by_hand = (small_sei(_onehot(tokens)) + small_sei(_onehot(reverse_complement))) / 2
    torch.testing.assert_close(forward, backward, rtol=0, atol=1e-6)
    torch.testing.assert_close(forward, by_hand, rtol=0, atol=1e-6)


# -- padding ------------------------------------------------------------------------------------


def test_padding_centres_a_1024_bp_sequence_with_quarter_flanks():
    onehot = _onehot(torch.randint(0, 4, (2, 1024), generator=torch.Generator().manual_seed(3)))
    padded = pad_for_sei(onehot)
    assert padded.shape == (2, 4, 4096)
    assert torch.equal(padded[:, :, 1536:2560], onehot)
    assert (padded[:, :, :1536] == 0.25).all() and (padded[:, :, 2560:] == 0.25).all()
    assert onehot.shape == (2, 4, 1024)  # the input is not changed


@pytest.mark.parametrize("length", [4100, 1023])
def test_padding_refuses_a_longer_sequence_or_an_odd_difference(length):
    with pytest.raises(D3InputError, match=f"cannot centre {length} bp in 4096 positions"):
        pad_for_sei(torch.zeros(1, 4, length))


def test_padding_refuses_what_is_not_one_hot():
    with pytest.raises(D3InputError, match=r"one-hot \(N, 4, L\); got \(1, 1024\)"):
        pad_for_sei(torch.zeros(1, 1024))


# -- output names -------------------------------------------------------------------------------


def test_names_are_read_in_order_with_the_assay_as_second_field(tmp_path):
    path = tmp_path / "target.sei.names"
    path.write_text("HepG2 | H3K4me3 | ID:1\nK562|DNase|ID:2\nGM12878|H3K4me3|ID:3\n\n")
    names = read_sei_names(path, n_outputs=3)
    assert names[0] == SeiTarget(context="HepG2", assay="H3K4me3", name="HepG2 | H3K4me3 | ID:1")
    assert [t.assay for t in names] == ["H3K4me3", "DNase", "H3K4me3"]
    assert assay_indices(names).tolist() == [0, 2]
    assert assay_indices(names, "DNase").tolist() == [1]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("\n\n", "is empty; expected one line per output"),
        ("HepG2|H3K4me3\nK562\n", r"line 2: 'K562' has no second '\|'-separated field"),
        ("HepG2|H3K4me3\nK562| |ID:2\n", "line 2: .* has no second"),
    ],
)
def test_a_names_file_that_is_empty_or_lacks_an_assay_is_refused(tmp_path, text, match):
    path = tmp_path / "target.sei.names"
    path.write_text(text)
    with pytest.raises(D3InputError, match=match):
        read_sei_names(path)


def test_a_missing_names_file_and_a_readout_that_matches_nothing_are_refused(tmp_path):
    with pytest.raises(D3InputError, match=r"names file .*nowhere\.names' does not exist"):
        read_sei_names(tmp_path / "nowhere.names")
    names = [SeiTarget("HepG2", "DNase", "HepG2|DNase"), SeiTarget("K562", "CTCF", "K562|CTCF")]
    with pytest.raises(D3InputError, match=r"'H3K4me3'; the 2 names hold 2 assays.*'DNase'"):
        assay_indices(names)


# -- loading ------------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["module.model.", "model."])
def test_a_checkpoint_in_the_published_layout_loads_strictly_and_reproduces_the_network(
    tmp_path, small_sei, prefix
):
    oracle = load_sei(_write(tmp_path, small_sei, prefix))
    x = _onehot(torch.randint(0, 4, (2, 4096), generator=torch.Generator().manual_seed(4)))
    with torch.no_grad():
        expected = StrandAveraged(small_sei).eval()(x)
        got = oracle.model(x)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    assert not oracle.model.training
    assert next(iter(oracle.model.state_dict())) == "model.lconv1.0.weight"
    assert oracle.readout_indices.tolist() == H3K4ME3.tolist()
    assert oracle.n_parameters == sum(p.numel() for p in small_sei.parameters())
    description = oracle.describe()
    assert description["channels"] == [8, 12, 16] and description["n_outputs"] == 30
    assert description["readout"] == "mean of the 6 H3K4me3 outputs"
    assert f"weights under the prefix {prefix!r}" in description["notes"]


def test_a_file_not_in_the_zipfile_format_is_read_whole_with_a_note(tmp_path, small_sei):
    path = _write(tmp_path, small_sei)
    state = torch.load(path, weights_only=True)
    torch.save(state, path, _use_new_zipfile_serialization=False)
    oracle = load_sei(path)
    assert any("mmap=False" in note for note in oracle.notes)
    assert oracle.readout_indices.tolist() == H3K4ME3.tolist()


def _drop(state):
    del state["module.model.conv2.1.bias"]


def _misshape(state):
    state["module.model.conv2.1.weight"] = torch.zeros(12, 12, 7)


def _extra(state):
    state["module.model.extra.weight"] = torch.zeros(3)


def _rename(state):
    for key in list(state):
        state["net." + key.removeprefix("module.model.")] = state.pop(key)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (_rename, r"must start with 'module.model.' or 'model.'.*\['net.lconv1.0.weight'"),
        (_drop, r"missing \['conv2.1.bias'\]; unexpected none; mis-shaped none"),
        (_misshape, r"missing none; unexpected none; mis-shaped \['conv2.1.weight: file "
         r"\(12, 12, 7\), Sei \(12, 12, 9\)'\]"),
        (_extra, r"missing none; unexpected \['extra.weight'\]"),
    ],
)  # fmt: skip
def test_weights_that_do_not_match_sei_are_refused_naming_the_keys(
    tmp_path, small_sei, edit, match
):
    with pytest.raises(CheckpointError, match=match):
        load_sei(_write(tmp_path, small_sei, edit=edit))


@pytest.mark.parametrize(
    ("names", "match"),
    [
        (_names(29), "names 29 outputs but the Sei weights have 30"),
        (_names(30, ("DNase", "CTCF")), r"no Sei output has the assay 'H3K4me3'.*'DNase'"),
    ],
)
def test_a_names_file_that_does_not_fit_the_weights_is_refused(tmp_path, small_sei, names, match):
    with pytest.raises(D3InputError, match=match):
        load_sei(_write(tmp_path, small_sei, names=names))


def test_a_missing_names_file_says_where_it_looked_and_how_to_pass_one(tmp_path, small_sei):
    path = _write(tmp_path, small_sei)
    (tmp_path / "target.sei.names").unlink()
    with pytest.raises(D3InputError, match=r"no Sei output names at .*target.sei.names.*beside"):
        load_sei(path)
    with pytest.raises(D3InputError, match=r"looked where names_path points\. Pass names_path="):
        load_sei(path, tmp_path / "other.names")


def test_python_objects_in_the_file_need_trusted(tmp_path, small_sei):
    path = _write(tmp_path, small_sei)
    payload = torch.load(path, weights_only=True)
    payload["hyper_parameters"] = argparse.Namespace(arch="Sei")
    torch.save(payload, path)
    with pytest.raises(
        CheckpointError,
        match=r"it holds argparse\.Namespace, which is not plain data.*trusted=True",
    ):
        load_sei(path)
    assert load_sei(path, trusted=True).readout_indices.tolist() == H3K4ME3.tolist()


def test_a_file_that_is_missing_unreadable_or_holds_no_state_dict_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_sei(tmp_path / "best.sei.model.pth.tar")
    (tmp_path / "target.sei.names").write_text(_names())
    path = tmp_path / "best.sei.model.pth.tar"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"cannot read Sei checkpoint .*not a PyTorch file"):
        load_sei(path)
    with pytest.raises(CheckpointError, match=r"cannot read Sei checkpoint .*not a PyTorch file"):
        load_sei(path, trusted=True)
    torch.save({"weights": {"lconv1.0.weight": torch.zeros(1)}}, path)
    with pytest.raises(CheckpointError, match=r"no 'state_dict' dict; found \['weights'\]"):
        load_sei(path)
    torch.save({"state_dict": {"model.lconv1.0.weight": torch.zeros(8, 4, 9)}}, path)
    with pytest.raises(CheckpointError, match=r"cannot read Sei's sizes.*lconv2.2.weight missing"):
        load_sei(path)


# -- the H3K4me3 readout ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_oracle(tmp_path_factory, small_sei):
    return load_sei(_write(tmp_path_factory.mktemp("sei"), small_sei))


def test_the_readout_is_the_mean_h3k4me3_output_for_the_centred_sequence(small_oracle, small_sei):
    tokens = torch.randint(0, 4, (5, 1024), generator=torch.Generator().manual_seed(5))
    x = torch.full((5, 4, 4096), 0.25)
    x[:, :, 1536:2560] = _onehot(tokens)
    with torch.no_grad():
        by_hand = StrandAveraged(small_sei).eval()(x)[:, H3K4ME3].mean(1).numpy()
    for batch_size in (1, 2, 5, 16):
        got = small_oracle.predict_h3k4me3(tokens.numpy(), batch_size=batch_size)
        assert got.shape == (5,) and got.dtype == np.float32
        np.testing.assert_allclose(got, by_hand, rtol=0, atol=1e-6)
    from_onehot = small_oracle.predict_h3k4me3(_onehot(tokens), batch_size=2)
    np.testing.assert_allclose(from_onehot, by_hand, rtol=0, atol=1e-6)
    assert small_oracle.predict_h3k4me3(np.zeros((0, 1024), dtype=np.int64)).shape == (0,)


@pytest.mark.parametrize(
    ("sequences", "batch_size", "match"),
    [
        (np.full((2, 1024), 4), 4, r"tokens must lie in 0..3.*got 4..4"),
        (np.zeros((2, 1024), dtype=np.float32), 4, r"\(N, L\) integer tokens.*float32"),
        (np.zeros((2, 3, 1024), dtype=np.int64), 4, r"got shape \(2, 3, 1024\)"),
        (np.zeros((2, 1024), dtype=np.int64), 0, "batch_size must be a positive integer; got 0"),
    ],
)
def test_the_readout_refuses_bad_sequences(small_oracle, sequences, batch_size, match):
    with pytest.raises(D3InputError, match=match):
        small_oracle.predict_h3k4me3(sequences, batch_size=batch_size)
