"""A loaded Sei as an oracle: the strand-averaged network and its mean H3K4me3 readout, in
batches, from tokens or one-hot sequences."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from d3_core.errors import D3InputError
from d3_core.oracles import tokens_to_input
from d3_promoter.sei.names import READOUT_ASSAY, SeiTarget, assay_indices
from d3_promoter.sei.network import StrandAveraged, pad_for_sei


class SeiOracle:
    """A loaded Sei: the strand-averaged network in eval mode and its H3K4me3 readout.

    Args:
        model: `StrandAveraged` around a `Sei`, weights loaded.
        names: One `SeiTarget` per output.
        source: The checkpoint it came from.
        names_source: The names file.
        notes: How the checkpoint was read.

    Raises:
        D3InputError: No output in `names` is H3K4me3.
    """

    def __init__(
        self,
        model: StrandAveraged,
        names: Sequence[SeiTarget],
        *,
        source: Path | None = None,
        names_source: Path | None = None,
        notes: Sequence[str] = (),
    ) -> None:
        self.model = model.eval()
        self.names = list(names)
        self.readout_indices = assay_indices(self.names, READOUT_ASSAY)
        self.source, self.names_source, self.notes = source, names_source, tuple(notes)

    @property
    def n_parameters(self) -> int:
        """Number of parameters; 889,979,983 for the published weights."""
        return sum(p.numel() for p in self.model.parameters())

    def describe(self) -> dict[str, Any]:
        """What a report says about the oracle."""
        sei, parameter = self.model.model, next(self.model.parameters())
        return {
            "name": "Sei (Chen et al. 2022), mean of forward and reverse-complement strands",
            "checkpoint": str(self.source) if self.source else None,
            "names": str(self.names_source) if self.names_source else None,
            "n_parameters": self.n_parameters,
            "channels": list(sei.channels),
            "n_outputs": sei.n_targets,
            "spline_df": sei.spline_df,
            "input": f"(N, 4, {sei.sequence_length}), sequence centred, flanks 0.25",
            "readout": f"mean of the {len(self.readout_indices)} {READOUT_ASSAY} outputs",
            "device": str(parameter.device),
            "dtype": str(parameter.dtype).removeprefix("torch."),
            "notes": list(self.notes),
        }

    @torch.no_grad()
    def predict_h3k4me3(
        self, sequences: np.ndarray | Tensor, *, batch_size: int = 16
    ) -> np.ndarray:
        """Mean predicted H3K4me3 per sequence, computed in batches.

        Each batch is centred with `pad_for_sei`, run through both strands and averaged over the
        H3K4me3 outputs; only one batch is ever padded or on the device.

        Args:
            sequences: (N, L) integer tokens in 0..3 or (N, 4, L) one-hot, L = 1024 for
                Promoter (any L <= 4096 with 4096 - L even).
            batch_size: Sequences per forward pass; memory grows with it, results do not change.

        Returns:
            (N,) float32.

        Raises:
            D3InputError: Wrong shape, tokens outside 0..3, or batch_size < 1.
        """
        x = sequences if isinstance(sequences, Tensor) else torch.as_tensor(np.asarray(sequences))
        tokens = _check_sequences(x, batch_size)
        parameter = next(self.model.parameters())
        indices = torch.as_tensor(self.readout_indices, device=parameter.device)
        out = []
        for start in range(0, x.shape[0], batch_size):
            chunk = x[start : start + batch_size]
            onehot = tokens_to_input(chunk) if tokens else chunk  # (n, 4, L)
            inputs = pad_for_sei(onehot, self.model.model.sequence_length)
            predicted = self.model(inputs.to(parameter.device, parameter.dtype))  # (n, F)
            out.append(predicted.index_select(1, indices).mean(1).float().cpu())
        if not out:
            return np.zeros(0, dtype=np.float32)
        return torch.cat(out).numpy()


def _check_sequences(x: Tensor, batch_size: int) -> bool:
    """Checks the input of `SeiOracle.predict_h3k4me3`; True for tokens, False for one-hot."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise D3InputError(f"batch_size must be a positive integer; got {batch_size!r}")
    if x.dim() == 3 and x.shape[1] == 4:
        return False
    if x.dim() != 2 or x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
        raise D3InputError(
            f"Sei input must be (N, L) integer tokens or (N, 4, L) one-hot; got shape "
            f"{tuple(x.shape)}, dtype {x.dtype}"
        )
    if x.numel() and (int(x.min()) < 0 or int(x.max()) > 3):
        raise D3InputError(
            f"Sei input tokens must lie in 0..3 (A, C, G, T); got {int(x.min())}..{int(x.max())}"
        )
    return True
