"""Tests of the packaged DeepSTARR configs: every preset resolves against d3-core's schema."""

from __future__ import annotations

from importlib import resources

import pytest

from d3_core.config import resolve_config

ARCHS = ("transformer", "conv")
PRESETS = ("paper", "cpu")


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_is_a_packaged_file_that_resolves(arch, preset):
    assert (resources.files("d3_deepstarr.configs") / arch / f"{preset}.yaml").is_file()
    cfg = resolve_config("deepstarr", arch, preset=preset)
    assert cfg.dataset.name == "deepstarr"
    assert cfg.model.architecture == arch


@pytest.mark.parametrize("arch", ARCHS)
def test_the_paper_preset_trains_as_the_research_runs(arch):
    training = resolve_config("deepstarr", arch, preset="paper").training
    assert (training.batch_size, training.lr, training.warmup_steps) == (256, 3e-4, 2500)
    assert training.max_steps == 1_000_000
    assert (training.ema_decay, training.grad_clip) == (0.9999, 1.0)


@pytest.mark.parametrize("arch", ARCHS)
def test_the_cpu_preset_is_small(arch):
    cfg = resolve_config("deepstarr", arch, preset="cpu")
    assert cfg.training.batch_size == 32
    assert cfg.training.max_steps <= 2000
    assert cfg.sampling.steps <= 128
