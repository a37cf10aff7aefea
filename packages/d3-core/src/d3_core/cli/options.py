"""What every ``d3`` command shares: printing, argument types and the common option groups."""

from __future__ import annotations

import argparse
import sys

__all__ = [
    "add_checkpoint_options",
    "add_guidance_options",
    "positive",
    "quiet_lightning",
    "say",
    "warn",
]


def say(message: str) -> None:
    """Prints a line of progress or a result to stdout, at once."""
    print(message, flush=True)


def warn(message: str) -> None:
    """Prints ``d3: warning: ...`` to stderr."""
    print(f"d3: warning: {message}", file=sys.stderr, flush=True)


def quiet_lightning() -> None:
    """Hides Lightning's advertising and known-harmless deprecation noise; d3 prints a summary."""
    import logging
    import warnings

    logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    warnings.filterwarnings(
        "ignore", message=r".*Checkpoint directory .* exists and is not empty.*"
    )
    # d3's training batches are a function of the global step (data/loader.py StepBatchSampler)
    # and every step reseeds its randomness, so a resume mid-epoch is exact (to the bit: tests/
    # test_kill_resume.py); Lightning cannot know that and warns on every resume.
    warnings.filterwarnings(
        "ignore",
        message=r"You're resuming from a checkpoint that ended before the epoch ended and your "
        r"dataloader is not resumable\.",
    )


def positive(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def add_checkpoint_options(parser: argparse.ArgumentParser, *, dataset: bool = True) -> None:
    """Options of every command that reads a checkpoint."""
    if dataset:
        parser.add_argument(
            "--dataset", help="refuse a checkpoint of any other dataset (default: the checkpoint's)"
        )
    parser.add_argument(
        "--arch",
        help="Tran or Conv: the tower to load from a research file whose run folder does not "
        "say; refuses a checkpoint of the other architecture",
    )
    parser.add_argument(
        "--trust-checkpoint",
        action="store_true",
        help="allow a full unpickle of a file holding objects other than plain data (every "
        "format d3 reads loads without it); it can run code hidden in the file, so only for "
        "files from a source you trust",
    )


def add_guidance_options(parser: argparse.ArgumentParser, *, evaluate: bool = False) -> None:
    """``--guidance``, ``--oracle-guidance`` and friends (`d3_core.diffusion.guidance`)."""
    group = parser.add_argument_group("guidance (default: the checkpoint's sampling section)")
    group.add_argument(
        "--guidance", type=float, metavar="W",
        help="classifier-free guidance weight w: (1+w) conditional - w unconditional log-score; "
        "needs a model trained with label dropout (default: sampling.guidance when it has one)",
    )  # fmt: skip
    if evaluate:
        group.add_argument(
            "--guide-oracle", metavar="FILE",
            help="oracle checkpoint that guides sampling (default with --oracle-guidance: "
            "--oracle, whose scores are then optimistic)",
        )  # fmt: skip
    else:
        group.add_argument(
            "--oracle", metavar="FILE", help="oracle checkpoint that guides sampling"
        )
        group.add_argument("--oracle-names", metavar="FILE", help="the oracle's output-names file")
    group.add_argument(
        "--oracle-guidance", type=float, metavar="W",
        help="oracle guidance weight (0 = none; default: sampling.oracle_guidance when an "
        "oracle guides)",
    )  # fmt: skip
    group.add_argument(
        "--oracle-guidance-form", choices=("gradient", "exact"),
        help="gradient: one oracle forward+backward per step; exact: the oracle on all 3L "
        "single-base neighbours (default: the config's)",
    )  # fmt: skip
