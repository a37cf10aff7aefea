"""d3-deepstarr: the DeepSTARR dataset plugin for d3 (249 bp, global labels Dev and Hk)."""

__version__ = "0.6.0"
