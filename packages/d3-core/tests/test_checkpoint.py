"""Reading checkpoints: EMA weights in eval mode, the stored config, and every way a file can be wrong."""

import hashlib
import re
from fractions import Fraction
from pathlib import Path

import pytest
import torch

from d3_core.checkpoints.digest import add_content_digest
from d3_core.checkpoints.load import (
    CHECKPOINT_FORMAT,
    load_checkpoint,
    load_model_local,
    read_checkpoint,
)
from d3_core.config import config_from_plain, resolve_config
from d3_core.diffusion.graph import UniformGraph
from d3_core.diffusion.noise import Noise
from d3_core.errors import CheckpointError
from d3_core.training.run import RunDir, train

STEPS = 3
PREFIX = "score_model."


def exactly(message: str) -> str:
    """A `match` pattern for the whole of `message`."""
    return f"^{re.escape(message)}$"


pytestmark = pytest.mark.usefixtures("one_thread")


def _config(data: Path):
    # A low EMA decay, so that after a few steps the averages differ from the raw weights.
    overrides = [f"training.max_steps={STEPS}", "training.ema_decay=0.5",
                 "training.num_workers=0", "training.log_every_n_steps=1", f"dataset.data={data}"]  # fmt: skip
    return resolve_config("toy", "tran", overrides=overrides)


@pytest.fixture
def trained(toy, toy_data, tmp_path_factory, monkeypatch):
    """(checkpoint, config) of a toy transformer trained 3 steps by `train`, once per session."""
    cfg = _config(toy_data)
    run = RunDir(tmp_path_factory.getbasetemp() / f"toy-tran-{STEPS}-steps")
    if not run.last.exists():
        monkeypatch.setenv("PL_GLOBAL_SEED", "0")  # seed_everything sets it; restored after
        train(cfg, run, progress=False)
    return run.last, cfg


@pytest.fixture
def state(trained):
    """The checkpoint's payload, to alter."""
    return torch.load(trained[0], map_location="cpu", weights_only=True)


def _save(state, tmp_path) -> Path:
    """Writes an altered payload as a tool that digests its files would (a fresh digest), so a
    test of what d3 refuses in it is not answered by the digest check first."""
    path = tmp_path / "altered.ckpt"
    if isinstance(state, dict) and isinstance(state.get("d3"), dict):
        add_content_digest(state)
    torch.save(state, path)
    return path


# -- a good checkpoint -----------------------------------------------------------------------------


def test_a_trained_checkpoint_carries_a_content_digest_that_loading_verifies(trained, tmp_path):
    from d3_core.checkpoints.digest import COVERED, DIGEST_KEY, content_digest

    state = torch.load(trained[0], map_location="cpu", weights_only=True)
    assert state["d3"][DIGEST_KEY]["sha256"] == content_digest(state, COVERED, "d3")
    state["state_dict"][next(iter(state["state_dict"]))].view(-1)[0] += 1.0
    path = tmp_path / "edited.ckpt"
    torch.save(state, path)  # an edit, not rewritten by d3: the stored digest no longer fits
    with pytest.raises(CheckpointError, match=f"^{re.escape(str(path))} changed after it was"):
        load_checkpoint(path)


def test_a_checkpoint_loads_with_weights_only(trained):
    state = torch.load(trained[0], map_location="cpu", weights_only=True)
    assert state["d3"]["format_version"] == CHECKPOINT_FORMAT
    assert state["d3"]["dataset"] == "toy" and state["d3"]["architecture"] == "transformer"
    assert set(state["d3"]["versions"]) >= {"d3-core", "d3-toy", "torch", "lightning"}


def test_the_loaded_model_holds_the_ema_weights_in_eval_mode(trained, state):
    loaded = load_checkpoint(trained[0])
    shadow = state["ema"]["shadow"]
    assert not loaded.model.training
    assert not any(module.training for module in loaded.model.modules())
    for name, parameter in loaded.model.named_parameters():
        assert torch.equal(parameter, shadow[name]), name


def test_the_ema_weights_differ_from_the_trained_weights(trained, state):
    loaded = load_checkpoint(trained[0])
    raw = {k[len(PREFIX) :]: v for k, v in state["state_dict"].items() if k.startswith(PREFIX)}
    differ = [n for n, p in loaded.model.named_parameters() if not torch.equal(p, raw[n])]
    assert len(differ) > len(raw) // 2
    # What is not a parameter (buffers) comes from the trained state unchanged.
    parameters = dict(loaded.model.named_parameters())
    for name, value in loaded.model.state_dict().items():
        if name not in parameters:
            assert torch.equal(value, raw[name]), name


def test_the_loaded_checkpoint_describes_its_run(trained):
    path, cfg = trained
    loaded = load_checkpoint(path)
    assert loaded.cfg == cfg
    assert loaded.step == STEPS
    assert loaded.dataset == "toy" and loaded.architecture == "transformer"
    assert loaded.precision == "32-true"
    assert loaded.path == path
    assert loaded.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert isinstance(loaded.graph, UniformGraph) and isinstance(loaded.noise, Noise)


def test_the_stored_config_is_the_resolved_config(trained, state):
    assert config_from_plain(state["hyper_parameters"]["cfg"]) == trained[1]


def test_a_run_directory_loads_its_last_checkpoint(trained):
    path, _ = trained
    loaded = load_checkpoint(path.parent.parent)
    assert loaded.path == path and loaded.step == STEPS


def test_load_model_local_returns_model_graph_and_noise(trained):
    model, graph, noise = load_model_local(trained[0])
    loaded = load_checkpoint(trained[0])
    assert isinstance(graph, UniformGraph) and isinstance(noise, Noise)
    assert not model.training
    for (name, mine), (_, theirs) in zip(
        model.named_parameters(), loaded.model.named_parameters(), strict=True
    ):
        assert torch.equal(mine, theirs), name


def test_the_loaded_model_scores_a_batch(trained):
    loaded = load_checkpoint(trained[0])
    tokens = torch.zeros(2, 32, dtype=torch.long)
    scores = loaded.model(tokens, torch.ones(2, 1), torch.full((2,), 0.5))
    assert scores.shape == (2, 32, 4) and torch.isfinite(scores).all()


# -- files that are not readable checkpoints ----------------------------------------------------


def test_a_missing_checkpoint_is_named(tmp_path):
    missing = tmp_path / "nope.ckpt"
    with pytest.raises(
        CheckpointError, match=exactly(f"checkpoint {str(missing)!r} does not exist")
    ):
        load_checkpoint(missing)


def test_a_run_directory_without_checkpoints_names_what_it_looked_for(tmp_path):
    expected = tmp_path / "checkpoints" / "last.ckpt"
    message = (
        f"{tmp_path} is not a run directory d3 reads: it has neither {expected} (a d3 run) nor "
        "hydra/config.yaml or .hydra/config.yaml (a research run)"
    )
    with pytest.raises(CheckpointError, match=exactly(message)):
        read_checkpoint(tmp_path)


def _unreadable(path: Path, reason: str) -> str:
    return exactly(f"cannot read checkpoint {str(path)!r}: {reason}")


def test_a_truncated_checkpoint_cannot_be_read(trained, tmp_path):
    data = trained[0].read_bytes()
    path = tmp_path / "half.ckpt"
    path.write_bytes(data[: len(data) // 2])
    reason = "a truncated zip archive: its end (the central directory) is missing"
    with pytest.raises(CheckpointError, match=_unreadable(path, reason)):
        load_checkpoint(path)


def test_a_file_that_is_not_a_pytorch_file_cannot_be_read(tmp_path):
    path = tmp_path / "text.ckpt"
    path.write_text("not a checkpoint\n")
    reason = "not a PyTorch file: neither a zip archive nor a pickle (pickle exhausted before seeing STOP)"
    with pytest.raises(CheckpointError, match=_unreadable(path, reason)):
        load_checkpoint(path)


def test_a_checkpoint_that_needs_code_to_unpickle_is_refused_without_trust(state, tmp_path):
    state["extra"] = Fraction(1, 3)  # a class outside the plain-data allowlist
    path = _save(state, tmp_path)
    message = (
        f"refusing to load checkpoint {str(path)!r}: it holds fractions.Fraction, which is not "
        "plain data, so loading it would run code named by the file (torch.load("
        "weights_only=True) allows only tensors and plain data). If you trust where the file "
        "came from, pass --trust-checkpoint (trusted=True in Python), then `d3 convert` it "
        "once to get a file that loads without it"
    )
    with pytest.raises(CheckpointError, match=exactly(message)):
        load_checkpoint(path)
    assert load_checkpoint(path, trusted=True).step == STEPS


@pytest.mark.parametrize(
    ("payload", "entries"), [({"state_dict": {}}, "['state_dict']"), (torch.zeros(3), "Tensor")]
)
def test_a_pytorch_file_of_no_known_kind_is_refused_naming_what_it_holds(
    tmp_path, payload, entries
):
    path = _save(payload, tmp_path)
    message = (
        f"{path} is not a checkpoint d3 reads (top-level entries: {entries}); expected a d3 "
        "checkpoint ('d3'), a research checkpoint ('model', 'ema') or a Lightning checkpoint "
        "of the packaged release ('state_dict' with 'score_model.*')"
    )
    with pytest.raises(CheckpointError, match=exactly(message)):
        load_checkpoint(path)


def test_a_d3_entry_that_is_not_a_mapping_is_not_a_d3_checkpoint(tmp_path):
    path = _save({"d3": "v1"}, tmp_path)
    message = (
        f"{path} is not a d3 checkpoint (its 'd3' entry is missing or not a mapping); read "
        "research and d3-dna checkpoints with load_checkpoint, or convert them with `d3 convert`"
    )
    with pytest.raises(CheckpointError, match=exactly(message)):
        load_checkpoint(path)


@pytest.mark.parametrize(("version", "shown"), [(99, "99"), (None, "None"), ("1", "'1'")])
def test_a_newer_or_unknown_format_asks_for_an_upgrade(state, tmp_path, version, shown):
    state["d3"]["format_version"] = version
    path = _save(state, tmp_path)
    message = (
        f"{path} has checkpoint format {shown}; this d3-core reads formats up to "
        f"{CHECKPOINT_FORMAT}: upgrade d3-core"
    )
    with pytest.raises(CheckpointError, match=exactly(message)):
        load_checkpoint(path)


@pytest.mark.parametrize("key", ["state_dict", "hyper_parameters"])
def test_a_d3_checkpoint_without_its_weights_or_config_is_a_checkpoint_error(state, tmp_path, key):
    del state[key]
    with pytest.raises(CheckpointError, match=key):
        load_checkpoint(_save(state, tmp_path))


# -- weights that do not match the model ---------------------------------------------------------


def _weights_message(
    path, *, missing="none", unexpected="none", mismatched="none", what="weights"
) -> str:
    return (
        f"{path}: the {what} do not match the model: missing {missing}; "
        f"unexpected {unexpected}; shape mismatches {mismatched}"
    )


def test_weights_missing_a_key_are_refused_naming_it(state, tmp_path):
    key = sorted(k for k in state["state_dict"] if k.startswith(PREFIX))[0]
    del state["state_dict"][key]
    path = _save(state, tmp_path)
    message = _weights_message(path, missing=[key[len(PREFIX) :]])
    with pytest.raises(CheckpointError, match=exactly(message)):
        load_checkpoint(path)


def test_weights_with_an_extra_key_are_refused_naming_it(state, tmp_path):
    state["state_dict"][PREFIX + "extra.weight"] = torch.zeros(2)
    path = _save(state, tmp_path)
    message = _weights_message(path, unexpected=["extra.weight"])
    with pytest.raises(CheckpointError, match=exactly(message)):
        load_checkpoint(path)


def test_weights_of_the_wrong_shape_are_refused_with_both_shapes(state, tmp_path):
    key = sorted(k for k in state["state_dict"] if k.startswith(PREFIX))[0]
    shape = tuple(state["state_dict"][key].shape)
    state["state_dict"][key] = torch.zeros(shape[0] + 1, *shape[1:])
    path = _save(state, tmp_path)
    wrong = (shape[0] + 1, *shape[1:])
    mismatch = [f"{key[len(PREFIX) :]}: checkpoint {wrong} vs model {shape}"]
    with pytest.raises(CheckpointError, match=exactly(_weights_message(path, mismatched=mismatch))):
        load_checkpoint(path)


def test_weights_outside_the_score_model_are_ignored(state, tmp_path):
    state["state_dict"]["other_module.weight"] = torch.zeros(2)
    assert load_checkpoint(_save(state, tmp_path)).step == STEPS


def test_an_ema_missing_a_parameter_is_refused_naming_it(state, tmp_path):
    name = sorted(state["ema"]["shadow"])[0]
    del state["ema"]["shadow"][name]
    path = _save(state, tmp_path)
    message = (
        f"{path}: the EMA does not cover the model's parameters: missing [{name!r}]; "
        "unexpected none"
    )
    with pytest.raises(CheckpointError, match=exactly(message)):
        load_checkpoint(path)


def test_an_ema_with_an_extra_parameter_is_refused_naming_it(state, tmp_path):
    state["ema"]["shadow"]["extra.weight"] = torch.zeros(2)
    path = _save(state, tmp_path)
    message = (
        f"{path}: the EMA does not cover the model's parameters: missing none; "
        "unexpected ['extra.weight']"
    )
    with pytest.raises(CheckpointError, match=exactly(message)):
        load_checkpoint(path)


def test_an_ema_parameter_of_the_wrong_shape_is_refused_with_both_shapes(state, tmp_path):
    name = sorted(state["ema"]["shadow"])[0]
    shape = tuple(state["ema"]["shadow"][name].shape)
    state["ema"]["shadow"][name] = torch.zeros(shape[0] + 1, *shape[1:])
    path = _save(state, tmp_path)
    mismatch = [f"{name}: checkpoint {(shape[0] + 1, *shape[1:])} vs model {shape}"]
    message = _weights_message(path, mismatched=mismatch, what="EMA weights")
    with pytest.raises(CheckpointError, match=exactly(message)):
        load_checkpoint(path)


@pytest.mark.parametrize("ema", [None, {"decay": 0.5}])
def test_a_checkpoint_without_ema_weights_cannot_be_sampled(state, tmp_path, ema):
    if ema is None:
        del state["ema"]
    else:
        state["ema"] = ema
    path = _save(state, tmp_path)
    message = f"{path} has no EMA weights ('ema.shadow'); it cannot be sampled"
    with pytest.raises(CheckpointError, match=exactly(message)):
        load_checkpoint(path)
