"""Tests of the DeepSTARR score-model variants: they accept only DeepSTARR-shaped configs."""

from d3_core.testing.package_conformance import ScoreModelVariantConformance


class TestDeepSTARRVariants(ScoreModelVariantConformance):
    name = "deepstarr"
    title = "DeepSTARR"
