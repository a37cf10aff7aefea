"""``d3 design``: sequences for a requested activity, under constraints, ranked by an oracle.

A design request names a target per output (a number, or ``high``/``low``: the 90th/10th
percentile of the training labels), how many designs to return, and constraints a synthesis
order needs: positions held at given motifs, forbidden k-mers (e.g. restriction sites, both
strands), a GC range and a longest homopolymer. Candidates are sampled (guided as
`d3_core.diffusion.guidance.resolve_guidance` decides) in rounds until enough satisfy every constraint;
the accepted ones are ranked by the oracle's distance to the target.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from d3_core.data.synthetic import ALPHABET, decode, encode
from d3_core.errors import D3InputError

__all__ = [
    "Constraints",
    "DesignResult",
    "design",
    "longest_homopolymer",
    "parse_fixed",
    "parse_targets",
]

HIGH_QUANTILE, LOW_QUANTILE = 0.9, 0.1
"""What ``high`` and ``low`` targets mean: these quantiles of the training labels."""

_COMPLEMENT = str.maketrans("ACGT", "TGCA")
_KINDS = {"contains": "forbidden k-mer", "GC": "GC range", "homopolymer": "homopolymer"}


def parse_targets(
    items: Sequence[str], names: Sequence[str], train_labels: np.ndarray | None
) -> np.ndarray:
    """``NAME=VALUE`` items (VALUE a number, ``high`` or ``low``) as an (S,) target.

    Every label needs a target. ``high``/``low`` need the training labels.

    Raises:
        D3InputError: An unknown or missing name, a malformed item, or high/low without data.
    """
    given: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not value:
            raise D3InputError(f"--target {item!r} is not NAME=VALUE (e.g. Dev=high or Hk=-0.5)")
        if name not in names:
            raise D3InputError(f"--target {item!r}: unknown label {name!r}; labels: {list(names)}")
        given[name] = value.strip().lower()
    missing = [n for n in names if n not in given]
    if missing:
        raise D3InputError(
            f"give a --target for every label; missing {missing} (each NAME=number, high or low)"
        )
    target = np.empty(len(names), dtype=np.float32)
    for j, name in enumerate(names):
        value = given[name]
        if value in ("high", "low"):
            if train_labels is None:
                raise D3InputError(
                    f"--target {name}={value} is a quantile of the training labels: give --data"
                )
            q = HIGH_QUANTILE if value == "high" else LOW_QUANTILE
            target[j] = np.quantile(train_labels[:, j], q)
        else:
            try:
                target[j] = float(value)
            except ValueError:
                raise D3InputError(
                    f"--target {name}={value!r}: expected a number, high or low"
                ) from None
    return target


def parse_fixed(items: Sequence[str], length: int) -> tuple[np.ndarray, np.ndarray]:
    """``POS:SEQUENCE`` items (0-based start) as an (L,) bool mask and (L,) tokens.

    Raises:
        D3InputError: Malformed items, motifs that overrun the sequence or overlap differently.
    """
    mask = np.zeros(length, dtype=bool)
    tokens = np.zeros(length, dtype=np.int64)
    for item in items:
        pos, sep, seq = item.partition(":")
        try:
            start = int(pos)
            word = encode(seq).astype(np.int64)
        except Exception:
            raise D3InputError(f"--fix {item!r} is not POS:SEQUENCE (e.g. 100:TGACTCA)") from None
        if not sep or start < 0 or start + len(word) > length:
            raise D3InputError(f"--fix {item!r} does not fit a {length}-bp sequence")
        span = slice(start, start + len(word))
        clash = mask[span] & (tokens[span] != word)
        if clash.any():
            raise D3InputError(f"--fix {item!r} overlaps another fixed motif with other bases")
        mask[span], tokens[span] = True, word
    return mask, tokens


def longest_homopolymer(tokens: np.ndarray) -> np.ndarray:
    """(N,) length of the longest run of one base in each (N, L) sequence."""
    tokens = np.asarray(tokens)
    best = np.ones(len(tokens), dtype=np.int64)
    run = np.ones(len(tokens), dtype=np.int64)
    for i in range(1, tokens.shape[1]):
        run = np.where(tokens[:, i] == tokens[:, i - 1], run + 1, 1)
        best = np.maximum(best, run)
    return best


def gc_content(tokens: np.ndarray) -> np.ndarray:
    """(N,) fraction of C and G."""
    tokens = np.asarray(tokens)
    return ((tokens == 1) | (tokens == 2)).mean(1)


@dataclass(frozen=True)
class Constraints:
    """What every returned design must satisfy.

    Attributes:
        forbidden: k-mers that may not occur on either strand (e.g. GAATTC for EcoRI).
        gc: (min, max) GC fraction, or None.
        max_homopolymer: Longest allowed run of one base, or None.
    """

    forbidden: tuple[str, ...] = ()
    gc: tuple[float, float] | None = None
    max_homopolymer: int | None = None

    def __post_init__(self) -> None:
        for word in self.forbidden:
            encode(word)  # refuses letters other than ACGT
        if self.gc is not None and not 0.0 <= self.gc[0] <= self.gc[1] <= 1.0:
            raise D3InputError(f"--gc {self.gc}: expected MIN MAX with 0 <= MIN <= MAX <= 1")
        if self.max_homopolymer is not None and self.max_homopolymer < 1:
            raise D3InputError(f"--max-homopolymer must be >= 1, got {self.max_homopolymer}")

    @property
    def active(self) -> bool:
        """Whether any constraint is set."""
        return bool(self.forbidden) or self.gc is not None or self.max_homopolymer is not None

    def words(self) -> list[str]:
        """The forbidden words on both strands."""
        both = {w.upper() for w in self.forbidden}
        return sorted(both | {w.upper().translate(_COMPLEMENT)[::-1] for w in both})

    def violations(self, tokens: np.ndarray) -> list[list[str]]:
        """Per sequence, the constraints it breaks (empty when it satisfies all)."""
        tokens = np.asarray(tokens)
        out: list[list[str]] = [[] for _ in range(len(tokens))]
        strings = ["".join(ALPHABET[t] for t in row) for row in tokens] if self.forbidden else []
        for i, text in enumerate(strings):
            out[i] += [f"contains {w}" for w in self.words() if w in text]
        if self.gc is not None:
            for i, gc in enumerate(gc_content(tokens)):
                if not self.gc[0] <= gc <= self.gc[1]:
                    out[i].append(f"GC {gc:.3f} outside {self.gc[0]}-{self.gc[1]}")
        if self.max_homopolymer is not None:
            for i, run in enumerate(longest_homopolymer(tokens)):
                if run > self.max_homopolymer:
                    out[i].append(f"homopolymer of {run} > {self.max_homopolymer}")
        return out

    def describe(self) -> dict[str, Any]:
        return {"forbidden": self.words(), "gc": list(self.gc) if self.gc else None,
                "max_homopolymer": self.max_homopolymer}  # fmt: skip


@dataclass
class DesignResult:
    """The ranked designs and how they were found."""

    tokens: np.ndarray  # (n, L) uint8, best first
    predictions: np.ndarray | None  # (n, F) oracle predictions, or None without an oracle
    distance: np.ndarray | None  # (n,) Euclidean distance of prediction to target
    target: np.ndarray  # (S,)
    sampled: int  # candidates drawn
    accepted: int = 0  # candidates that satisfied every constraint
    rejected: dict[str, int] = field(default_factory=dict)  # constraint -> candidates failing it
    seconds: float = 0.0


def design(
    loaded: Any,
    target: np.ndarray,
    *,
    num_designs: int,
    constraints: Constraints,
    fixed: tuple[np.ndarray, np.ndarray] | None = None,
    oracle: Any = None,
    guidance: Any = None,
    guide: Any = None,
    oversample: float = 2.0,
    max_rounds: int = 10,
    seed: int = 0,
    steps: int = 128,
    predictor: str = "analytic",
    batch_size: int = 64,
    progress: bool = True,
) -> DesignResult:
    """Samples candidates for `target` until `num_designs` satisfy the constraints; ranks them.

    Args:
        loaded: The score model (`d3_core.checkpoints.load.load_checkpoint`).
        target: (S,) requested label.
        num_designs: Designs to return.
        constraints: What every design must satisfy.
        fixed: (mask (L,), tokens (L,)) positions held at given bases.
        oracle: Ranks the designs by its distance to the target (None: sampling order).
        guidance: `d3_core.diffusion.guidance.Guidance` settings; `guide` the oracle that guides.
        oversample: Candidates per round, as a multiple of the designs still missing.
        max_rounds: Rounds before giving up with the designs found so far.
        seed: Round r, candidate i uses seed (seed, r, i).
        steps, predictor, batch_size, progress: As `d3_core.generation.sequences.sample_sequences`.

    Raises:
        D3InputError: A fixed motif breaks a constraint by itself, or no candidate satisfied
            the constraints in `max_rounds` rounds.
    """
    import time

    import torch

    from d3_core.diffusion.sampling import FixedPositions
    from d3_core.generation.sequences import sample_sequences
    from d3_core.seeds import step_seed

    started = time.perf_counter()
    target = np.asarray(target, dtype=np.float32)
    fixed_positions = None
    if fixed is not None and fixed[0].any():
        mask, tokens = fixed
        text = decode(np.where(mask, tokens, 0))
        for word in constraints.words():
            for start in range(len(text) - len(word) + 1):
                if mask[start : start + len(word)].all() and text[start:].startswith(word):
                    raise D3InputError(f"the fixed motifs themselves contain the forbidden {word}")
        fixed_positions = FixedPositions(torch.as_tensor(mask), torch.as_tensor(tokens))
    accepted: list[np.ndarray] = []
    rejected: dict[str, int] = {}
    sampled = 0
    if not constraints.active:
        oversample = 1.0  # nothing can be rejected
    for round_ in range(max_rounds):
        missing = num_designs - sum(len(a) for a in accepted)
        if missing <= 0:
            break
        count = max(1, int(np.ceil(missing * oversample)))
        labels = np.repeat(target[None], count, axis=0)
        run = sample_sequences(
            loaded, labels, seed=step_seed(seed, round_), steps=steps, predictor=predictor,
            batch_size=batch_size, progress=progress, guidance=guidance, oracle=guide,
            fixed=fixed_positions,
        )  # fmt: skip
        sampled += count
        broken = constraints.violations(run.tokens)
        for reasons in broken:
            for kind in {_KINDS[r.split(" ")[0]] for r in reasons}:
                rejected[kind] = rejected.get(kind, 0) + 1
        accepted.append(run.tokens[[not b for b in broken]])
    found = np.concatenate(accepted) if accepted else np.zeros((0, len(target)), np.uint8)
    if len(found) == 0:
        raise D3InputError(
            f"none of {sampled} candidates satisfied the constraints ({rejected}); loosen "
            "--gc, --max-homopolymer or --forbid, or raise --max-rounds"
        )
    predictions = distance = None
    if oracle is not None:
        predictions = oracle.predict(found, batch_size=oracle.spec.predict_batch)
        goal = oracle.spec.targets_of(target[None])[0]
        distance = np.sqrt(((predictions - goal) ** 2).sum(1))
        order = np.argsort(distance, kind="stable")
    else:
        order = np.arange(len(found))
    order = order[:num_designs]
    return DesignResult(
        tokens=found[order], target=target, sampled=sampled, accepted=len(found),
        rejected=rejected,
        predictions=None if predictions is None else predictions[order],
        distance=None if distance is None else distance[order],
        seconds=time.perf_counter() - started,
    )  # fmt: skip
