"""d3-mpra: the MPRA dataset plugin for d3 (200 bp, three global cell-line labels)."""

__version__ = "0.7.0"
