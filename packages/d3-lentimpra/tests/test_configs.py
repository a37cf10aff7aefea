"""Tests of the packaged lentiMPRA configs: every preset resolves against d3-core's schema."""

from d3_core.testing.package_conformance import PresetConformance


class TestLentiMPRAPresets(PresetConformance):
    name = "lentimpra"
    paper_training = {  # noqa: RUF012 (a declaration, read only; d3-dna's example configs)
        "batch_size": 256,
        "lr": 3e-4,
        "warmup_steps": 2500,
        "max_steps": 250_000,
        "ema_decay": 0.9999,
        "grad_clip": 1.0,
    }
    # The Transformer CPU preset trains 3,000 steps (about 11 minutes on 2 cores): at 1,500 it had
    # hardly learned the label (the preset's comment has the measurements).
    cpu_limits = {"batch_size": 32, "max_steps": 3000}  # noqa: RUF012 (a declaration, read only)
