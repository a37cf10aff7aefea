"""Reading the checkpoints users already have: research, d3-dna packaged and converted files.

The files are written by `d3_core.testing.checkpoint_writers`, which builds them as module trees in
the published registration order (docs/checkpoint-formats.md), independently of the readers. Each
research file has a dead tower and an EMA list whose values differ from the raw weights, so loading
the wrong tower or the raw weights, or naming the EMA list wrongly, changes the result.
"""

import json
import re
from pathlib import Path

import pytest
import torch

from d3_core.checkpoints.load import (
    find_checkpoints,
    load_checkpoint,
    load_model_local,
    read_contents,
    write_checkpoint,
)
from d3_core.config import model_sizes
from d3_core.diffusion.graph import UniformGraph
from d3_core.errors import CheckpointError
from d3_core.testing.checkpoint_writers import write_converted, write_packaged, write_research
from d3_core.testing.reference import reference_log_scores

TOY = {"dataset": "toy", "signal": 1, "length": 32, "label_classes": 5}


def exactly(message: str) -> str:
    return f"^{re.escape(message)}$"


pytestmark = pytest.mark.usefixtures("one_thread")


def research(tmp_path: Path, arch: str, folder: str = "run", **changes):
    label_emb = {"label_emb_width": 1} if arch == "conv" else {}
    return write_research(tmp_path / folder, arch=arch, **{**TOY, **label_emb, **changes})


def _inputs(batch: int = 3):
    generator = torch.Generator().manual_seed(5)
    tokens = torch.randint(0, 4, (batch, 32), generator=generator)
    labels = torch.randn(batch, 1, generator=generator)
    sigma = torch.rand(batch, generator=generator) * 5
    return tokens, labels, sigma


def _assert_holds_ema(loaded, written) -> None:
    """Every trainable parameter is the intended EMA value, bit for bit."""
    params = dict(loaded.model.named_parameters())
    assert set(params) == set(written.ema)
    for name, value in written.ema.items():
        assert torch.equal(params[name], value), name
        assert not torch.equal(params[name], written.weights[name]), f"{name} is the raw weight"


def _direct_model(loaded, written):
    """The same architecture built from its config and given the intended weights by hand."""
    plugin_model = type(loaded.model)(model_sizes(loaded.cfg, _toy_plugin()))
    state = plugin_model.state_dict()
    state.update({k: v for k, v in written.weights.items() if k in state})
    state.update(written.ema)
    plugin_model.load_state_dict(state, strict=True)
    return plugin_model.eval()


def _toy_plugin():
    import toyplugin

    return toyplugin.PLUGIN


# -- research files --------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["transformer", "conv"])
def test_a_research_run_directory_loads_the_trained_tower_with_its_ema(toy, tmp_path, arch):
    written = research(tmp_path, arch)
    loaded = load_checkpoint(written.run_dir)
    assert (loaded.format, loaded.dataset, loaded.architecture) == ("research", "toy", arch)
    assert loaded.step == written.step
    assert loaded.path == written.path
    _assert_holds_ema(loaded, written)
    assert not loaded.model.training


@pytest.mark.parametrize("arch", ["transformer", "conv"])
def test_a_research_model_scores_as_a_model_built_from_the_intended_weights(toy, tmp_path, arch):
    written = research(tmp_path, arch)
    loaded = load_checkpoint(written.path)
    direct = _direct_model(loaded, written)
    tokens, labels, sigma = _inputs()
    with torch.no_grad():
        ours = loaded.model(tokens, labels, sigma)
        assert torch.equal(ours, direct(tokens, labels, sigma))
        # The research call convention gives the same log-scores.
        assert torch.equal(loaded.model(tokens, labels, False, sigma), ours)


@pytest.mark.parametrize("arch", ["transformer", "conv"])
def test_a_research_model_reproduces_the_research_forward_pass(toy, tmp_path, arch):
    """Against docs/models.md#transformer/docs/models.md#convolutional written out on the file's own
    tensors (EMA applied), not d3's model."""
    written = research(tmp_path, arch)
    model, _, _ = load_model_local(written.run_dir, "cpu")
    tokens, labels, sigma = _inputs()
    with torch.no_grad():
        ours = model(tokens, labels, sigma)
    theirs = reference_log_scores(written.ema_state(), arch, tokens, labels, sigma, n_heads=2)
    assert ours.dtype == torch.float32
    assert (ours.double() - theirs).abs().max() < 2e-5


def test_a_tran_file_has_the_research_conv_towers_fixed_dense_width(toy, tmp_path):
    """The dead conv tower's denses take 256 inputs whatever cond_dim (128 here) says."""
    written = research(tmp_path, "transformer")
    state = torch.load(written.path, weights_only=True)["model"]
    assert tuple(state["sigma_map.mlp.0.weight"].shape) == (128, 256)
    assert tuple(state["denses.0.dense.weight"].shape) == (16, 256)
    loaded = load_checkpoint(written.run_dir)
    assert loaded.architecture == "transformer"
    assert not any(name.startswith("denses.") for name in loaded.model.state_dict())


def test_a_dead_tower_of_the_wrong_shape_is_refused_by_name(toy, tmp_path):
    written = research(tmp_path, "transformer")

    def narrow(state):  # denses sized from cond_dim: not what the research code writes
        for k in range(5):
            state["model"][f"denses.{k}.dense.weight"] = torch.zeros(16, 128)

    path = _rewrite(written, narrow)
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(path)
    message = str(error.value)
    assert "does not have the layout of a research checkpoint (both towers)" in message
    assert "denses.0.dense.weight: file (16, 128) vs expected (16, 256)" in message


def test_folders_above_the_run_do_not_name_its_architecture(toy, tmp_path):
    written = research(tmp_path, "transformer", folder="conv/experiments/run-7")
    loaded = load_checkpoint(written.path)
    assert loaded.architecture == "transformer"
    assert not any("run folder" in note for note in loaded.notes)
    bare = research(tmp_path, "transformer", folder="Conv/all", config=False)
    assert load_checkpoint(bare.path).architecture == "transformer"


@pytest.mark.parametrize("arch", ["transformer", "conv"])
def test_load_model_local_takes_a_research_run(toy, tmp_path, arch):
    written = research(tmp_path, arch)
    model, graph, noise = load_model_local(written.run_dir, "cpu")
    assert dict(model.named_parameters()).keys() == written.ema.keys()
    assert noise.sigma_min == pytest.approx(1e-4) and noise.sigma_max == pytest.approx(20.0)
    assert isinstance(graph, UniformGraph) and graph.num_states == 4


def test_the_loaded_model_reports_how_it_was_read(toy, tmp_path):
    written = research(tmp_path, "conv")
    notes = load_checkpoint(written.run_dir).notes
    assert f"run config {written.run_dir / 'hydra' / 'config.yaml'}" in notes
    assert (
        "architecture Conv: cond_dim is 256 (agrees: the transformer's adaLN weights are all "
        "zero (never trained))" in notes
    )
    dropped = [n for n in notes if n.startswith("dropped ")]
    assert dropped == ["dropped scale, untrained transformer tower (29 tensors), label_embed"]


def test_the_run_folder_name_is_the_first_evidence(toy, tmp_path):
    written = research(tmp_path, "transformer", folder="deepstarr/Tran")
    notes = load_checkpoint(written.run_dir).notes
    assert (
        "architecture Tran: the run folder is named 'Tran' (agrees: cond_dim is 128; the "
        "transformer's adaLN weights have been trained)" in notes
    )


def test_evidence_that_contradicts_the_weights_is_refused(toy, tmp_path):
    written = research(tmp_path, "conv", folder="Tran")
    message = (
        f"{written.path}: the run folder is named 'Tran', so the Tran tower would be loaded, "
        "but the transformer's adaLN weights are all zero (never trained); the Tran tower of "
        "this file is not a trained model"
    )
    with pytest.raises(CheckpointError, match=exactly(message)):
        load_checkpoint(written.run_dir)


def test_asking_for_the_untrained_tower_is_refused(toy, tmp_path):
    written = research(tmp_path, "conv")
    with pytest.raises(CheckpointError, match="--arch Tran was asked for, so the Tran tower"):
        load_checkpoint(written.run_dir, arch="Tran")


def test_the_precision_of_a_research_run_is_recorded(toy, tmp_path):
    assert load_checkpoint(research(tmp_path, "transformer").path).precision == "bf16-mixed"
    assert load_checkpoint(research(tmp_path, "conv", "b").path).precision == "32-true"


@pytest.mark.parametrize(
    ("names", "chosen"),
    [
        (["checkpoints/checkpoint.pth", "checkpoints/checkpoint_9.pth"], 0),
        (["checkpoints/checkpoint_9.pth", "checkpoints/checkpoint_12.pth"], 1),
        (["checkpoints-meta/checkpoint.pth"], 0),
    ],
)
def test_a_research_run_directory_picks_its_weights_in_order(toy, tmp_path, names, chosen):
    files = [
        research(tmp_path, "transformer", seed=i, weights_name=name, step=i)
        for i, name in enumerate(names)
    ]
    loaded = load_checkpoint(tmp_path / "run")
    assert loaded.path == files[chosen].path
    assert loaded.step == chosen


def test_a_dot_hydra_config_is_read_too(toy, tmp_path):
    written = research(tmp_path, "transformer")
    (written.run_dir / "hydra").rename(written.run_dir / ".hydra")
    assert load_checkpoint(written.run_dir).dataset == "toy"


def test_a_bare_research_file_finds_its_dataset_by_label_width(toy, tmp_path):
    written = research(tmp_path, "conv", config=False)
    loaded = load_checkpoint(written.path)
    assert loaded.dataset == "toy"
    assert "no run config found: sizes from the weights, d3's paper settings otherwise" in (
        loaded.notes
    )
    _assert_holds_ema(loaded, written)


def test_a_research_run_without_weights_names_what_it_looked_for(toy, tmp_path):
    (tmp_path / "hydra").mkdir()
    (tmp_path / "hydra" / "config.yaml").write_text("data: {train: toy}\n")
    message = (
        f"{tmp_path} is a research run directory without weights: none of "
        "checkpoints/checkpoint.pth, checkpoints/checkpoint_<k>.pth, "
        "checkpoints-meta/checkpoint.pth exists"
    )
    with pytest.raises(CheckpointError, match=exactly(message)):
        load_checkpoint(tmp_path)


def test_a_research_checkpoint_of_another_dataset_is_refused_naming_both(toy, tmp_path):
    written = research(tmp_path, "transformer")
    message = (
        f"{written.path} is a toy checkpoint (data.train in its config); it cannot be used as a "
        "deepstarr model"
    )
    with pytest.raises(CheckpointError, match=exactly(message)):
        load_checkpoint(written.run_dir, dataset="DeepSTARR")


def test_a_bare_file_whose_labels_fit_no_installed_dataset_is_refused(toy, tmp_path):
    written = research(tmp_path, "transformer", signal=3, config=False)
    message = (
        f"{written.path} does not name its dataset and its weights take 3 labels, which no "
        "installed dataset fits (installed: toy); pass --dataset"
    )
    with pytest.raises(CheckpointError, match=exactly(message)):
        load_checkpoint(written.path)


def test_a_config_that_contradicts_the_weights_is_refused(toy, tmp_path):
    written = research(tmp_path, "transformer")
    config = written.run_dir / "hydra" / "config.yaml"
    config.write_text(config.read_text().replace("hidden_size: 32", "hidden_size: 768"))
    message = (
        f"{written.path}: its config does not describe its weights: model.hidden_size = 768 but "
        "the weights have 32"
    )
    with pytest.raises(CheckpointError, match=exactly(message)):
        load_checkpoint(written.run_dir)


# -- research files that are wrong -------------------------------------------------------------


def _rewrite(written, change) -> Path:
    state = torch.load(written.path, weights_only=True)
    change(state)
    torch.save(state, written.path)
    return written.path


def test_a_missing_tensor_is_refused_by_name(toy, tmp_path):
    written = research(tmp_path, "transformer")
    path = _rewrite(written, lambda s: s["model"].pop("blocks.1.mlp.0.bias"))
    with pytest.raises(CheckpointError, match=r"missing blocks\.1\.mlp\.0\.bias; unexpected none"):
        load_checkpoint(path)


def test_an_unexpected_tensor_is_refused_by_name(toy, tmp_path):
    written = research(tmp_path, "transformer")
    path = _rewrite(written, lambda s: s["model"].__setitem__("extra.weight", torch.zeros(2)))
    with pytest.raises(CheckpointError, match=r"missing none; unexpected extra\.weight"):
        load_checkpoint(path)


def test_a_misshaped_tensor_is_refused_with_both_shapes(toy, tmp_path):
    written = research(tmp_path, "conv")
    path = _rewrite(written, lambda s: s["model"].__setitem__("final.2.bias", torch.zeros(5)))
    with pytest.raises(
        CheckpointError,
        match=re.escape("shape mismatches final.2.bias: file (5,) vs expected (4,)"),
    ):
        load_checkpoint(path)


def test_weights_out_of_order_cannot_name_the_ema_list(toy, tmp_path):
    def swap(state):
        model = state["model"]
        keys = list(model)
        i, j = keys.index("blocks.0.norm1.weight"), keys.index("blocks.0.attn_qkv.weight")
        keys[i], keys[j] = keys[j], keys[i]
        state["model"] = {k: model[k] for k in keys}

    written = research(tmp_path, "transformer")
    path = _rewrite(written, swap)
    message = (
        f"{path}: its weights are not in the research checkpoint (both towers) order: entry "
        "10 is 'blocks.0.attn_qkv.weight' where 'blocks.0.norm1.weight' belongs; the EMA list "
        "cannot be named by position"
    )
    with pytest.raises(CheckpointError, match=exactly(message)):
        load_checkpoint(path)


def test_an_ema_list_of_another_length_is_refused(toy, tmp_path):
    written = research(tmp_path, "transformer")
    path = _rewrite(written, lambda s: s["ema"]["shadow_params"].pop())
    n = written.ema_length
    message = (
        f"{path}: the EMA list has {n - 1} tensors but the model has {n} trainable parameters; "
        "it belongs to another model"
    )
    with pytest.raises(CheckpointError, match=exactly(message)):
        load_checkpoint(path)


def test_an_ema_entry_of_the_wrong_shape_is_refused_naming_its_parameter(toy, tmp_path):
    def shrink(state):
        state["ema"]["shadow_params"][1] = torch.zeros(3, 3)

    written = research(tmp_path, "transformer")
    path = _rewrite(written, shrink)
    message = (
        f"{path}: EMA entries do not match the parameters they stand for: [1] "
        "vocab_embed.embedding: EMA (3, 3) vs (4, 32)"
    )
    with pytest.raises(CheckpointError, match=exactly(message)):
        load_checkpoint(path)


def test_a_truncated_research_file_is_unreadable(toy, tmp_path):
    written = research(tmp_path, "transformer")
    data = written.path.read_bytes()
    written.path.write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match="a truncated zip archive: its end"):
        load_checkpoint(written.run_dir)


# -- packaged and converted files ----------------------------------------------------------------


def test_a_packaged_checkpoint_loads_without_trust_as_a_trusted_load_does(toy, tmp_path):
    written = write_packaged(
        tmp_path / "model.ckpt", dataset="toy", arch="transformer", signal=1, length=32
    )
    safe, trusted = load_checkpoint(written.path), load_checkpoint(written.path, trusted=True)
    assert safe.format == "packaged"
    _same_tensors(safe.model.state_dict(), trusted.model.state_dict())


def test_a_trusted_packaged_transformer_loads_with_its_ema(toy, tmp_path):
    written = write_packaged(
        tmp_path / "model.ckpt", dataset="toy", arch="transformer", signal=1, length=32
    )
    loaded = load_checkpoint(written.path, trusted=True)
    assert (loaded.format, loaded.dataset, loaded.architecture) == (
        "packaged",
        "toy",
        "transformer",
    )
    assert loaded.step == written.step and written.ema_length == 1 + 2 + 4 + 1 + 2 * 10 + 5
    _assert_holds_ema(loaded, written)
    assert "dropped label_embed" in loaded.notes
    tokens, labels, sigma = _inputs()
    with torch.no_grad():
        direct = _direct_model(loaded, written)
        assert torch.equal(loaded.model(tokens, labels, sigma), direct(tokens, labels, sigma))


def test_a_packaged_conv_model_broadcasts_one_global_label_as_d3_dna_does(toy, tmp_path):
    """d3-dna's conv model (its lentiMPRA checkpoints) spreads a (B, 1) label over positions."""
    written = write_packaged(
        tmp_path / "model.ckpt", dataset="toy", arch="conv", signal=1, length=32
    )
    loaded = load_checkpoint(written.path, trusted=True)
    assert (loaded.architecture, loaded.cfg.model.label_embedding) == ("conv", False)
    assert not hasattr(loaded.model, "label_emb")
    assert "its one global label is broadcast over the positions, as d3-dna's conv does" in (
        loaded.notes
    )
    _assert_holds_ema(loaded, written)
    tokens, labels, sigma = _inputs()
    with torch.no_grad():
        ours = loaded.model(tokens, labels, sigma)
    theirs = reference_log_scores(written.ema_state(), "conv", tokens, labels, sigma)
    assert (ours.double() - theirs).abs().max() < 2e-5


def test_a_packaged_conv_model_cannot_take_two_global_labels(installed, make_plugin, tmp_path):
    import toyplugin

    toy = toyplugin.PLUGIN
    pair = make_plugin(
        "pair", sequence_length=32, label_names=("a", "b"), label_mode="global",
        score_models=toy.score_models, configs=toy.configs,
    )  # fmt: skip
    installed(pair)
    written = write_packaged(tmp_path / "m.ckpt", dataset="pair", arch="conv", signal=1, length=32)
    message = (
        f"{written.path} is a d3-dna conv model, which takes one label channel (a per-position "
        "track, or one global value broadcast over the positions; it has no label_emb), so it "
        "cannot model pair's 2 labels (a, b)"
    )
    with pytest.raises(CheckpointError, match=exactly(message)):
        load_checkpoint(written.path, trusted=True)


@pytest.mark.parametrize("arch", ["transformer", "conv"])
def test_a_converted_file_loads_without_trust_as_its_research_file(toy, tmp_path, arch):
    written = research(tmp_path, arch)
    converted = write_converted(written, tmp_path / "converted.ckpt", dataset="toy", arch=arch)
    loaded = load_checkpoint(converted)
    assert loaded.format == "converted" and loaded.step == written.step
    _assert_holds_ema(loaded, written)


# -- writing d3's format -------------------------------------------------------------------------


def _same_tensors(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]), key


@pytest.mark.parametrize("arch", ["transformer", "conv"])
def test_conversion_round_trips_bit_exactly(toy, tmp_path, arch):
    written = research(tmp_path, arch)
    source = read_contents(written.run_dir)
    out = write_checkpoint(source, tmp_path / "converted.ckpt")
    state = torch.load(out, weights_only=True)  # safe to load: plain data and tensors
    assert state["d3"]["converted_from"]["format"] == "research"
    assert state["d3"]["converted_from"]["config"]["data"]["train"] == "toy"
    again = read_contents(out)
    assert again.format == "d3" and again.step == written.step
    assert again.precision == source.precision
    _same_tensors(again.weights, source.weights)
    _same_tensors(again.ema, source.ema)
    # A second conversion of the converted file gives the same tensors again.
    twice = read_contents(write_checkpoint(again, tmp_path / "twice.ckpt"))
    _same_tensors(twice.weights, source.weights)
    _same_tensors(twice.ema, source.ema)
    tokens, labels, sigma = _inputs()
    with torch.no_grad():
        a = load_checkpoint(written.run_dir).model(tokens, labels, sigma)
        assert torch.equal(load_checkpoint(out).model(tokens, labels, sigma), a)


def test_find_checkpoints_goes_by_content_not_name(toy, tmp_path):
    research(tmp_path, "transformer")
    (tmp_path / "notes.pth").write_text("not a checkpoint")
    torch.save({"x": torch.zeros(1)}, tmp_path / "weights.bin")
    found = find_checkpoints(tmp_path)
    assert found == [tmp_path / "run" / "checkpoints" / "checkpoint.pth", tmp_path / "weights.bin"]


@pytest.fixture
def per_position(installed, make_plugin):
    """A toy-shaped dataset whose label is a per-position track, as the promoter's is."""
    import toyplugin

    toy = toyplugin.PLUGIN
    plugin = make_plugin(
        "track", sequence_length=32, label_names=("signal",), label_mode="per_position",
        score_models=toy.score_models, configs=toy.configs,
    )  # fmt: skip
    installed(plugin, toy)
    return plugin


def test_a_trusted_packaged_conv_model_loads_for_a_per_position_dataset(per_position, tmp_path):
    written = write_packaged(tmp_path / "m.ckpt", dataset="track", arch="conv", signal=1, length=32)
    loaded = load_checkpoint(written.path, trusted=True)
    assert (loaded.dataset, loaded.architecture, loaded.cfg.model.cond_dim) == (
        "track",
        "conv",
        128,
    )
    assert written.ema_length == 1 + 4 + 2 + 2 + 3 * 2 * 5 + 4  # scale, σ map, embed.1, conv
    assert "dropped scale, embed (3 tensors)" in loaded.notes
    params = dict(loaded.model.named_parameters())
    assert params.keys() == written.ema.keys()
    assert all(torch.equal(params[k], v) for k, v in written.ema.items())
    tokens, _, sigma = _inputs()
    track = torch.randn(3, 32, 1)
    direct = type(loaded.model)(model_sizes(loaded.cfg, per_position))
    direct.load_state_dict({**direct.state_dict(), **written.ema})
    with torch.no_grad():
        assert torch.equal(loaded.model(tokens, track, sigma), direct.eval()(tokens, track, sigma))


# -- d3 convert ------------------------------------------------------------------------------


def _zoo(root: Path):
    """A directory as users keep them: two research runs, a d3-dna file and stray files."""
    write_research(root / "toy" / "Tran", arch="transformer", **TOY)
    write_research(
        root / "toy" / "Conv", arch="conv", label_emb_width=1,
        weights_name="checkpoints/checkpoint_5.pth", **TOY,
    )  # fmt: skip
    write_packaged(
        root / "release" / "toy.ckpt", dataset="toy", arch="transformer", signal=1, length=32
    )
    (root / "README.txt").write_text("weights from the lab server\n")
    torch.save({"optimizer": {}}, root / "toy" / "optimizer.pt")


def test_d3_convert_converts_one_file_beside_itself(toy, tmp_path, capsys):
    from d3_core.cli.main import main

    written = research(tmp_path, "transformer")
    assert main(["convert", str(written.path)]) == 0
    out = written.path.with_name("checkpoint.d3.ckpt")
    assert f"converted {written.path} (research, toy, transformer, step 1234): {out}" in (
        capsys.readouterr().out
    )
    _same_tensors(read_contents(out).ema, read_contents(written.path).ema)
    # Converting again without --force refuses to overwrite the result.
    assert main(["convert", str(written.path)]) == 1
    assert f"{out} exists; pass --force to overwrite it" in capsys.readouterr().err
    assert main(["convert", str(written.path), "--force"]) == 0


def test_d3_convert_dir_converts_every_checkpoint_and_reports_every_file(toy, tmp_path, capsys):
    from d3_core.cli.main import main

    _zoo(tmp_path / "zoo")
    out = tmp_path / "converted"
    status = main(["convert", str(tmp_path / "zoo"), "--out", str(out), "--json"])
    records = {Path(r["source"]).relative_to(tmp_path / "zoo").as_posix(): r for r in
               json.loads(capsys.readouterr().out)}  # fmt: skip
    assert status == 0  # the d3-dna file needs no --trust-checkpoint
    assert records["release/toy.ckpt"]["status"] == "converted"
    assert records["toy/optimizer.pt"]["status"] == "skipped"
    assert "not a checkpoint d3 reads" in records["toy/optimizer.pt"]["reason"]
    assert records["toy/Tran/checkpoints/checkpoint.pth"]["status"] == "converted"
    assert records["toy/Conv/checkpoints/checkpoint_5.pth"]["architecture"] == "conv"
    assert "README.txt" not in " ".join(records)  # not a PyTorch file: not a candidate
    assert (out / "toy/Conv/checkpoints/checkpoint_5.d3.ckpt").is_file()

    assert main(["convert", str(tmp_path / "zoo"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "0 converted, 4 skipped, 0 failed" in printed  # all were done the first time
    assert load_checkpoint(out / "release" / "toy.d3.ckpt").format == "d3"


def test_d3_sample_reads_a_research_run(toy, tmp_path, capsys):
    from d3_core.cli.main import main

    written = research(tmp_path, "conv")
    labels = tmp_path / "labels.tsv"
    labels.write_text("copies\n1.0\n")
    argv = ["sample", "--checkpoint", str(written.run_dir), "--labels", str(labels), "--out",
            str(tmp_path / "s"), "--num-samples", "2", "--steps", "4", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    assert "read a research checkpoint: run config" in capsys.readouterr().out
    provenance = json.loads((tmp_path / "s" / "provenance.json").read_text())
    assert provenance["checkpoint_format"] == "research"
    assert main([*argv, "--force", "--dataset", "deepstarr"]) == 1
    assert "is a toy checkpoint (data.train in its config); it cannot be used as a deepstarr" in (
        capsys.readouterr().err
    )


def test_the_original_convert_script_wraps_d3_convert(toy, tmp_path):
    import runpy
    import sys

    written = research(tmp_path, "transformer")
    script = Path(__file__).parents[3] / "scripts" / "convert_checkpoints.py"
    argv = sys.argv
    sys.argv = [str(script), str(tmp_path / "run")]
    try:
        with pytest.raises(SystemExit) as done:
            runpy.run_path(str(script), run_name="__main__")
    finally:
        sys.argv = argv
    assert done.value.code == 0
    assert written.path.with_name("checkpoint.d3.ckpt").is_file()


def test_a_converted_checkpoint_cannot_resume_training(toy, tmp_path):
    from d3_core.training.resume import resume_step

    written = research(tmp_path, "transformer")
    out = write_checkpoint(read_contents(written.path), tmp_path / "c.ckpt")
    message = (
        f"{out} was converted from a research checkpoint and holds no optimizer state: it can be "
        "sampled and evaluated, but training cannot resume from it"
    )
    with pytest.raises(CheckpointError, match=exactly(message)):
        resume_step(out)


def test_sampling_in_another_precision_than_trained_warns(toy, tmp_path, capsys):
    from d3_core.cli.main import main

    written = research(tmp_path, "transformer")  # the research transformer trained in bf16
    labels = tmp_path / "labels.tsv"
    labels.write_text("copies\n1.0\n")
    argv = ["sample", "--checkpoint", str(written.run_dir), "--labels", str(labels), "--out",
            str(tmp_path / "s"), "--steps", "2", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    assert "d3: warning: the model was trained under bf16-mixed; it samples in float32" in (
        capsys.readouterr().err
    )
