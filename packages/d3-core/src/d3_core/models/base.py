"""The score models' common base (`ScoreModel`) and the checks of their configs and inputs.

Shared by the transformer and the conv model: sizes, label modes, null labels (classifier-free
guidance), the tokens/labels/σ a forward pass accepts, and a dataset variant's config.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from d3_core.errors import D3ConfigError, D3InputError

LABEL_MODES = ("global", "per_position")
"""How labels enter: one vector per sequence, or one track value per position."""


def check_positive_int(name: str, value: object) -> None:
    """Raise D3ConfigError unless the config field ``name`` is a positive int (not a bool)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise D3ConfigError(f"{name} must be a positive integer; got {value!r}")


def check_label_mode(label_mode: object) -> None:
    """Raise D3ConfigError unless label_mode is "global" or "per_position"."""
    if label_mode not in LABEL_MODES:
        raise D3ConfigError(f"label_mode must be one of {LABEL_MODES}; got {label_mode!r}")


def check_label_conditioning(config: Any) -> None:
    """Raise D3ConfigError unless ``label_conditioning`` is a bool used with global labels."""
    if not isinstance(config.label_conditioning, bool):
        raise D3ConfigError(
            f"label_conditioning must be true or false; got {config.label_conditioning!r}"
        )
    if config.label_conditioning and config.label_mode != "global":
        raise D3ConfigError(
            "label_conditioning adds a global label to the σ conditioning; per-position labels "
            "enter through the label embedding only (set it false)"
        )


def resolve_sigma(sigma: Tensor | bool, rest: tuple[Tensor, ...]) -> Tensor:
    """Accept both call conventions: ``(tokens, labels, sigma)`` and the research one
    ``(tokens, labels, train, sigma)``.

    The research ``train`` flag is ignored: dropout follows the module's own ``.train()`` /
    ``.eval()`` mode.

    Raises:
        D3InputError: the extra positional arguments match neither convention.
    """
    if isinstance(sigma, bool):
        if len(rest) != 1:
            raise D3InputError(
                "the research call convention is model(tokens, labels, train, sigma); got "
                f"{2 + 1 + len(rest)} positional arguments"
            )
        return rest[0]
    if rest:
        raise D3InputError(
            "expected model(tokens, labels, sigma) or model(tokens, labels, train: bool, sigma); "
            f"got {len(rest)} extra positional argument(s) after sigma"
        )
    return sigma


def split_null_labels(labels: Tensor) -> tuple[Tensor, Tensor]:
    """Separate the null label of classifier-free guidance from real label values.

    A label row that is NaN in every entry (one sequence's S values for global labels, one
    position's for per-position labels) is the *null label*: "no label given". Score models
    trained with ``training.label_dropout`` replace its embedding with a learned one.

    Args:
        labels: (B, S) or (B, L, S) float labels, NaN rows for "unlabelled".

    Returns:
        labels with NaN replaced by 0 (same shape), and the null mask (B,) or (B, L) bool.
    """
    nan = torch.isnan(labels)
    return labels.masked_fill(nan, 0.0), nan.all(-1)


def check_null_labels(config: Any, labels: Tensor) -> None:
    """Raise D3InputError for NaN labels the model cannot take. Syncs on accelerators.

    NaN must fill whole label rows (the null label), and only models built with
    ``null_label`` (trained with label dropout) have an embedding for it.
    """
    nan = torch.isnan(labels)
    if not bool(nan.any()):
        return
    if bool((nan.any(-1) != nan.all(-1)).any()):
        raise D3InputError(
            "labels hold NaN in some but not all entries of a row; NaN is accepted only as a "
            "whole row (the null label of classifier-free guidance)"
        )
    if not getattr(config, "null_label", False):
        raise D3InputError(
            "labels hold NaN rows (the null label of classifier-free guidance), but this model "
            "has no null-label embedding: it was trained without training.label_dropout, so it "
            "has no unconditional score; sample without --guidance or use --oracle-guidance"
        )


def check_model_inputs(
    config: Any, tokens: Tensor, labels: Tensor, sigma: Tensor, *, token_range: bool
) -> Tensor:
    """Check a score model's inputs against its config; returns sigma as (B,).

    Args:
        config: The model's config (``length``, ``signal_dim``, ``label_mode``, ``vocab_size``).
        tokens: (B, L) int64 in [0, V).
        labels: (B, S) float for label_mode "global", (B, L, S) float for "per_position".
        sigma: (B,) or (B, 1) float.
        token_range: Also check the token range and NaN (null) label rows; this syncs with an
            accelerator.

    Raises:
        D3InputError: naming the argument, the value received and what is allowed.
    """
    length, signal_dim, label_mode = config.length, config.signal_dim, config.label_mode
    if not isinstance(tokens, Tensor) or tokens.dtype != torch.int64:
        got = tokens.dtype if isinstance(tokens, Tensor) else type(tokens).__name__
        raise D3InputError(f"tokens must be an int64 tensor of shape (B, L); got {got}")
    if tokens.dim() != 2 or tokens.shape[1] != length:
        raise D3InputError(
            f"tokens must have shape (B, {length}) for this model; got {tuple(tokens.shape)}"
        )
    batch = tokens.shape[0]
    if not isinstance(labels, Tensor) or not labels.is_floating_point():
        got = labels.dtype if isinstance(labels, Tensor) else type(labels).__name__
        raise D3InputError(f"labels must be a floating-point tensor; got {got}")
    expected = (batch, signal_dim) if label_mode == "global" else (batch, length, signal_dim)
    if tuple(labels.shape) != expected:
        layout = "(B, S)" if label_mode == "global" else "(B, L, S)"
        raise D3InputError(
            f"labels must have shape {layout} = {expected} for label_mode={label_mode!r}; "
            f"got {tuple(labels.shape)}"
        )
    if not isinstance(sigma, Tensor) or not sigma.is_floating_point():
        got = sigma.dtype if isinstance(sigma, Tensor) else type(sigma).__name__
        raise D3InputError(f"sigma must be a floating-point tensor of shape (B,); got {got}")
    if sigma.dim() == 2 and sigma.shape[1] == 1:
        sigma = sigma[:, 0]  # (B, 1) -> (B,)
    if tuple(sigma.shape) != (batch,):
        raise D3InputError(
            f"sigma must have shape ({batch},) (or ({batch}, 1)); got {tuple(sigma.shape)}"
        )
    if token_range:
        check_token_range(tokens, config.vocab_size)
        check_null_labels(config, labels)
    return sigma


def check_token_range(tokens: Tensor, vocab_size: int) -> None:
    """Raise D3InputError unless every token lies in [0, vocab_size). Syncs on accelerators.

    Args:
        tokens: (B, L) int64.
        vocab_size: V.
    """
    if tokens.numel() == 0:
        return
    low, high = int(tokens.min()), int(tokens.max())
    if low < 0 or high >= vocab_size:
        raise D3InputError(f"tokens must lie in [0, {vocab_size}); got values from {low} to {high}")


class ScoreModel(nn.Module):
    """What both score models share: the two call conventions and the input checks.

    Subclasses declare ``config_class`` (their sizes dataclass, with at least ``length``,
    ``signal_dim``, ``label_mode`` and ``vocab_size``), set ``self.config`` to an instance of
    it, and implement `score` on checked inputs.
    """

    config_class: ClassVar[type]
    config: Any

    def check_inputs(self, tokens: Tensor, labels: Tensor, sigma: Tensor) -> None:
        """Validate inputs fully, including the token range (syncs on accelerators).

        Raises:
            D3InputError: an input has the wrong dtype, shape or range.
        """
        check_model_inputs(self.config, tokens, labels, sigma, token_range=True)

    def forward(
        self, tokens: Tensor, labels: Tensor, sigma: Tensor | bool, *rest: Tensor
    ) -> Tensor:
        """Compute log-scores.

        Call as ``model(tokens, labels, sigma)`` or with the research convention
        ``model(tokens, labels, train, sigma)``. Shapes and dtypes are always checked; the
        token range only on CPU (elsewhere it would force a device sync; call `check_inputs`).

        Args:
            tokens: (B, L) int64 in [0, V).
            labels: (B, S) float for label_mode "global", (B, L, S) for "per_position".
            sigma: (B,) float total noise σ (raw, not log). A bool here selects the research
                convention, and σ follows it.
            *rest: σ, in the research convention only.

        Returns:
            (B, L, V) float32 log-score ŝ, with ŝ at the current token set to 0.

        Raises:
            D3InputError: an input has the wrong dtype, shape or range.
        """
        sigma = resolve_sigma(sigma, rest)
        on_cpu = tokens.device.type == "cpu"
        sigma = check_model_inputs(self.config, tokens, labels, sigma, token_range=on_cpu)
        return self.score(tokens, labels, sigma)

    def score(self, tokens: Tensor, labels: Tensor, sigma: Tensor) -> Tensor:
        """Forward pass on checked inputs: tokens (B, L), labels, sigma (B,) -> (B, L, V)."""
        raise NotImplementedError


def check_dataset_config(config: Any, model: type, *, dataset: str, plugin: Any) -> None:
    """Checks that a score-model config describes a dataset's data (for dataset variants).

    Args:
        config: The model's config dataclass (`TransformerConfig` or `ConvConfig`).
        model: The variant being built, whose ``config_class`` the config must be.
        dataset: The dataset's display name, for messages (e.g. ``"DeepSTARR"``).
        plugin: Its `d3_core.registry.DatasetPlugin` (length, label names and mode).

    Raises:
        D3ConfigError: The config is of another class, or its length, label width or label
            mode is not the dataset's; the message names the value and the expected one.
    """
    if not isinstance(config, model.config_class):
        raise D3ConfigError(
            f"{model.__name__} takes a {model.config_class.__name__}, got {type(config).__name__}"
        )
    expected = {
        "length": plugin.sequence_length,
        "signal_dim": plugin.label_width,
        "label_mode": plugin.label_mode,
    }
    mode = plugin.label_mode.replace("_", "-")
    for key, want in expected.items():
        got = getattr(config, key)
        if got != want:
            raise D3ConfigError(
                f"{model.__name__} models {dataset} data ({plugin.sequence_length}-bp sequences, "
                f"{plugin.label_width} {mode} labels {', '.join(plugin.label_names)}): config "
                f"{key}={got!r}, expected {want!r}"
            )


class DatasetVariant:
    """Mixin of a dataset's score models: the config is checked against the dataset first.

    A dataset package declares its variants as
    ``class DeepSTARRConvScoreModel(DatasetVariant, ConvScoreModel)`` with the two class
    attributes below; building one with a config of another length, label width, label mode or
    config class raises before any weight is made.

    Attributes:
        dataset_plugin: The dataset's `d3_core.registry.DatasetPlugin`.
        dataset_title: Its name in messages, e.g. ``"DeepSTARR"``.
    """

    dataset_plugin: ClassVar[Any]
    dataset_title: ClassVar[str]

    def __init__(self, config: Any, *args: Any, **kwargs: Any) -> None:
        self.check_config(config)
        super().__init__(config, *args, **kwargs)

    @classmethod
    def check_config(cls, config: Any) -> None:
        """Raises D3ConfigError for a config of another class, length, label width or mode."""
        check_dataset_config(config, cls, dataset=cls.dataset_title, plugin=cls.dataset_plugin)
