"""Seeds derived from integers, for randomness indexed by (run seed, step, rank, sequence).

`check_seed` is the one rule for a user's seed (``--seed``, ``--first-index``): a non-negative
integer, so that ``step_seed`` can derive from it and the same number means the same draws
everywhere.
"""

from __future__ import annotations

import numpy as np

from d3_core.errors import D3ConfigError

__all__ = ["check_seed", "step_seed"]

MAX_SEED = 2**63 - 1
"""The largest seed accepted (torch's generators take 64-bit seeds)."""


def check_seed(seed: object, *, option: str = "seed") -> int:
    """Returns `seed` as an int, or refuses it.

    Args:
        seed: A seed or index from the user.
        option: Its name in messages (``--seed``).

    Raises:
        D3ConfigError: Not an integer, negative, or above 2**63 - 1.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise D3ConfigError(f"{option} must be a whole number >= 0, got {seed!r}")
    if not 0 <= int(seed) <= MAX_SEED:
        raise D3ConfigError(f"{option} must be between 0 and 2**63 - 1, got {int(seed)}")
    return int(seed)


def step_seed(*parts: int) -> int:
    """A 63-bit seed derived from integers (run seed, step, rank, sequence index...), well mixed.

    Equal parts give equal seeds on every machine; nearby parts give unrelated seeds.

    Raises:
        D3ConfigError: A part is negative.
    """
    values = [int(p) for p in parts]
    if any(v < 0 for v in values):
        raise D3ConfigError(f"seeds and indices must be >= 0, got {tuple(values)}")
    state = np.random.SeedSequence(values).generate_state(2, np.uint64)
    return int(state[0] >> 1)
