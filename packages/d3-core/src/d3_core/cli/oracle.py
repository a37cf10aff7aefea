"""``d3 oracle train``: the dataset's oracle, trained on a data file with its published recipe."""

from __future__ import annotations

import argparse
from pathlib import Path

from d3_core.cli.options import positive, quiet_lightning, say
from d3_core.data.files import read_data_file
from d3_core.errors import D3InputError

__all__ = ["ORACLE_FILES", "add_parser", "run"]

ORACLE_FILES = ("oracle.ckpt", "oracle.json")
"""What ``d3 oracle train`` writes into ``--out``."""


def add_parser(commands) -> argparse.ArgumentParser:
    """Registers ``d3 oracle`` and its one action, ``train``."""
    oracle = commands.add_parser(
        "oracle",
        help="the dataset's oracle: train one",
        description="Oracles score designed "
        "sequences (docs/oracles.md). Published weights load directly in `d3 evaluate --oracle`.",
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
    train.add_argument("--max-epochs", type=positive, help="default: the recipe's")
    train.add_argument("--batch-size", type=positive, help="default: the recipe's")
    train.add_argument("--seed", type=int, help="default: the recipe's (0)")
    train.add_argument("--gpus", action="store_true", help="train on a GPU")
    train.add_argument("--force", action="store_true", help="overwrite oracle.ckpt in --out")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    return oracle


def run(args: argparse.Namespace) -> int:
    """Trains the oracle and prints its epochs, validation MSE and test Pearson r."""
    from d3_core.devices import resolve_device
    from d3_core.generation.filesets import claim
    from d3_core.seeds import check_seed

    if args.seed is not None:
        check_seed(args.seed, option="--seed")
    if args.gpus:
        resolve_device("cuda", option="--gpus")
    with claim(args.out, owned=ORACLE_FILES, what="an oracle") as out:
        if (out / "oracle.ckpt").exists() and not args.force:
            raise D3InputError(
                f"{out} already holds oracle.ckpt; choose another --out or pass --force"
            )
        return _train(args, out)


def _train(args: argparse.Namespace, out: Path) -> int:
    """Reads the data and trains, inside the claimed --out."""
    from d3_core.oracles.training import recipe_with, train_oracle
    from d3_core.registry import load_dataset_plugin

    plugin = load_dataset_plugin(args.dataset)
    spec = plugin.load("oracle")
    splits = read_data_file(plugin, args.data, need=("train", "valid", "test"))
    recipe = recipe_with(
        spec.recipe, max_epochs=args.max_epochs, batch_size=args.batch_size, seed=args.seed
    )
    quiet_lightning()
    say(
        f"training the {spec.name} on {args.data} ({len(splits['train'])} training sequences; "
        f"Adam lr {recipe.lr}, batch {recipe.batch_size}, up to {recipe.max_epochs} epochs, "
        f"early stop after {recipe.early_stop_patience} without improvement)"
    )
    result = train_oracle(
        spec, splits, out, dataset=plugin.name, recipe=recipe, progress=not args.no_progress,
        accelerator="gpu" if args.gpus else "auto",
    )  # fmt: skip
    pearson = ", ".join(f"{name} {r:.3f}" for name, r in result.test_pearson.items())
    say(
        f"trained {result.epochs} epochs in {result.seconds:.0f} s; best validation MSE "
        f"{result.val_loss:.4f}; test Pearson r: {pearson}\ncheckpoint: {result.checkpoint}\n"
        f"report: {result.report}"
    )
    return 0
