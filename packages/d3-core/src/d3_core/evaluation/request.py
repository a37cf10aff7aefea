"""`EvaluateRequest`: every option of ``d3 evaluate``, declared once and checked once.

The command line builds one from its parsed options (`EvaluateRequest.from_args`), the demo and
library users build one directly, and `d3_core.evaluation.run.evaluate_run` takes it.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from d3_core.errors import D3InputError

__all__ = ["EvaluateRequest"]

# command-line option (argparse dest) -> (request field, how the value maps)
_FROM_ARGS = {
    "oracle": ("oracle_path", None),
    "trust_checkpoint": ("trusted", None),
    "no_discriminator": ("discriminator", lambda flag: not flag),
    "no_plots": ("plots", lambda flag: not flag),
    "no_progress": ("progress", lambda flag: not flag),
}


@dataclass(frozen=True)
class EvaluateRequest:
    """What to evaluate, against what, and how; the options of ``d3 evaluate``.

    Attributes:
        dataset: Dataset plugin name.
        out: Directory of ``report.json``, ``report.md``, the plots and the samples.
        arch: Architecture to load from a research file whose run folder does not say.
        model_path: Checkpoint or run directory to sample from.
        data: Data file whose test split is the reference (default: the one trained on).
        oracle_path: Oracle checkpoint that scores the sets.
        oracle_names: The oracle's output-names file, for oracles that have one.
        samples: Sequences to score instead of sampling (NPZ or FASTA).
        samples_dir: Where drawn samples go (default ``out/samples``).
        ground_truth: Also score by the synthetic data's planted rule.
        num_samples: Score the first N test labels (default: all).
        replicates: Independent sample sets (sampling seeds ``seed + r``).
        paired_repeat: K samples per test label, each paired with it (pooled SP-MSE).
        kmer: k of the k-mer JS distance; several allowed.
        discriminator: Train the AUROC discriminator.
        plots: Write PNG plots.
        steps, predictor, batch_size: Sampler settings (default: the checkpoint's).
        seed: Sampling and baseline seed.
        device: ``cpu``, ``cuda``, ... (default: cuda if available).
        trusted: Allow full unpickling of checkpoints that need it.
        force: Overwrite a report in `out`.
        progress: Show progress bars.
        guidance, oracle_guidance, oracle_guidance_form: Guidance weights and form (default:
            the checkpoint's sampling section).
        guide_oracle: Oracle checkpoint that guides sampling (default with oracle guidance:
            `oracle_path`).
        guidance_sweep: Also sample at each of these weights and report the trade-off.
        context: Stored in the report as it is (e.g. how the model was trained).
    """

    dataset: str
    out: Path
    arch: str | None = None
    model_path: str | Path | None = None
    data: str | Path | None = None
    oracle_path: str | Path | None = None
    oracle_names: str | Path | None = None
    samples: str | Path | None = None
    samples_dir: Path | None = None
    ground_truth: bool = False
    num_samples: int | None = None
    replicates: int = 1
    paired_repeat: int = 1
    kmer: Sequence[int] = (6,)
    discriminator: bool = True
    plots: bool = True
    steps: int | None = None
    predictor: str | None = None
    seed: int = 0
    batch_size: int | None = None
    device: str | None = None
    trusted: bool = False
    force: bool = False
    progress: bool = True
    guidance: float | None = None
    oracle_guidance: float | None = None
    oracle_guidance_form: str | None = None
    guide_oracle: str | Path | None = None
    guidance_sweep: Sequence[float] | None = None
    context: dict[str, Any] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "out", Path(self.out))
        object.__setattr__(self, "kmer", tuple(sorted(set(self.kmer))))

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> EvaluateRequest:
        """The request that ``d3 evaluate``'s parsed options stand for."""
        names = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        for dest, value in vars(args).items():
            target, convert = _FROM_ARGS.get(dest, (dest, None))
            if target in names:
                values[target] = convert(value) if convert else value
        return cls(**values)

    @property
    def sets(self) -> int:
        """How many sample sets are scored: `paired_repeat` sets are `replicates` sets."""
        return max(self.replicates, self.paired_repeat)

    def check(self) -> None:
        """Refuses combinations that cannot be evaluated, and an existing report.

        Raises:
            D3InputError: Nothing to score with, no checkpoint and no samples, counts below 1,
                replicates with --samples or with --paired-repeat, a sweep without a model, or
                a report already in `out` without `force`.
        """
        if self.oracle_path is None and not self.ground_truth:
            raise D3InputError(
                "nothing to score with: give --oracle FILE (the dataset's oracle weights; "
                "`d3 oracle train` makes one) or --ground-truth (the planted rule of synthetic "
                "data)"
            )
        if self.paired_repeat < 1 or (self.paired_repeat > 1 and self.replicates != 1):
            raise D3InputError(
                "--paired-repeat must be at least 1; give it or --replicates, not both"
            )
        if self.sets < 1 or (self.samples is not None and self.sets != 1):
            raise D3InputError(
                "--replicates and --paired-repeat must be at least 1, and 1 with --samples"
            )
        if self.guidance_sweep and self.model_path is None:
            raise D3InputError("--guidance-sweep samples at each weight: give --model-path")
        if (self.out / "report.json").exists() and not self.force:
            raise D3InputError(
                f"{self.out} already holds report.json; choose another --out or pass --force"
            )
        if self.model_path is None and self.samples is None:
            raise D3InputError("give --model-path (to sample) or --samples (sequences to score)")
