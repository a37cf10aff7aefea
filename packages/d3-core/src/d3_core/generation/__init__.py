"""Generation: sequences from a checkpoint for given labels, and constrained design."""
