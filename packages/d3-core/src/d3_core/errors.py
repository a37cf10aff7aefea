"""Exceptions raised for user errors; each message says what was wrong and how to fix it."""


class D3Error(Exception):
    """Base class of every error d3 raises on purpose."""


class D3ConfigError(D3Error, ValueError):
    """A configuration value or combination is not allowed."""


class D3InputError(D3Error, ValueError):
    """A tensor or array argument has the wrong shape, dtype or range."""


class CheckpointError(D3Error, ValueError):
    """A checkpoint cannot be read, or does not match the model it is loaded into."""


class PluginError(D3Error, LookupError):
    """A dataset plugin is missing, duplicated or incomplete."""


class TrainingDiverged(D3Error, ArithmeticError):
    """A training step met a non-finite loss or gradient; the weights were not updated."""
