"""d3-promoter: the Promoter dataset plugin for d3 (1024 bp, per-position CAGE label)."""

__version__ = "0.5.0"
