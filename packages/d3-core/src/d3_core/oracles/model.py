"""Running and loading oracles: `Oracle` predicts in batches on tokens; `load_oracle` reads a
published or d3-trained checkpoint strictly by name (docs/oracles.md).

An oracle takes one-hot float (N, 4, L) sequences (docs/method.md#sequences-and-tokens) and returns
(N, F) predictions.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from d3_core.errors import CheckpointError, D3InputError
from d3_core.oracles.spec import OracleSpec

__all__ = ["Oracle", "Rescaled", "load_oracle", "tokens_to_input"]


def tokens_to_input(tokens: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """One-hot oracle input (N, 4, L) from tokens (N, L) in 0..3."""
    states = torch.arange(4, device=tokens.device)
    return (tokens.long()[:, None, :] == states[None, :, None]).to(dtype)


class Rescaled(nn.Module):
    """``model(x) * sd + mean``: the predictions of an oracle trained on standardised targets,
    in the targets' units.

    Args:
        model: The network.
        mean: (F,) target means of the training split.
        sd: (F,) target standard deviations of the training split.
    """

    def __init__(self, model: nn.Module, mean: Sequence[float], sd: Sequence[float]) -> None:
        super().__init__()
        self.network = model
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32), False)
        self.register_buffer("sd", torch.tensor(list(sd), dtype=torch.float32), False)

    def forward(self, x: Tensor) -> Tensor:
        return self.network(x) * self.sd + self.mean


class Oracle:
    """A loaded oracle: the network in eval mode and where it came from.

    Args:
        spec: The dataset's oracle declaration.
        model: The network, weights loaded.
        source: The checkpoint it was read from (None for a fresh network).
        sha256: The checkpoint's SHA-256.
        notes: How the checkpoint was read.
        output_names: One name per output; default ``spec.output_names`` (an oracle trained by
            d3 records the names of the labels it learned).
    """

    def __init__(
        self,
        spec: OracleSpec,
        model: nn.Module,
        *,
        source: Path | None = None,
        sha256: str | None = None,
        notes: Sequence[str] = (),
        output_names: Sequence[str] | None = None,
    ) -> None:
        self.spec = spec
        self.model = model.eval()
        self.source = source
        self.sha256 = sha256
        self.notes = tuple(notes)
        self.output_names = tuple(output_names or spec.output_names)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def describe(self) -> dict[str, Any]:
        """What a report says about the oracle."""
        return {
            "name": self.spec.name,
            "outputs": list(self.output_names),
            "checkpoint": str(self.source) if self.source else None,
            "checkpoint_sha256": self.sha256,
            "notes": list(self.notes),
        }

    @torch.no_grad()
    def predict(
        self, tokens: np.ndarray | Tensor, *, batch_size: int = 256, progress: bool = False
    ) -> np.ndarray:
        """Predictions for token sequences, computed in batches.

        Args:
            tokens: (N, L) integers in 0..3.
            batch_size: Sequences per forward pass; memory grows with it, results do not change.
            progress: Show a progress bar.

        Returns:
            (N, F) float32 predictions.
        """
        tokens = torch.as_tensor(np.asarray(tokens)).long()
        if tokens.dim() != 2:
            raise D3InputError(f"oracle input must be (N, L) tokens; got {tuple(tokens.shape)}")
        if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) > 3):
            raise D3InputError("oracle input tokens must lie in 0..3 (A, C, G, T)")
        batches = range(0, len(tokens), batch_size)
        if progress and len(batches) > 4:  # a bar for a moment's work is noise
            from tqdm.auto import tqdm

            batches = tqdm(batches, desc="oracle", unit="batch", leave=False)
        out = []
        device = self.device
        for start in batches:
            x = tokens_to_input(tokens[start : start + batch_size].to(device))
            out.append(self.model(x).float().cpu())
        if not out:
            return np.zeros((0, len(self.output_names)), dtype=np.float32)
        return torch.cat(out).numpy()


# -- loading ------------------------------------------------------------------------------------


def _split_prefix(
    weights: dict[str, Tensor], expected: set[str], prefixes: Sequence[str], source: Path
) -> tuple[dict[str, Tensor], str]:
    """The weights under the prefix that matches the network best; the prefix used."""
    best, best_prefix, best_hits = {}, "", -1
    for prefix in prefixes:
        under = {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}
        hits = len(set(under) & expected)
        if hits > best_hits:
            best, best_prefix, best_hits = under, prefix, hits
    if best_hits <= 0:
        starts = sorted({k.split(".", 1)[0] + "." for k in weights})[:8]
        raise CheckpointError(
            f"{source}: no weights carry the oracle's key prefix "
            f"({' or '.join(repr(p) for p in prefixes)}); its keys start with "
            f"{', '.join(repr(s) for s in starts) or 'nothing'}"
        )
    return best, best_prefix


def load_oracle(
    path: str | os.PathLike,
    spec: OracleSpec,
    *,
    device: Any = "cpu",
    trusted: bool = False,
    names: str | os.PathLike | None = None,
) -> Oracle:
    """Loads an oracle checkpoint strictly by name.

    Accepts the published Lightning checkpoints (``state_dict`` under one of ``spec.prefixes``)
    and those `train_oracle` writes. The network is built with explicit sizes, so there is no
    lazy layer to initialise first.

    Args:
        path: The checkpoint file.
        spec: The dataset's oracle declaration.
        device: Where to put the network.
        trusted: Allow a full unpickle for files that need one.
        names: An output-names file, for oracles that read one (e.g. Sei's
            ``target.sei.names``; by default found beside the checkpoint).

    A file that one of ``spec.alternatives`` detects as its own is loaded as that oracle.

    Raises:
        CheckpointError: Unreadable file, no weights under the prefix, or missing, unexpected
            or mis-shaped keys (listed).
    """
    from d3_core.checkpoints.digest import ORACLE_COVERED, verify_content_digest
    from d3_core.checkpoints.load import file_sha256, load_payload, weight_mismatches

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"oracle checkpoint {str(path)!r} does not exist")
    for other in spec.alternatives:
        if other.detect is not None and other.detect(path):
            return load_oracle(path, other, device=device, trusted=trusted, names=names)
    if spec.loader is not None:
        return spec.loader(path, spec=spec, device=device, trusted=trusted, names=names)
    payload = load_payload(path, trusted=trusted)
    weights = payload.get("state_dict", payload) if isinstance(payload, dict) else None
    if not isinstance(weights, dict) or not all(isinstance(v, Tensor) for v in weights.values()):
        raise CheckpointError(
            f"{path} holds no state_dict of tensors; it is not an oracle checkpoint"
        )
    model = spec.build()
    expected = model.state_dict()
    weights, prefix = _split_prefix(weights, set(expected), spec.prefixes, path)
    sizes = spec.sizes_from_weights(weights) if spec.sizes_from_weights is not None else {}
    if sizes:
        model = spec.build(**sizes)
        expected = model.state_dict()
    missing, unexpected, mismatched = weight_mismatches(expected, weights)
    if missing or unexpected or mismatched:
        raise CheckpointError(
            f"{path}: the weights do not match the {spec.name}: missing {missing or 'none'}; "
            f"unexpected {unexpected or 'none'}; shape mismatches {mismatched or 'none'}"
        )
    notes = [f"weights under the prefix {prefix!r}"]
    block = payload.get("d3_oracle") if isinstance(payload, dict) else None
    if isinstance(block, dict):  # d3-trained: docs/checkpoint-formats.md#content-digest
        verify_content_digest(payload, path, block="d3_oracle", covered=ORACLE_COVERED, notes=notes)
    model.load_state_dict(weights, strict=True)
    names = None
    if isinstance(block, dict) and "target_mean" in block:
        mean, sd = block["target_mean"], block["target_sd"]
        model = Rescaled(model, mean, sd)
        notes.append(f"trained on standardised targets: predictions × {sd} + {mean}")
    if isinstance(block, dict):
        if "test_pearson" in block:
            notes.append(f"trained by d3; test Pearson {block['test_pearson']}")
        outputs = block.get("outputs")
        if isinstance(outputs, list) and len(outputs) == sizes.get(
            "outputs", len(spec.output_names)
        ):
            names = [str(n) for n in outputs]
    return Oracle(spec, model.to(device), source=path, sha256=file_sha256(path), notes=notes,
                  output_names=names)  # fmt: skip
