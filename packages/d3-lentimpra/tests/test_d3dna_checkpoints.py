"""d3-dna's own lentiMPRA checkpoints (docs/checkpoint-formats.md#packaged-release-checkpoints):
both architectures load through d3's normal path without trust as dataset ``lentimpra``, give
d3-dna's own log-scores on a stored input, and sample through ``d3 sample``.

The fixtures were written by d3-dna 0.1.3's ``D3LightningModule`` and Lightning, with d3-dna's
output saved beside each (``make_d3dna_fixtures.py``), not by d3.
"""

from pathlib import Path

import numpy as np
import pytest
import torch

from d3_core.checkpoints import load_checkpoint
from d3_core.checkpoints.load import load_model_local

FIXTURES = Path(__file__).parent / "fixtures"
ARCHS = {"transformer": "transformer", "conv": "conv"}


def _stored(arch: str) -> dict[str, np.ndarray]:
    with np.load(FIXTURES / f"d3dna-lentimpra-{arch}-output.npz") as data:
        return dict(data)


@pytest.mark.parametrize("arch", ARCHS)
def test_a_d3dna_checkpoint_loads_without_trust_as_lentimpra(arch):
    loaded = load_checkpoint(FIXTURES / f"d3dna-lentimpra-{arch}.ckpt")
    assert (loaded.format, loaded.architecture, loaded.dataset) == ("packaged", arch, "lentimpra")
    assert loaded.plugin.sequence_length == 230 and loaded.plugin.label_width == 1


@pytest.mark.parametrize("arch", ARCHS)
def test_our_model_gives_d3dnas_log_scores_on_its_stored_input(arch):
    stored = _stored(arch)
    model, _, _ = load_model_local(FIXTURES / f"d3dna-lentimpra-{arch}.ckpt")
    tokens = torch.from_numpy(stored["tokens"]).long()
    expected = torch.from_numpy(stored["log_score"])
    if arch == "conv":
        # d3 zeroes the current token's entry, which d3-dna's conv leaves as computed
        # (docs/models.md#convolutional); every other entry must agree.
        expected = expected.scatter(-1, tokens[..., None], 0.0)
    with torch.no_grad():
        ours = model.eval()(tokens, torch.from_numpy(stored["labels"]),
                            torch.from_numpy(stored["sigma"]))  # fmt: skip
    error = float((ours.float() - expected).abs().max())
    print(f"d3-dna lentiMPRA {arch}: max abs error {error:.3g} (scale {expected.abs().max():.3g})")
    assert ours.shape == (4, 230, 4)
    assert expected.std() > 0.1  # a real output, not near-zero weights
    assert error <= 1e-5


def test_d3_sample_runs_on_each_d3dna_checkpoint(tmp_path):
    from d3_core.cli.main import main
    from d3_core.registry import load_dataset_plugin

    (name,) = load_dataset_plugin("lentimpra").label_names
    labels = tmp_path / "labels.tsv"
    labels.write_text(f"{name}\n0.5\n-1.0\n")
    for arch in ARCHS:
        out = tmp_path / arch
        argv = ["sample", "--dataset", "lentimpra", "--checkpoint",
                str(FIXTURES / f"d3dna-lentimpra-{arch}.ckpt"), "--labels", str(labels),
                "--out", str(out), "--steps", "4", "--no-progress"]  # fmt: skip
        assert main(argv) == 0, arch
        with np.load(out / "samples.npz") as samples:
            tokens, sampled_labels = samples["tokens"], samples["labels"]
        # one 230-bp sequence per labels row, with its row's label
        assert tokens.shape == (2, 230) and tokens.max() <= 3, arch
        assert sampled_labels[:, 0].tolist() == [0.5, -1.0], arch
        assert (out / "samples.fasta").read_text().count(">") == 2, arch
