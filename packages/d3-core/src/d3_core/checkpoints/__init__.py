"""Checkpoint files: every format a user owns, read safely and strictly by name."""
