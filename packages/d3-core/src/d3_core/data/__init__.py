"""Datasets: the training data module, one-hot split files and planted-motif synthetic data."""
