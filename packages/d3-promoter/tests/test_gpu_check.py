"""`python -m d3_core.gpu_check --dry-run`: the GPU readiness check runs on the CPU, so it does not rot."""

from __future__ import annotations

import pytest

from d3_core import gpu_check


def test_the_gpu_check_dry_run_passes_every_check_on_the_cpu(capsys):
    assert gpu_check.main(["--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    results = {line.split()[1]: line for line in lines[1:]}
    assert set(results) == {"train", "sample", "agree"}
    assert all(line.startswith("ok ") for line in results.values()), lines
    assert "tokens_per_s" in results["train"] and "mfu" in results["train"]
    assert "max_abs_error 0" in results["agree"]  # the same file on the same device


def test_the_gpu_check_without_a_gpu_says_how_to_run_it(capsys):
    if gpu_check.torch.cuda.is_available():
        pytest.skip("a CUDA device is visible")
    assert gpu_check.main([]) == 2
    assert "--dry-run" in capsys.readouterr().err
