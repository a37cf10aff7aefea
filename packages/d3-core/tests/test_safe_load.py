"""The safe loader on real files: d3-dna's and Lightning's checkpoints load without trust, and a
file that names any other global is refused by name (docs/checkpoint-formats.md#safe-loading).

The fixtures in tests/fixtures/ were written by d3-dna 0.1.3 and pytorch_lightning themselves
(`fixtures/make_d3dna_fixtures.py`), not by d3.
"""

import builtins
import json
import re
import sys
from pathlib import Path

import pytest
import torch

from d3_core.checkpoints.load import load_checkpoint
from d3_core.checkpoints.safe_load import (
    PLAIN_DATA_GLOBALS,
    UnreadableFileError,
    UntrustedFileError,
    plain_data_globals,
    safe_load,
)

FIXTURES = Path(__file__).parent / "fixtures"
FILES = {
    "d3dna-transformer.ckpt": ("packaged", "transformer"),
    "d3dna-conv.ckpt": ("packaged", "conv"),
    "lightning-dictconfig.ckpt": ("converted", "transformer"),
    "lightning-path.ckpt": ("converted", "transformer"),
}

pytestmark = pytest.mark.usefixtures("one_thread")


def _tensors(node, prefix=""):
    """Every tensor of a payload by its path, for comparing two loads."""
    if isinstance(node, torch.Tensor):
        return {prefix: node}
    if isinstance(node, dict):
        items = node.items()
    elif isinstance(node, (list, tuple)):
        items = enumerate(node)
    else:
        return {}
    found = {}
    for key, value in items:
        found |= _tensors(value, f"{prefix}/{key}")
    return found


def test_the_fixtures_are_small_and_hold_what_they_should():
    for name in FILES:
        assert (FIXTURES / name).stat().st_size < 700_000, name
    # what makes them need more than torch's defaults: an OmegaConf config, or a path
    for name, needs in [("d3dna-conv.ckpt", "DictConfig"), ("lightning-path.ckpt", "PosixPath")]:
        with pytest.raises(Exception, match=needs):
            torch.load(FIXTURES / name, weights_only=True)


@pytest.mark.parametrize("name", FILES)
def test_every_real_format_loads_without_trust_as_a_trusted_load_does(name):
    safe = safe_load(FIXTURES / name)
    trusted = torch.load(FIXTURES / name, weights_only=False)
    a, b = _tensors(safe), _tensors(trusted)
    assert a.keys() == b.keys() and len(a) > 10
    for key in a:
        assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]), key


@pytest.mark.parametrize("name", FILES)
def test_every_real_format_gives_the_same_model_without_trust(toy, name):
    fmt, arch = FILES[name]
    safe = load_checkpoint(FIXTURES / name)
    trusted = load_checkpoint(FIXTURES / name, trusted=True)
    assert (safe.format, safe.architecture, safe.dataset) == (fmt, arch, "toy")
    ours, theirs = safe.model.state_dict(), trusted.model.state_dict()
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_the_d3dna_model_holds_d3dnas_ema_not_its_raw_weights(toy):
    stored = torch.load(FIXTURES / "d3dna-transformer.ckpt", weights_only=False)
    loaded = load_checkpoint(FIXTURES / "d3dna-transformer.ckpt")
    shadow = stored["state_dict"]["ema.shadow_params"]
    # d3-dna's first EMA entry is vocab_embed.embedding (docs/checkpoint-formats.md)
    weight = loaded.model.state_dict()["vocab_embed.embedding"]
    assert torch.equal(weight, shadow[0])
    assert not torch.equal(weight, stored["state_dict"]["score_model.vocab_embed.embedding"])


def test_the_allowlist_does_not_leak_into_the_process():
    # torch keeps the allowlist as a set and rebuilds it on exit, so compare membership, not order
    before = set(torch.serialization.get_safe_globals())
    safe_load(FIXTURES / "d3dna-conv.ckpt")
    after = set(torch.serialization.get_safe_globals())
    assert after == before
    assert not after & set(plain_data_globals())
    with pytest.raises(Exception, match="DictConfig"):
        torch.load(FIXTURES / "d3dna-conv.ckpt", weights_only=True)


def test_lightnings_attribute_dict_needs_trust_and_is_named(tmp_path):
    # torch's unpickler sets items on dict, OrderedDict and Counter only, never a subclass
    from lightning.fabric.utilities.data import AttributeDict

    path = tmp_path / "hparams.ckpt"
    torch.save({"hyper_parameters": AttributeDict(lr=0.1, data=Path("x.h5"))}, path)
    with pytest.raises(
        UntrustedFileError, match=r"lightning\.fabric\.utilities\.data\.AttributeDict"
    ):
        safe_load(path)
    assert safe_load(path, trusted=True)["hyper_parameters"].lr == 0.1


class _Runs:
    """Pickles as a call of `func(*args)`: what a malicious file does."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


class Foo:
    """A class of the script that saved the file (``__main__.Foo``)."""


@pytest.mark.parametrize(
    ("obj", "named"),
    [(_Runs(builtins.exec, "open('PWNED', 'w')"), "builtins.exec"), (Foo(), "__main__.Foo")],
)
def test_a_file_that_names_code_is_refused_by_name_and_runs_nothing(
    tmp_path, monkeypatch, obj, named
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(Foo, "__module__", "__main__")
    monkeypatch.setattr(sys.modules["__main__"], "Foo", Foo, raising=False)
    path = tmp_path / "model.ckpt"
    torch.save({"state_dict": {"w": torch.ones(2)}, "payload": obj}, path)
    message = (
        f"refusing to load checkpoint {str(path)!r}: it holds {named}, which is not plain data, "
        f"so loading it would run code named by the file (torch.load(weights_only=True) allows "
        f"only tensors and plain data). Trust it if you must"
    )
    with pytest.raises(UntrustedFileError, match=f"^{re.escape(message)}$") as error:
        safe_load(path, trust_hint="Trust it if you must")
    assert error.value.refused == named
    assert "corrupt" not in str(error.value)
    assert not (tmp_path / "PWNED").exists()


def test_a_refused_checkpoint_tells_the_d3_user_how_to_proceed(toy, tmp_path):
    path = tmp_path / "model.ckpt"
    torch.save({"payload": _Runs(builtins.eval, "1")}, path)
    with pytest.raises(UntrustedFileError) as error:
        load_checkpoint(path)
    assert "it holds builtins.eval, which is not plain data" in str(error.value)
    assert "pass --trust-checkpoint (trusted=True in Python)" in str(error.value)


def test_a_file_of_random_bytes_is_unreadable_and_named(tmp_path):
    path = tmp_path / "noise.ckpt"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(UnreadableFileError, match=re.escape(f"{str(path)!r}: not a PyTorch file")):
        safe_load(path)


def test_a_truncated_d3dna_file_is_unreadable_and_says_so(tmp_path):
    data = (FIXTURES / "d3dna-conv.ckpt").read_bytes()
    path = tmp_path / "half.ckpt"
    path.write_bytes(data[: len(data) // 2])
    message = f"cannot read checkpoint {str(path)!r}: a truncated zip archive: its end"
    with pytest.raises(UnreadableFileError, match=f"^{re.escape(message)}"):
        safe_load(path, trusted=True)


def test_every_allowed_global_is_listed_in_the_docs():
    docs = (Path(__file__).parents[3] / "docs" / "checkpoint-formats.md").read_text()
    for module, name in PLAIN_DATA_GLOBALS:
        assert f"`{module}.{name}`" in docs, f"{module}.{name}"


def test_d3_sample_and_convert_take_the_real_files_without_trust(toy, tmp_path, capsys):
    from d3_core.cli.main import main

    labels = tmp_path / "labels.tsv"
    labels.write_text("copies\n1.0\n")
    for name in ("d3dna-transformer.ckpt", "d3dna-conv.ckpt", "lightning-path.ckpt"):
        out = tmp_path / name
        argv = ["sample", "--checkpoint", str(FIXTURES / name), "--labels", str(labels),
                "--out", str(out), "--num-samples", "2", "--steps", "2", "--no-progress"]  # fmt: skip
        assert main(argv) == 0, capsys.readouterr().err
        provenance = json.loads((out / "provenance.json").read_text())
        assert provenance["checkpoint_format"] == FILES[name][0]
    converted = tmp_path / "c.d3.ckpt"
    assert main(["convert", str(FIXTURES / "lightning-dictconfig.ckpt"), "--out",
                 str(converted)]) == 0  # fmt: skip
    assert load_checkpoint(converted).format == "d3"
