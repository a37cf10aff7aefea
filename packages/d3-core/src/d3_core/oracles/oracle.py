"""TEMPORARY: the names of d3_core.oracles, while callers move to it."""

from d3_core.oracles.model import *  # noqa: F403
from d3_core.oracles.model import __all__ as _m
from d3_core.oracles.spec import *  # noqa: F403
from d3_core.oracles.spec import __all__ as _s
from d3_core.oracles.training import *  # noqa: F403
from d3_core.oracles.training import __all__ as _t

__all__ = [*_m, *_s, *_t]
