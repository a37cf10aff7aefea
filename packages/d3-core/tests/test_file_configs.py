"""A config read from a file never has a resolver run (docs/checkpoint-formats.md#stored-configs):
``${oc.env:...}`` in a checkpoint or a research run's config.yaml stays text, end to end."""

from pathlib import Path

import pytest
import torch
import yaml

from d3_core.checkpoints.digest import add_content_digest
from d3_core.checkpoints.load import load_checkpoint, read_checkpoint, read_contents
from d3_core.checkpoints.native import write_checkpoint
from d3_core.config import config_from_plain
from d3_core.config.schema import escape_interpolations, file_config
from d3_core.testing.checkpoint_writers import write_research

SECRET = "s3cr3t-value-of-the-environment"
FIXTURES = Path(__file__).parent / "fixtures"

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def secret(monkeypatch):
    monkeypatch.setenv("D3_TEST_SECRET", SECRET)
    return "${oc.env:D3_TEST_SECRET}"


def _sample(checkpoint: Path, out: Path, tmp_path: Path, column: str = "copies") -> list[Path]:
    from d3_core.cli.main import main

    labels = tmp_path / "labels.tsv"
    labels.write_text(f"{column}\n1.0\n")
    argv = ["sample", "--checkpoint", str(checkpoint), "--labels", str(labels), "--out",
            str(out), "--num-samples", "2", "--steps", "2", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    return sorted(out.iterdir())


def _assert_secret_in_no_file(files: list[Path]) -> None:
    assert len(files) >= 4  # samples.fasta, samples.npz, labels.tsv, provenance.json
    for file in files:
        assert SECRET.encode() not in file.read_bytes(), file.name


def test_d3_sample_copies_no_environment_secret_from_a_d3_checkpoint(toy, tmp_path, secret):
    d3_file = write_checkpoint(read_contents(FIXTURES / "d3dna-conv.ckpt"), tmp_path / "m.ckpt")
    state = torch.load(d3_file, weights_only=True)
    state["hyper_parameters"]["cfg"]["dataset"]["label_names"] = [secret]
    state["hyper_parameters"]["cfg"]["dataset"]["data"] = f"/data/{secret}.npz"
    torch.save(add_content_digest(state), d3_file)  # as an edited file d3 wrote would be
    loaded = load_checkpoint(d3_file)
    assert list(loaded.cfg.dataset.label_names) == [secret]  # the text, not the variable
    assert loaded.cfg.dataset.data == f"/data/{secret}.npz"
    files = _sample(d3_file, tmp_path / "out", tmp_path, column=secret)
    _assert_secret_in_no_file(files)
    assert secret in (tmp_path / "out" / "labels.tsv").read_text()


def test_resuming_reads_the_stored_config_without_resolving_it(toy, tmp_path, secret):
    d3_file = write_checkpoint(read_contents(FIXTURES / "d3dna-conv.ckpt"), tmp_path / "m.ckpt")
    state = torch.load(d3_file, weights_only=True)
    state["hyper_parameters"]["cfg"]["dataset"]["data"] = secret
    torch.save(add_content_digest(state), d3_file)
    stored = read_checkpoint(d3_file)["hyper_parameters"]["cfg"]
    assert config_from_plain(stored).dataset.data == secret


def test_a_research_config_follows_its_own_references_and_runs_no_resolver(toy, tmp_path, secret):
    written = write_research(tmp_path / "Conv", arch="conv", dataset="toy", signal=1, length=32,
                             label_classes=5, label_emb_width=1)  # fmt: skip
    config_file = written.run_dir / "hydra" / "config.yaml"
    config = yaml.safe_load(config_file.read_text())
    config["data"]["valid"] = "${data.train}"  # a reference to the same config: followed
    config["model"]["length"] = "${data.length}"
    config["data"]["length"] = 32
    config["model"]["name"] = secret  # a resolver: kept as text
    config_file.write_text(yaml.safe_dump(config))
    contents = read_contents(written.run_dir)
    assert contents.source_config["model"]["length"] == 32
    assert contents.source_config["model"]["name"] == secret
    assert any("kept model.name of" in note for note in contents.notes)
    converted = write_checkpoint(contents, tmp_path / "c.d3.ckpt")
    assert SECRET.encode() not in converted.read_bytes()
    _assert_secret_in_no_file(_sample(converted, tmp_path / "out", tmp_path))


def test_file_config_keeps_everything_but_plain_references_as_text():
    notes: list[str] = []
    plain = {
        "a": {"b": 3, "c": "${a.b}", "d": "x${a.b}y", "e": "${oc.env:HOME}", "f": "${missing}"},
        "g": "${g}",
        "h": "\\${a.b}",
    }
    result = file_config(plain, "run.yaml", notes)
    assert result["a"] == {"b": 3, "c": 3, "d": "x3y", "e": "${oc.env:HOME}", "f": "${missing}"}
    assert result["g"] == "${g}" and result["h"] == "\\${a.b}"
    assert notes == [
        "kept a.e, a.f, g of run.yaml as literal text: d3 never resolves an interpolation "
        "other than a reference to a key of the same config"
    ]
    assert plain["a"]["c"] == "${a.b}"  # the input is not changed


def test_escaped_text_comes_back_from_omegaconf_unresolved(monkeypatch):
    from omegaconf import OmegaConf

    monkeypatch.setenv("D3_TEST_SECRET", SECRET)
    cfg = OmegaConf.create(escape_interpolations({"k": ["${oc.env:D3_TEST_SECRET}", "${k}"]}))
    assert OmegaConf.to_container(cfg, resolve=True) == {"k": ["${oc.env:D3_TEST_SECRET}", "${k}"]}
