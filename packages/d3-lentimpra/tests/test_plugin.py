"""Tests that the installed d3-lentimpra registers a conforming plugin that provides everything,
and that the cell line a run names is checked."""

from typing import ClassVar

import pytest

from d3_core.errors import D3ConfigError
from d3_core.testing.conformance import DatasetPluginConformance
from d3_lentimpra.plugin import CELLS, check_cell


class TestLentiMPRAPlugin(DatasetPluginConformance):
    name = "lentimpra"
    distribution = "d3-lentimpra"
    sequence_length = 230
    label_names = ("K562",)
    label_mode = "global"
    # lentiMPRA has no research checkpoints (docs/checkpoint-formats.md#research-checkpoints);
    # these declare the research layout written for a one-label dataset, which d3 still reads.
    research_label_classes = 2
    research_conv_label_width: ClassVar[dict[str, int | None]] = {"transformer": 1, "conv": 1}
    research_ema_lengths: ClassVar[dict[str, int]] = {"transformer": 264, "conv": 264}
    # docs/models.md#dataset-variants: d3-dna's example sizes at 230 bp, one label
    paper_parameters: ClassVar[dict[str, int]] = {"transformer": 92_388_356, "conv": 12_653_914}
    lightning_module_name = "LentiMPRAD3LightningModule"
    score_model_names: ClassVar[dict[str, str]] = {
        "transformer": "LentiMPRATransformerScoreModel",
        "conv": "LentiMPRAConvScoreModel",
    }

    @pytest.mark.parametrize("arch", ["transformer", "conv"])
    def test_a_paper_size_research_file_has_spec_layout_and_fits_the_paper_model(self, arch):
        pytest.skip("no research checkpoints were published for lentiMPRA, so no paper layout")


@pytest.mark.parametrize("cell", CELLS)
def test_both_published_cell_lines_are_accepted(cell):
    assert check_cell([cell]) == cell


@pytest.mark.parametrize(
    ("names", "hint"),
    [(["hepg2"], "did you mean [HepG2]? "), (["WTC11"], ""), (["K562", "HepG2"], "")],
)
def test_a_label_that_names_no_cell_line_is_refused_with_the_fix(names, hint):
    message = (
        f"config dataset.label_names = {names!r} names no lentiMPRA cell line; {hint}the label "
        f"of a lentimpra run is its cell line: use dataset.label_names=[K562] (the default) or "
        f"dataset.label_names=[HepG2]"
    )
    with pytest.raises(D3ConfigError) as caught:
        check_cell(names)
    assert str(caught.value) == message


def test_the_lightning_module_refuses_an_unknown_cell_and_takes_hepg2():
    from d3_core.config import resolve_config
    from d3_lentimpra.lightning import LentiMPRAD3LightningModule

    cfg = resolve_config("lentimpra", "conv", overrides=["dataset.label_names=[SK-N-SH]"])
    with pytest.raises(D3ConfigError, match=r"\['SK-N-SH'\] names no lentiMPRA cell line"):
        LentiMPRAD3LightningModule(cfg)
    cfg = resolve_config("lentimpra", "conv", overrides=["dataset.label_names=[HepG2]"])
    assert list(LentiMPRAD3LightningModule(cfg).cfg.dataset.label_names) == ["HepG2"]


def test_d3_train_with_an_unknown_cell_is_one_error_line_and_writes_nothing(
    tiny_file, tmp_path, capsys
):
    from d3_core.cli.main import main

    out = tmp_path / "run"
    argv = ["train", "--dataset", "lentimpra", "--arch", "Conv", "--data", str(tiny_file),
            "--out", str(out), "--no-progress", "dataset.label_names=[hepg2]",
            "training.max_steps=1", "training.num_workers=0"]  # fmt: skip
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("d3: error: ") and err.count("\n") == 1, err
    assert "did you mean [HepG2]?" in err
    assert not (out / "checkpoints").exists()
