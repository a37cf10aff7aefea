"""d3-core: conditional discrete diffusion (D3 / SEDD) for regulatory DNA."""

__version__ = "0.5.1"
