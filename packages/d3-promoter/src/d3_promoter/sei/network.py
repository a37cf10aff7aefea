"""Sei's network as published (docs/oracles.md): the layers by their published names, the B-spline
basis, the strand averaging and the centring of a shorter sequence in Sei's 4096 positions."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from d3_core.errors import D3ConfigError, D3InputError

SEI_LENGTH = 4096
"""Input length of the published Sei; 4096 / 16 = 256 positions reach the spline layer."""
_DILATIONS = (2, 4, 8, 16, 25)  # of dconv1..dconv5


def bspline_basis(n: int, df: int) -> Tensor:
    """The cubic B-spline basis over positions 0..n-1 with `df` functions, intercept included.

    Boundary knots min(x) and max(x) are each repeated 4 times; the ``df - 4`` interior knots lie
    at evenly spaced percentiles of x. Column i is the spline whose coefficient vector is e_i, so
    every row sums to 1; the last row is the limit from the left. ``bspline_basis(256, 16)`` is
    Sei's basis.

    Args:
        n: Number of positions, at least 2.
        df: Number of basis functions, at least 4.

    Returns:
        (n, df) float32 basis on the CPU (also when built under ``torch.device("meta")``).

    Raises:
        D3ConfigError: ``n < 2`` or ``df < 4``.
    """
    from scipy.interpolate import BSpline

    if n < 2 or df < 4:
        raise D3ConfigError(f"a cubic B-spline basis needs n >= 2 and df >= 4; got n={n}, df={df}")
    x = np.arange(n, dtype=np.float64)
    interior = np.percentile(x, 100 * np.linspace(0, 1, df - 4 + 2)[1:-1])
    knots = np.sort(np.concatenate([[x.min(), x.max()] * 4, interior]))
    # At x = n-1, the last knot, this is the limit from the left (rows still sum to 1).
    basis = BSpline(knots, np.eye(df), 3, extrapolate=True)(x)  # (n, df)
    return torch.tensor(basis, dtype=torch.float32, device="cpu")


class BSplineTransform(nn.Module):
    """(N, C, n) → (N, C, df) as ``x @ basis``; the basis is a non-persistent buffer.

    Args:
        n: Positions of the input.
        df: Number of spline functions.
    """

    def __init__(self, n: int, df: int) -> None:
        super().__init__()
        self.register_buffer("basis", bspline_basis(n, df), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return x @ self.basis


def _conv(c_in: int, c_out: int, kernel: int = 9, dilation: int = 1) -> nn.Conv1d:
    return nn.Conv1d(c_in, c_out, kernel, dilation=dilation, padding=dilation * (kernel - 1) // 2)


class Sei(nn.Module):
    """Sei: one-hot (N, 4, L) float → (N, n_targets) probabilities; layer names as published.

    Three residual convolution stages (each ``lconv`` then ``conv``, max-pooling by 4 between
    them), five dilated convolutions with cumulative residuals, a B-spline reduction of the
    L/16 positions to ``spline_df`` values per channel, and a two-layer classifier. At full width
    (the defaults) it has 889,979,983 parameters, ~3.6 GB in float32: build it under
    ``torch.device("meta")`` to inspect it without allocating them.

    Args:
        channels: (c1, c2, c3) widths of the three stages; (480, 640, 960) as published.
        n_targets: Number of outputs; 21,907 as published.
        spline_df: Spline functions per channel; 16 as published.
        sequence_length: Input length L, a multiple of 16; 4096 as published.

    Raises:
        D3ConfigError: A width below 1, ``spline_df < 4`` or a length that is not a multiple of
            16 of at least 32.
    """

    def __init__(
        self,
        channels: Sequence[int] = (480, 640, 960),
        n_targets: int = 21907,
        spline_df: int = 16,
        sequence_length: int = SEI_LENGTH,
    ) -> None:
        super().__init__()
        channels = tuple(int(c) for c in channels)
        if len(channels) != 3 or min(channels) < 1 or n_targets < 1:
            raise D3ConfigError(
                f"Sei needs three positive channel widths and n_targets >= 1; got channels="
                f"{channels}, n_targets={n_targets} (published: (480, 640, 960), 21907)"
            )
        if sequence_length % 16 or sequence_length < 32:
            raise D3ConfigError(
                f"Sei's sequence_length must be a multiple of 16 of at least 32 (two max-pools "
                f"by 4); got {sequence_length} (published: {SEI_LENGTH})"
            )
        c1, c2, c3 = channels
        self.channels, self.n_targets, self.spline_df = channels, n_targets, spline_df
        self.sequence_length = sequence_length
        self.lconv1 = nn.Sequential(_conv(4, c1), _conv(c1, c1))
        self.conv1 = nn.Sequential(_conv(c1, c1), nn.ReLU(True), _conv(c1, c1), nn.ReLU(True))
        self.lconv2 = nn.Sequential(
            nn.MaxPool1d(4, 4), nn.Dropout(0.2), _conv(c1, c2), _conv(c2, c2)
        )
        self.conv2 = nn.Sequential(
            nn.Dropout(0.2), _conv(c2, c2), nn.ReLU(True), _conv(c2, c2), nn.ReLU(True)
        )
        self.lconv3 = nn.Sequential(
            nn.MaxPool1d(4, 4), nn.Dropout(0.2), _conv(c2, c3), _conv(c3, c3)
        )
        self.conv3 = nn.Sequential(
            nn.Dropout(0.2), _conv(c3, c3), nn.ReLU(True), _conv(c3, c3), nn.ReLU(True)
        )
        for i, d in enumerate(_DILATIONS, start=1):
            dconv = nn.Sequential(nn.Dropout(0.1), _conv(c3, c3, 5, d), nn.ReLU(True))
            setattr(self, f"dconv{i}", dconv)
        self.spline_tr = nn.Sequential(
            nn.Dropout(0.5), BSplineTransform(sequence_length // 16, spline_df)
        )
        self.classifier = nn.Sequential(
            nn.Linear(c3 * spline_df, n_targets),
            nn.ReLU(True),
            nn.Linear(n_targets, n_targets),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        """(N, n_targets) probabilities from one-hot (N, 4, L) float sequences."""
        if x.dim() != 3 or x.shape[1] != 4 or x.shape[2] != self.sequence_length:
            raise D3InputError(
                f"Sei input must be one-hot (N, 4, {self.sequence_length}); got "
                f"{tuple(x.shape)}. Centre shorter sequences with pad_for_sei"
            )
        lout1 = self.lconv1(x)  # (N, c1, L)
        out1 = self.conv1(lout1)
        lout2 = self.lconv2(out1 + lout1)  # (N, c2, L/4)
        out2 = self.conv2(lout2)
        lout3 = self.lconv3(out2 + lout2)  # (N, c3, L/16)
        out3 = self.conv3(lout3)
        dconvs = [getattr(self, f"dconv{i}") for i in range(1, len(_DILATIONS) + 1)]
        out = out3 + dconvs[0](out3 + lout3)
        for dconv in dconvs[1:]:
            out = out + dconv(out)
        splined = self.spline_tr(out)  # (N, c3, df)
        return self.classifier(splined.flatten(1))  # (N, c3 * df), channel-major


class StrandAveraged(nn.Module):
    """The mean of a network's predictions for a sequence and its reverse complement.

    Args:
        model: Maps one-hot (N, 4, L) in A, C, G, T order to (N, F); kept as ``model``, so the
            keys read ``model.lconv1.0.weight``, … as in the published checkpoint.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        # Flipping the channels (A,C,G,T → T,G,C,A) complements; flipping positions reverses.
        return (self.model(x) + self.model(x.flip(1).flip(2))) / 2


def pad_for_sei(onehot: Tensor, total: int = SEI_LENGTH) -> Tensor:
    """Centres one-hot sequences in a Sei input whose flanks are 0.25 in all four channels.

    Args:
        onehot: (N, 4, L) one-hot, L <= total with total - L even (1024 → 1,536 each side).
            Integer one-hot is converted to float32.
        total: Length of the Sei input.

    Returns:
        (N, 4, total) float; the sequence in positions (total - L) / 2 onwards.

    Raises:
        D3InputError: Not (N, 4, L), L > total, or total - L odd.
    """
    if onehot.dim() != 3 or onehot.shape[1] != 4:
        raise D3InputError(f"pad_for_sei needs one-hot (N, 4, L); got {tuple(onehot.shape)}")
    length = onehot.shape[2]
    if length > total or (total - length) % 2:
        raise D3InputError(
            f"pad_for_sei cannot centre {length} bp in {total} positions: the length must be at "
            f"most {total} with an even difference (e.g. 1024)"
        )
    if not onehot.is_floating_point():
        onehot = onehot.float()
    side = (total - length) // 2
    out = onehot.new_full((onehot.shape[0], 4, total), 0.25)
    out[:, :, side : side + length] = onehot
    return out
