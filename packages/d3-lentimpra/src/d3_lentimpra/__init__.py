"""d3-lentimpra: the lentiMPRA dataset plugin for d3 (230 bp, one global activity of one cell
line, K562 or HepG2)."""

__version__ = "0.1.1"
