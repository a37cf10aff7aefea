"""The Promoter oracle Sei (docs/oracles.md): the published network, its output names and a strict
loader.

Sei (Chen et al. 2022) maps a one-hot (N, 4, 4096) sequence to 21,907 chromatin profiles. The
published weights have ~890 M parameters (889,979,983; ~3.6 GB in float32) and are read by name
from ``best.sei.model.pth.tar`` (``state_dict`` keys under ``module.model.`` or ``model.``). The
Promoter readout is the mean of the 2,350 outputs whose assay in ``target.sei.names`` is H3K4me3,
for a 1024-bp sequence centred in 4096 positions with 0.25 in all four channels on each side.

The package: ``network`` (the layers), ``names`` (``target.sei.names``), ``oracle`` (the loaded
oracle's readout) and ``loading`` (the strict loader). Every name is importable from here.
"""

from d3_promoter.sei.loading import SEI_PREFIXES, load_sei
from d3_promoter.sei.names import READOUT_ASSAY, SeiTarget, assay_indices, read_sei_names
from d3_promoter.sei.network import (
    SEI_LENGTH,
    BSplineTransform,
    Sei,
    StrandAveraged,
    bspline_basis,
    pad_for_sei,
)
from d3_promoter.sei.oracle import SeiOracle

__all__ = [
    "READOUT_ASSAY",
    "SEI_LENGTH",
    "SEI_PREFIXES",
    "BSplineTransform",
    "Sei",
    "SeiOracle",
    "SeiTarget",
    "StrandAveraged",
    "assay_indices",
    "bspline_basis",
    "load_sei",
    "pad_for_sei",
    "read_sei_names",
]
