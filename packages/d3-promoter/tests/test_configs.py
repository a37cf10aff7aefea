"""Tests of the packaged Promoter configs: every preset resolves and says what it promises."""

from __future__ import annotations

import pytest
import torch

from d3_core.config import model_sizes, resolve_config
from d3_core.registry import load_dataset_plugin

ARCHS = ("transformer", "conv")


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("preset", ["paper", "cpu"])
def test_every_preset_resolves_for_1024_bp_per_position_cage(arch, preset):
    cfg = resolve_config("promoter", arch, preset=preset)
    assert cfg.model.architecture == arch
    assert cfg.dataset.sequence_length == 1024
    assert list(cfg.dataset.label_names) == ["CAGE"]
    assert cfg.dataset.label_mode == "per_position"


@pytest.mark.parametrize("arch", ARCHS)
def test_the_paper_presets_train_as_the_research_runs(arch):
    tr = resolve_config("promoter", arch, preset="paper").training
    assert (tr.batch_size, tr.lr, tr.warmup_steps, tr.grad_clip) == (128, 3e-4, 2500, 1.0)
    assert (tr.ema_decay, tr.weight_decay, list(tr.betas)) == (0.9999, 0.0, [0.9, 0.999])


def test_the_paper_transformer_splits_its_batch_into_micro_batches():
    tr = resolve_config("promoter", "transformer", preset="paper").training
    assert tr.micro_batch == 32 and tr.batch_size % tr.micro_batch == 0


@pytest.mark.parametrize("arch", ARCHS)
def test_a_cpu_preset_is_small_and_short(arch):
    plugin = load_dataset_plugin("promoter")
    cfg = resolve_config("promoter", arch, preset="cpu")
    with torch.device("meta"):
        model = plugin.score_model_class(arch)(model_sizes(cfg, plugin))
    assert sum(p.numel() for p in model.parameters()) < 1_000_000
    assert cfg.training.batch_size <= 16
    assert cfg.training.max_steps <= 1000
    assert 32 <= cfg.sampling.steps <= 64


def test_the_cpu_conv_receptive_field_spans_the_sequence():
    sizes = model_sizes(
        resolve_config("promoter", "conv", preset="cpu"), load_dataset_plugin("promoter")
    )
    half_width = (sizes.kernel_size // 2) * (
        1 + sum(sizes.dilation(k) for k in range(sizes.n_blocks))
    )
    assert half_width >= 1024
