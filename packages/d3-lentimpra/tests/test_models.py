"""Tests of the lentiMPRA score-model variants: they accept only lentiMPRA-shaped configs."""

from d3_core.testing.package_conformance import ScoreModelVariantConformance


class TestLentiMPRAVariants(ScoreModelVariantConformance):
    name = "lentimpra"
    title = "lentiMPRA"
