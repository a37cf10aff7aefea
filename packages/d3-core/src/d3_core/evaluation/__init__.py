"""Evaluation: metrics of designs, conditional fidelity, reports, plots, guidance sweeps."""
