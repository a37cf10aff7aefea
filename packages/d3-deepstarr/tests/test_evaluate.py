"""`d3 evaluate` for DeepSTARR from every checkpoint format and from another tool's NPZ."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from d3_core.checkpoint_fixtures import write_converted, write_packaged, write_research
from d3_core.cli import main
from d3_core.config import resolve_config
from d3_core.train import RunDir, train
from d3_deepstarr.oracle import ORACLE
from d3_deepstarr.synthetic import write_synthetic

REPO = Path(__file__).resolve().parents[3]
FACTS = {"dataset": "deepstarr", "signal": 2, "length": 249, "label_classes": 5}
OUTPUTS = ("report.json", "report.md", "requested_vs_oracle.png", "distributions_oracle.png",
           "kmer_spectrum_k3.png")  # fmt: skip


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Data, a published-layout oracle checkpoint, and checkpoints of all four formats."""
    root = tmp_path_factory.mktemp("evaluate")
    data = write_synthetic(root / "tiny.h5", seed=0, size="tiny")
    torch.manual_seed(0)
    oracle = root / "DeepSTARR.ckpt"
    weights = {f"model.{k}": v for k, v in ORACLE.build().state_dict().items()}
    torch.save({"epoch": 1, "state_dict": weights}, oracle)
    cfg = resolve_config("deepstarr", "conv", overrides=[
        f"dataset.data={data}", "training.max_steps=2", "training.num_workers=0"])  # fmt: skip
    ours = train(cfg, RunDir(root / "ours"), progress=False).last_checkpoint
    research = write_research(root / "zoo" / "deepstarr" / "Conv", arch="conv",
                              label_emb_width=2, **FACTS)  # fmt: skip
    packaged = write_packaged(root / "release.ckpt", arch="transformer", dataset="deepstarr",
                              signal=2, length=249).path  # fmt: skip
    converted = write_converted(research, root / "converted.ckpt", dataset="deepstarr",
                                arch="conv")  # fmt: skip
    checkpoints = {"d3": ours, "research": research.run_dir, "packaged": packaged,
                   "converted": converted}  # fmt: skip
    return data, oracle, checkpoints


def _evaluate(inputs, out: Path, *extra: str) -> dict:
    data, oracle, _ = inputs
    argv = ["evaluate", "--dataset", "deepstarr", "--data", str(data), "--oracle", str(oracle),
            "--num-samples", "24", "--steps", "4", "--kmer", "3", "--out", str(out),
            "--no-progress", *extra]  # fmt: skip
    assert main(argv) == 0
    for name in OUTPUTS:
        assert (out / name).is_file(), name
    return json.loads((out / "report.json").read_text())


@pytest.mark.parametrize("fmt", ["d3", "research", "packaged", "converted"])
def test_d3_evaluate_runs_from_every_checkpoint_format(inputs, tmp_path, fmt):
    path = inputs[2][fmt]
    trust = ["--trust-checkpoint"] if fmt in ("packaged", "converted") else []
    report = _evaluate(inputs, tmp_path, "--model-path", str(path), *trust)
    assert report["checkpoint"]["format"] == fmt
    samples = report["metrics"]["samples"]["mean"]
    for key in ("sp_mse.oracle", "ks.oracle", "js.k3", "auroc", "memorisation.mean", "diversity"):
        assert np.isfinite(samples[key]), key
    assert report["metrics"]["parameters"]["kmer_k"] == [3]


def test_d3_evaluate_scores_another_tools_npz(inputs, tmp_path):
    rng = np.random.default_rng(0)
    onehot = np.eye(4, dtype=np.float32)[rng.integers(0, 4, size=(24, 249))]  # (N, L, 4)
    np.savez(tmp_path / "theirs.npz", arr_0=onehot)
    report = _evaluate(inputs, tmp_path / "eval", "--samples", str(tmp_path / "theirs.npz"))
    assert report["checkpoint"] is None and report["sampling"] is None
    # Uniform random sequences score as the random-sequence ceiling does.
    ceiling = report["metrics"]["baselines"]["random_sequences"]["sp_mse.oracle"]
    assert report["metrics"]["samples"]["mean"]["sp_mse.oracle"] == pytest.approx(ceiling, rel=0.5)


def test_a_second_run_with_the_same_seed_reproduces_the_numbers(inputs, tmp_path):
    path = str(inputs[2]["d3"])
    first = _evaluate(inputs, tmp_path / "a", "--model-path", path, "--replicates", "2")
    second = _evaluate(inputs, tmp_path / "b", "--model-path", path, "--replicates", "2")
    assert first["metrics"] == second["metrics"]
    assert first["scores"] == second["scores"]
    assert len(first["metrics"]["samples"]["replicates"]) == 2
    assert (tmp_path / "a" / "samples-r1" / "samples.npz").is_file()


def test_the_original_evaluation_script_wraps_d3_evaluate(inputs, tmp_path):
    data, oracle, checkpoints = inputs
    script = REPO / "scripts" / "run_evaluate_unified.py"
    result = subprocess.run(
        [sys.executable, str(script), "--dataset", "deepstarr", "--arch", "Conv", "--model_path",
         str(checkpoints["d3"]), "--oracle_path", str(oracle), "--data_path", str(data),
         "--num_samples", "24", "--steps", "4", "--kmer", "3", "--no-discriminator",
         "--out", str(tmp_path / "eval"), "--no-progress"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "eval" / "report.json").read_text())["dataset"] == "deepstarr"
