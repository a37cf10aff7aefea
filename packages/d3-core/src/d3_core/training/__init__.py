"""Training: the optimizer step, the Lightning module, EMA, and a ``d3 train`` run."""
