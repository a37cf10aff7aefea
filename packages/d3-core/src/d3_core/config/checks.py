"""Checking a merged config: types, ranges and agreement with the dataset plugin."""

from __future__ import annotations

import dataclasses
from typing import Any

from omegaconf import DictConfig

from d3_core.config.schema import _MODEL_KEYS_FROM_DATASET, PRECISIONS, to_plain
from d3_core.errors import D3ConfigError
from d3_core.registry import DatasetPlugin, canonical_arch


def _fail(key: str, value: Any, expected: str) -> None:
    raise D3ConfigError(f"config {key} = {value!r} is invalid: expected {expected}")


def check_config(cfg: DictConfig, plugin: DatasetPlugin) -> None:
    """Checks values the schema's types cannot: ranges, choices and agreement with the plugin.

    Raises:
        D3ConfigError: naming the key, the value and what is allowed.
    """
    from d3_core.diffusion.noise import build_noise
    from d3_core.diffusion.sampling import PREDICTORS

    ds = cfg.dataset
    if ds.name != plugin.name:
        _fail("dataset.name", ds.name, f"{plugin.name!r} (the dataset being configured)")
    if ds.sequence_length != plugin.sequence_length:
        _fail(
            "dataset.sequence_length",
            ds.sequence_length,
            f"{plugin.sequence_length} for {plugin.name}",
        )
    if ds.label_mode != plugin.label_mode:
        _fail("dataset.label_mode", ds.label_mode, f"{plugin.label_mode!r} for {plugin.name}")
    if len(ds.label_names) != plugin.label_width:
        _fail(
            "dataset.label_names",
            list(ds.label_names),
            f"{plugin.label_width} names for {plugin.name}",
        )
    _check_architecture(cfg, plugin)
    model_sizes(cfg, plugin)  # the model's own dataclass validates its sizes

    tr = cfg.training
    for key in (
        "batch_size",
        "max_steps",
        "val_every_n_steps",
        "checkpoint_every_n_steps",
        "log_every_n_steps",
    ):
        if tr[key] < 1:
            _fail(f"training.{key}", tr[key], "a positive integer")
    if tr.micro_batch is not None and tr.micro_batch < 1:
        _fail("training.micro_batch", tr.micro_batch, "a positive integer or null")
    if tr.val_batches is not None and tr.val_batches < 1:
        _fail("training.val_batches", tr.val_batches, "a positive integer or null")
    if not 0 <= tr.seed < 2**63:
        _fail("training.seed", tr.seed, "an integer in [0, 2**63)")
    if tr.warmup_steps < 0:
        _fail("training.warmup_steps", tr.warmup_steps, "an integer >= 0")
    if not tr.lr > 0:
        _fail("training.lr", tr.lr, "a positive number")
    if len(tr.betas) != 2 or not all(0 <= b < 1 for b in tr.betas):
        _fail("training.betas", list(tr.betas), "two numbers in [0, 1)")
    if not 0 <= tr.ema_decay < 1:
        _fail("training.ema_decay", tr.ema_decay, "a number in [0, 1)")
    if not 0 < tr.time_eps < 1:
        _fail("training.time_eps", tr.time_eps, "a number in (0, 1)")
    if not 0 <= tr.label_dropout < 1:
        _fail("training.label_dropout", tr.label_dropout, "a number in [0, 1)")
    if tr.label_dropout > 0 and not cfg.model.get("null_label", False):
        _fail("training.label_dropout", tr.label_dropout,
              "0 unless model.null_label is true (dropped labels use the learned null label)")  # fmt: skip
    if tr.grad_clip is not None and not tr.grad_clip > 0:
        _fail("training.grad_clip", tr.grad_clip, "a positive number or null")
    if tr.sample_eval_every_n_steps is not None:
        if tr.sample_eval_every_n_steps < 1:
            _fail("training.sample_eval_every_n_steps", tr.sample_eval_every_n_steps,
                  "a positive integer or null")  # fmt: skip
        if tr.sample_eval_labels < 2 or tr.sample_eval_steps < 1:
            _fail("training.sample_eval_labels/steps",
                  [tr.sample_eval_labels, tr.sample_eval_steps],
                  "at least 2 labels and 1 step")  # fmt: skip
        if tr.sample_eval_scorer not in ("oracle", "ground_truth"):
            _fail("training.sample_eval_scorer", tr.sample_eval_scorer,
                  "'oracle' or 'ground_truth'")  # fmt: skip
        if tr.sample_eval_scorer == "oracle" and not tr.sample_eval_oracle:
            _fail("training.sample_eval_oracle", tr.sample_eval_oracle,
                  "an oracle checkpoint file when sample_eval_scorer is 'oracle'")  # fmt: skip
    if tr.precision not in PRECISIONS:
        _fail("training.precision", tr.precision, f"one of {', '.join(PRECISIONS)}")
    if cfg.graph.type != "uniform":
        _fail("graph.type", cfg.graph.type, "'uniform' (the graph D3 trains with)")
    build_noise(cfg.noise.type, **{k: v for k, v in cfg.noise.items() if k != "type"})
    if cfg.sampling.predictor not in PREDICTORS:
        _fail("sampling.predictor", cfg.sampling.predictor, f"one of {', '.join(PREDICTORS)}")
    if cfg.sampling.oracle_guidance < 0:
        _fail("sampling.oracle_guidance", cfg.sampling.oracle_guidance, "a number >= 0")
    if cfg.sampling.oracle_guidance_form not in ("gradient", "exact"):
        _fail("sampling.oracle_guidance_form", cfg.sampling.oracle_guidance_form,
              "'gradient' or 'exact'")  # fmt: skip
    if cfg.sampling.steps < 1 or cfg.sampling.batch_size < 1:
        _fail("sampling", dict(cfg.sampling), "positive steps and batch_size")


def _check_architecture(cfg: DictConfig, plugin: DatasetPlugin) -> None:
    """The model section must be the one built for ``model.architecture``."""
    arch = canonical_arch(cfg.model.architecture)
    config_class = plugin.score_model_class(arch).config_class
    fields = {f.name for f in dataclasses.fields(config_class)} - set(_MODEL_KEYS_FROM_DATASET)
    if set(cfg.model) - {"architecture"} != fields:
        raise D3ConfigError(
            f"config model.architecture = {cfg.model.architecture!r} does not match the model "
            f"section, which was built for the other architecture; choose the architecture with "
            f"--arch, not in a config file or override"
        )


def model_sizes(cfg: DictConfig, plugin: DatasetPlugin) -> Any:
    """The score model's config dataclass for a config (validated by the dataclass).

    Raises:
        D3ConfigError: A size is out of range.
    """
    model_class = plugin.score_model_class(cfg.model.architecture)
    sizes = {k: v for k, v in to_plain(cfg.model).items() if k != "architecture"}
    return model_class.config_class(
        length=cfg.dataset.sequence_length,
        signal_dim=len(cfg.dataset.label_names),
        label_mode=cfg.dataset.label_mode,
        **sizes,
    )
