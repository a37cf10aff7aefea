"""Tests of the MPRA score-model variants: they accept only MPRA-shaped configs."""

from d3_core.testing.package_conformance import ScoreModelVariantConformance


class TestMPRAVariants(ScoreModelVariantConformance):
    name = "mpra"
    title = "MPRA"
