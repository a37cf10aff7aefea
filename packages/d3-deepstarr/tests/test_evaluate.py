"""The original evaluation script drives `d3 evaluate` (every checkpoint format and another tool's
NPZ are covered by d3-core's conformance tests in test_plugin.py)."""

import json
import subprocess
import sys
from pathlib import Path

import torch

from d3_core.config import resolve_config
from d3_core.training.run import RunDir, train
from d3_deepstarr.oracle import ORACLE

REPO = Path(__file__).resolve().parents[3]


def test_the_original_evaluation_script_wraps_d3_evaluate(tiny_file, tmp_path):
    torch.manual_seed(0)
    oracle = tmp_path / "DeepSTARR.ckpt"
    weights = {f"model.{k}": v for k, v in ORACLE.build().state_dict().items()}
    torch.save({"epoch": 1, "state_dict": weights}, oracle)
    cfg = resolve_config("deepstarr", "conv", overrides=[
        f"dataset.data={tiny_file}", "training.max_steps=2", "training.num_workers=0"])  # fmt: skip
    checkpoint = train(cfg, RunDir(tmp_path / "ours"), progress=False).last_checkpoint
    script = REPO / "scripts" / "run_evaluate_unified.py"
    result = subprocess.run(
        [sys.executable, str(script), "--dataset", "deepstarr", "--arch", "Conv", "--model_path",
         str(checkpoint), "--oracle_path", str(oracle), "--data_path", str(tiny_file),
         "--num_samples", "24", "--steps", "4", "--kmer", "3", "--no-discriminator",
         "--out", str(tmp_path / "eval"), "--no-progress"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert report["dataset"] == "deepstarr"
    assert report["checkpoint"]["format"] == "d3"
