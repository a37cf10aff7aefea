"""``d3 evaluate``: designs for the test labels, scored against the real ones (`d3_core.evaluation`)."""

from __future__ import annotations

import argparse

from d3_core.cli.options import add_checkpoint_options, add_guidance_options, positive, say, warn

__all__ = ["add_parser", "run"]


def add_parser(commands) -> argparse.ArgumentParser:
    """Registers ``d3 evaluate``."""
    evaluate = commands.add_parser(
        "evaluate",
        help="design sequences for the test labels and score them against the real ones",
        description="Samples one sequence per test label from a checkpoint (any format), or "
        "reads --samples, and scores them with the dataset's oracle (--oracle) and/or the "
        "planted rule of synthetic data (--ground-truth): SP-MSE beside the shuffled-label and "
        "random-sequence baselines. Writes report.json, report.md and samples/ into --out.",
    )
    evaluate.add_argument("--dataset", required=True, help="dataset plugin name")
    evaluate.add_argument("--model-path", help="checkpoint or run directory to sample from")
    add_checkpoint_options(evaluate, dataset=False)
    evaluate.add_argument("--data", help="data file (default: the one the model trained on)")
    evaluate.add_argument("--oracle", help="oracle checkpoint (published or `d3 oracle train`)")
    evaluate.add_argument(
        "--oracle-names",
        metavar="FILE",
        help="the oracle's output-names file, for oracles that have one (Sei: target.sei.names; "
        "default: beside the checkpoint)",
    )
    evaluate.add_argument(
        "--ground-truth",
        action="store_true",
        help="also score by the synthetic data's planted rule",
    )
    evaluate.add_argument(
        "--samples", help="score these sequences instead of sampling (NPZ or FASTA)"
    )
    evaluate.add_argument(
        "--num-samples", type=positive, help="the first N test labels (default: all)"
    )
    evaluate.add_argument(
        "--replicates", type=positive, default=1, help="independent sample sets (default: 1)"
    )
    evaluate.add_argument(
        "--paired-repeat",
        type=positive,
        default=1,
        metavar="K",
        help="K samples per test label, each paired with it, SP-MSE pooled over all pairs (the "
        "promoter literature's protocol; default: 1)",
    )
    evaluate.add_argument(
        "--kmer",
        type=positive,
        nargs="+",
        default=[6],
        metavar="K",
        help="k of the k-mer JS distance; several allowed (default: 6)",
    )
    evaluate.add_argument(
        "--no-discriminator", action="store_true", help="skip the AUROC discriminator"
    )
    evaluate.add_argument("--no-plots", action="store_true", help="write no PNG plots")
    evaluate.add_argument("--steps", type=positive, help="sampler steps (default: the config's)")
    evaluate.add_argument(
        "--predictor", choices=("analytic", "euler"), help="default: the config's"
    )
    evaluate.add_argument("--batch-size", type=positive, help="sequences per forward pass")
    evaluate.add_argument("--seed", type=int, default=0, help="sampling and baseline seed")
    evaluate.add_argument("--device", help="cpu, cuda, ... (default: cuda if available)")
    evaluate.add_argument("--out", required=True, help="output directory")
    evaluate.add_argument("--force", action="store_true", help="overwrite the report in --out")
    evaluate.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_guidance_options(evaluate, evaluate=True)
    evaluate.add_argument(
        "--guidance-sweep", type=float, nargs="+", metavar="W",
        help="also sample at each of these guidance weights (CFG when the model has a null "
        "label, else oracle guidance) and report SP-MSE, Pearson r, diversity and memorisation "
        "per weight, as a table and a plot",
    )  # fmt: skip
    return evaluate


def run(args: argparse.Namespace) -> int:
    """Builds the request from the options once, runs it and prints the report."""
    from d3_core.evaluation.run import EvaluateRequest, evaluate_run

    report = evaluate_run(EvaluateRequest.from_args(args), say=say, warn=warn)
    say(report["markdown"])
    return 0
