"""The ``d3`` command line; each subcommand imports what it needs only when it runs."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from d3_core import __version__
from d3_core.errors import D3Error, PluginError

_TABLE_COLUMNS = ("name", "package", "version", "length", "labels", "status")


def _dataset_rows(entry_points: dict) -> tuple[list[dict], list[str]]:
    """Loads each listed plugin; returns one record per plugin and the load errors met."""
    from d3_core.registry import load_dataset_plugin

    records, errors = [], []
    for name, entry_point in entry_points.items():
        try:
            plugin = load_dataset_plugin(name)
        except PluginError as err:
            dist = getattr(entry_point, "dist", None)
            records.append({"name": name, "distribution": dist and dist.name, "error": str(err)})
            errors.append(str(err))
            continue
        records.append(_record(plugin))
    return records, errors


def _record(plugin) -> dict:
    """What ``d3 datasets --json`` reports about a plugin."""
    return {
        "name": plugin.name,
        "distribution": plugin.distribution,
        "version": plugin.version,
        "sequence_length": plugin.sequence_length,
        "label_names": list(plugin.label_names),
        "label_mode": plugin.label_mode,
        "architectures": sorted(plugin.score_models),
        "ready": plugin.ready,
        "description": plugin.description,
    }


def _table_row(record: dict) -> tuple[str, ...]:
    """One line of the ``d3 datasets`` table for a record of `_dataset_rows`."""
    if "error" in record:
        return (record["name"], record["distribution"] or "?", "-", "-", "-", "broken")
    labels = f"{', '.join(record['label_names'])} ({record['label_mode'].replace('_', ' ')})"
    status = "ready" if record["ready"] else "placeholder"
    return (
        record["name"],
        record["distribution"],
        record["version"],
        str(record["sequence_length"]),
        labels,
        status,
    )


def _print_table(rows: list[tuple[str, ...]]) -> None:
    """Prints rows under `_TABLE_COLUMNS`, each column as wide as its widest cell."""
    table = [_TABLE_COLUMNS, *rows]
    widths = [max(map(len, column)) for column in zip(*table, strict=True)]
    for row in table:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
        print("  ".join(cells).rstrip())


def _run_datasets(args: argparse.Namespace, forwarded: list[str]) -> int:
    """``d3 datasets``: lists installed dataset plugins; exit 1 if one fails to load."""
    from d3_core.registry import KNOWN_DISTRIBUTIONS, list_datasets

    records, errors = _dataset_rows(list_datasets())
    if args.json:
        print(json.dumps(records, indent=2))
    elif records:
        _print_table([_table_row(record) for record in records])
    else:
        packages = ", ".join(KNOWN_DISTRIBUTIONS.values())
        print(f"no dataset plugins installed; install one with pip, e.g. one of: {packages}")
    for message in errors:
        print(f"d3: error: {message}", file=sys.stderr)
    return 1 if errors else 0


def _run_train(args: argparse.Namespace, forwarded: list[str]) -> int:
    from d3_core.cli.commands import run_train

    return run_train(args)


def _run_sample(args: argparse.Namespace, forwarded: list[str]) -> int:
    from d3_core.cli.commands import run_sample

    return run_sample(args)


def _run_convert(args: argparse.Namespace, forwarded: list[str]) -> int:
    from d3_core.cli.commands import run_convert

    return run_convert(args)


def _run_oracle_train(args: argparse.Namespace, forwarded: list[str]) -> int:
    from d3_core.cli.commands import run_oracle_train

    return run_oracle_train(args)


def _run_evaluate(args: argparse.Namespace, forwarded: list[str]) -> int:
    from d3_core.cli.commands import run_evaluate

    return run_evaluate(args)


def _run_make_data(args: argparse.Namespace, forwarded: list[str]) -> int:
    from d3_core.cli.commands import run_make_data

    return run_make_data(args)


def _run_demo(args: argparse.Namespace, forwarded: list[str]) -> int:
    from d3_core.cli.demo import run_demo

    return run_demo(args)


def _run_bench(args: argparse.Namespace, forwarded: list[str]) -> int:
    """``d3 bench``: hands every argument after ``bench`` to `d3_core.bench.main`."""
    from d3_core.bench import main as bench_main

    return bench_main(forwarded) or 0


def _add_guidance_options(parser, *, evaluate: bool = False) -> None:
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


def _positive(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _add_train(commands) -> None:
    train = commands.add_parser(
        "train",
        help="train a D3 model on a dataset",
        description="Train a D3 score model. Config: the dataset package's preset, then each "
        "--config file, then the key=value overrides (e.g. training.lr=1e-4).",
    )
    train.add_argument("--dataset", help="dataset plugin name, e.g. deepstarr")
    train.add_argument("--arch", help="Tran (transformer) or Conv (conv), any case")
    train.add_argument("--data", help="data file in the dataset's format (sets dataset.data)")
    train.add_argument(
        "--preset", choices=("cpu", "paper"), default="cpu", help="packaged config (default: cpu)"
    )
    train.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="FILE",
        help="YAML config merged over the preset; repeatable",
    )
    train.add_argument(
        "--max-steps", type=_positive, help="optimizer steps (sets training.max_steps)"
    )
    train.add_argument(
        "--gpus",
        type=_positive,
        help="GPUs per node (sets trainer.accelerator=gpu, trainer.devices)",
    )
    train.add_argument("--num-nodes", type=_positive, help="nodes (sets trainer.num_nodes)")
    train.add_argument("--strategy", help="Lightning strategy, e.g. ddp (sets trainer.strategy)")
    train.add_argument("--out", help="run directory (default: runs/<dataset>-<Arch>-<date>-<time>)")
    train.add_argument(
        "--resume", metavar="CHECKPOINT", help="continue from a last.ckpt or run directory"
    )
    train.add_argument("--force", action="store_true", help="overwrite the run in --out")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    train.set_defaults(run=_run_train, forwards=False)


def _add_sample(commands) -> None:
    sample = commands.add_parser(
        "sample",
        help="design sequences for requested labels",
        description="Draw one sequence per label row with a checkpoint's EMA weights; writes "
        "samples.fasta, samples.npz, labels.tsv and provenance.json into --out.",
    )
    sample.add_argument(
        "--checkpoint",
        required=True,
        help="any checkpoint: d3's, a research .pth or run directory, a d3-dna .ckpt, a "
        "converted Lightning file, or a d3 run directory",
    )
    _add_checkpoint_options(sample)
    labels = sample.add_mutually_exclusive_group(required=True)
    labels.add_argument(
        "--labels", metavar="FILE", help="labels to sample for (.npy, .npz, .tsv, .csv)"
    )
    labels.add_argument(
        "--from-test-set", action="store_true", help="the labels of the data file's test split"
    )
    sample.add_argument(
        "--data", help="data file for --from-test-set (default: the one trained on)"
    )
    sample.add_argument(
        "--num-samples", type=_positive, help="sequences to draw (default: one per label row)"
    )
    sample.add_argument("--steps", type=_positive, help="sampler steps (default: the config's)")
    sample.add_argument("--predictor", choices=("analytic", "euler"), help="default: the config's")
    sample.add_argument("--batch-size", type=_positive, help="sequences per forward pass")
    sample.add_argument("--seed", type=int, default=0, help="sequence i uses a seed from (seed, i)")
    sample.add_argument("--device", help="cpu, cuda, cuda:1... (default: cuda if available)")
    sample.add_argument("--out", required=True, help="output directory")
    sample.add_argument("--force", action="store_true", help="overwrite samples in --out")
    sample.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_guidance_options(sample)
    sample.set_defaults(run=_run_sample, forwards=False)


def _add_checkpoint_options(parser, *, dataset: bool = True) -> None:
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
        help="allow full unpickling, which d3-dna and converted Lightning files need; it can "
        "run code hidden in a file, so only for files from a source you trust",
    )


def _add_convert(commands) -> None:
    convert = commands.add_parser(
        "convert",
        help="write d3's checkpoint format from any checkpoint",
        description="Convert a research checkpoint (.pth or run directory), a d3-dna .ckpt or "
        "a converted Lightning file into d3's format, which loads safely (weights_only). Given "
        "a directory, converts every checkpoint found under it and reports each file.",
    )
    convert.add_argument("source", metavar="SRC|DIR", help="a checkpoint file or a directory")
    convert.add_argument(
        "--out",
        help="for a file: the file to write (default: <name>.d3.ckpt beside it); for a "
        "directory: where to mirror its tree (default: beside each checkpoint)",
    )
    _add_checkpoint_options(convert)
    convert.add_argument("--force", action="store_true", help="overwrite converted files")
    convert.add_argument("--json", action="store_true", help="print a JSON report")
    convert.set_defaults(run=_run_convert, forwards=False)


def _add_oracle(commands) -> None:
    oracle = commands.add_parser(
        "oracle",
        help="the dataset's oracle: train one",
        description="Oracles score designed "
        "sequences (SPEC §12). Published weights load directly in `d3 evaluate --oracle`.",
    )
    actions = oracle.add_subparsers(dest="action", required=True, metavar="ACTION")
    train = actions.add_parser(
        "train",
        help="train the dataset's oracle on a data file with its published recipe",
        description="Trains the oracle with the published recipe (early stopping on the "
        "validation MSE) and writes oracle.ckpt (the published checkpoint layout) and "
        "oracle.json (recipe, epochs, test Pearson r per output) into --out.",
    )
    train.add_argument("--dataset", required=True, help="dataset plugin name")
    train.add_argument("--data", required=True, help="the dataset's data file")
    train.add_argument("--out", required=True, help="output directory")
    train.add_argument("--max-epochs", type=_positive, help="default: the recipe's")
    train.add_argument("--batch-size", type=_positive, help="default: the recipe's")
    train.add_argument("--seed", type=int, help="default: the recipe's (0)")
    train.add_argument("--gpus", action="store_true", help="train on a GPU")
    train.add_argument("--force", action="store_true", help="overwrite oracle.ckpt in --out")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.set_defaults(run=_run_oracle_train, forwards=False)


def _add_evaluate(commands) -> None:
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
    _add_checkpoint_options(evaluate, dataset=False)
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
        "--num-samples", type=_positive, help="the first N test labels (default: all)"
    )
    evaluate.add_argument(
        "--replicates", type=_positive, default=1, help="independent sample sets (default: 1)"
    )
    evaluate.add_argument(
        "--paired-repeat",
        type=_positive,
        default=1,
        metavar="K",
        help="K samples per test label, each paired with it, SP-MSE pooled over all pairs (the "
        "promoter literature's protocol; default: 1)",
    )
    evaluate.add_argument(
        "--kmer",
        type=_positive,
        nargs="+",
        default=[6],
        metavar="K",
        help="k of the k-mer JS distance; several allowed (default: 6)",
    )
    evaluate.add_argument(
        "--no-discriminator", action="store_true", help="skip the AUROC discriminator"
    )
    evaluate.add_argument("--no-plots", action="store_true", help="write no PNG plots")
    evaluate.add_argument("--steps", type=_positive, help="sampler steps (default: the config's)")
    evaluate.add_argument(
        "--predictor", choices=("analytic", "euler"), help="default: the config's"
    )
    evaluate.add_argument("--batch-size", type=_positive, help="sequences per forward pass")
    evaluate.add_argument("--seed", type=int, default=0, help="sampling and baseline seed")
    evaluate.add_argument("--device", help="cpu, cuda, ... (default: cuda if available)")
    evaluate.add_argument("--out", required=True, help="output directory")
    evaluate.add_argument("--force", action="store_true", help="overwrite the report in --out")
    evaluate.add_argument("--no-progress", action="store_true", help="no progress bars")
    _add_guidance_options(evaluate, evaluate=True)
    evaluate.add_argument(
        "--guidance-sweep", type=float, nargs="+", metavar="W",
        help="also sample at each of these guidance weights (CFG when the model has a null "
        "label, else oracle guidance) and report SP-MSE, Pearson r, diversity and memorisation "
        "per weight, as a table and a plot",
    )  # fmt: skip
    evaluate.set_defaults(run=_run_evaluate, forwards=False)


def _add_make_data(commands) -> None:
    make = commands.add_parser(
        "make-data",
        help="write a dataset's synthetic data in its real file format",
        description="Synthetic data with a planted label-sequence rule, in the format the "
        "dataset's loader reads.",
    )
    make.add_argument("--dataset", required=True, help="dataset plugin name")
    make.add_argument("--out", required=True, help="file to write")
    make.add_argument(
        "--size", choices=("tiny", "small", "full"), default="small", help="default: small"
    )
    make.add_argument("--seed", type=int, default=0, help="default: 0")
    make.add_argument("--force", action="store_true", help="overwrite --out")
    make.set_defaults(run=_run_make_data, forwards=False)


def _add_demo(commands) -> None:
    demo = commands.add_parser(
        "demo",
        help="make data, train, sample and score, in minutes on a CPU",
        description="End to end on synthetic data: make data -> train the CPU preset -> sample "
        "for the test labels -> score the samples against the planted rule.",
    )
    demo.add_argument(
        "--dataset", default="deepstarr", help="dataset plugin name (default: deepstarr)"
    )
    demo.add_argument(
        "--arch",
        default="Conv",
        help="Conv or Tran (default: Conv, the faster to train on a CPU; both CPU presets learn "
        "the planted rule within the demo's minutes)",
    )
    demo.add_argument(
        "--out", help="run directory (default: runs/demo-<dataset>-<Arch>-<date>-<time>)"
    )
    demo.add_argument("--force", action="store_true", help="overwrite the run in --out")
    demo.add_argument("--no-progress", action="store_true", help="no progress bars")
    demo.add_argument(
        "--guidance-sweep", type=float, nargs="+", metavar="W",
        help="also sample at these guidance weights and report the fidelity/diversity trade",
    )  # fmt: skip
    demo.set_defaults(run=_run_demo, forwards=False)


def _build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``d3`` and its subcommands."""
    parser = argparse.ArgumentParser(
        prog="d3",
        description="Conditional discrete diffusion (D3) for regulatory DNA.",
        epilog="Set D3_DEBUG=1 to see the full traceback of an error.",
    )
    parser.add_argument("--version", action="version", version=f"d3 (d3-core {__version__})")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    datasets = commands.add_parser("datasets", help="list the installed dataset plugins")
    datasets.add_argument("--json", action="store_true", help="print JSON instead of a table")
    datasets.set_defaults(run=_run_datasets, forwards=False)

    _add_train(commands)
    _add_sample(commands)
    from d3_core.cli.design import add_design_parser

    add_design_parser(commands, _add_checkpoint_options, _add_guidance_options, _positive)
    _add_convert(commands)
    _add_oracle(commands)
    _add_evaluate(commands)
    _add_make_data(commands)
    _add_demo(commands)

    # No options of its own (not even -h): everything after `bench` belongs to d3_core.bench.
    bench = commands.add_parser(
        "bench", add_help=False, help="run the benchmarks (see `d3 bench --help`)"
    )
    bench.set_defaults(run=_run_bench, forwards=True)
    return parser


def _debug_requested() -> bool:
    """Whether D3_DEBUG asks for full tracebacks."""
    return os.environ.get("D3_DEBUG", "") not in ("", "0")


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ``d3`` with ``argv`` (default: ``sys.argv[1:]``).

    Args:
        argv: Command-line arguments without the program name.

    Returns:
        The exit status: 0 on success, 1 when a d3 error was reported. Usage errors exit with
        status 2 through `SystemExit`, as argparse does.
    """
    parser = _build_parser()
    args, forwarded = parser.parse_known_args(argv)
    if forwarded and not args.forwards:
        parser.error(f"unrecognized arguments: {' '.join(forwarded)}")
    try:
        return args.run(args, forwarded)
    except Exception as err:
        if _debug_requested() or not _is_user_error(err):
            raise
        message = " ".join(str(err).split())  # one line, whatever the source formatted
        print(f"d3: error: {message}", file=sys.stderr)
        return 1


def _is_user_error(err: Exception) -> bool:
    """Our errors, and Lightning's complaints about a configuration (e.g. --gpus without GPUs)."""
    if isinstance(err, D3Error):
        return True
    return type(err).__name__ == "MisconfigurationException" and "lightning" in type(err).__module__
