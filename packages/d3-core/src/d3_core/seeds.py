"""Seeds derived from integers, for randomness indexed by (run seed, step, rank, sequence)."""

from __future__ import annotations

import numpy as np

__all__ = ["step_seed"]


def step_seed(*parts: int) -> int:
    """A 63-bit seed derived from integers (run seed, step, rank, sequence index...), well mixed.

    Equal parts give equal seeds on every machine; nearby parts give unrelated seeds.
    """
    state = np.random.SeedSequence([int(p) for p in parts]).generate_state(2, np.uint64)
    return int(state[0] >> 1)
