"""Tests of the packaged DeepSTARR configs: every preset resolves against d3-core's schema."""

from d3_core.testing.package_conformance import PresetConformance


class TestDeepSTARRPresets(PresetConformance):
    name = "deepstarr"
    paper_training = {  # noqa: RUF012 (a declaration, read only)
        "batch_size": 256,
        "lr": 3e-4,
        "warmup_steps": 2500,
        "max_steps": 1_000_000,
        "ema_decay": 0.9999,
        "grad_clip": 1.0,
    }
