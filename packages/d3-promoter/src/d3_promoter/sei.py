"""The Promoter oracle Sei (SPEC §12): the published network, its output names and a strict loader.

Sei (Chen et al. 2022) maps a one-hot (N, 4, 4096) sequence to 21,907 chromatin profiles. The
published weights have ~890 M parameters (889,979,983; ~3.6 GB in float32) and are read by name
from ``best.sei.model.pth.tar`` (``state_dict`` keys under ``module.model.`` or ``model.``). The
Promoter readout is the mean of the 2,350 outputs whose assay in ``target.sei.names`` is H3K4me3,
for a 1024-bp sequence centred in 4096 positions with 0.25 in all four channels on each side.
"""

from __future__ import annotations

import os
import pickle
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from d3_core.errors import CheckpointError, D3ConfigError, D3InputError
from d3_core.oracles.oracle import tokens_to_input

__all__ = [
    "SEI_LENGTH",
    "SEI_PREFIXES",
    "BSplineTransform",
    "Sei",
    "SeiOracle",
    "SeiTarget",
    "StrandAveraged",
    "assay_indices",
    "bspline_basis",
    "load_sei",
    "pad_for_sei",
    "read_sei_names",
]

SEI_LENGTH = 4096
"""Input length of the published Sei; 4096 / 16 = 256 positions reach the spline layer."""
SEI_PREFIXES = ("module.model.", "model.")
"""Key prefixes of the published checkpoint (DataParallel around Selene's strand wrapper)."""
READOUT_ASSAY = "H3K4me3"
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


@dataclass(frozen=True)
class SeiTarget:
    """One Sei output, a line of ``target.sei.names`` such as ``HepG2|H3K4me3|ID:1234|...``.

    Attributes:
        context: The first field (cell type or tissue).
        assay: The second field (e.g. ``"H3K4me3"``, ``"DNase"``, a factor's name).
        name: The whole line.
    """

    context: str
    assay: str
    name: str


def read_sei_names(path: str | os.PathLike, n_outputs: int | None = None) -> list[SeiTarget]:
    """Reads ``target.sei.names``: one ``|``-separated line per Sei output, in output order.

    Args:
        path: The names file (21,907 lines for the published weights, 2,350 of them H3K4me3).
        n_outputs: The weights' output width; the line count must equal it when given.

    Returns:
        One `SeiTarget` per line; fields are stripped of surrounding spaces.

    Raises:
        D3InputError: The file is missing or empty, a line has no second field, or the line
            count differs from `n_outputs`.
    """
    path = Path(path)
    if not path.is_file():
        raise D3InputError(f"Sei names file {str(path)!r} does not exist")
    lines = path.read_text(encoding="utf-8").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise D3InputError(
            f"Sei names file {str(path)!r} is empty; expected one line per output such as "
            f"'HepG2|H3K4me3|ID:1234'"
        )
    targets = []
    for number, line in enumerate(lines, start=1):
        fields = [field.strip() for field in line.split("|")]
        if len(fields) < 2 or not fields[1]:
            raise D3InputError(
                f"{path}, line {number}: {line!r} has no second '|'-separated field (the "
                f"assay); each line must read like 'HepG2|H3K4me3|ID:1234'"
            )
        targets.append(SeiTarget(context=fields[0], assay=fields[1], name=line.strip()))
    if n_outputs is not None and len(targets) != n_outputs:
        raise D3InputError(
            f"{path} names {len(targets)} outputs but the Sei weights have {n_outputs}; use the "
            f"target.sei.names released with these weights"
        )
    return targets


def assay_indices(names: Sequence[SeiTarget], assay: str = READOUT_ASSAY) -> np.ndarray:
    """Positions of the outputs whose assay (second field) is `assay`, exactly (case matters).

    Args:
        names: From `read_sei_names`.
        assay: The assay to read out.

    Returns:
        (K,) int64 output indices, ascending; K = 2,350 for H3K4me3 in the published names.

    Raises:
        D3InputError: No output has that assay (the message lists the commonest ones present).
    """
    indices = np.array([i for i, t in enumerate(names) if t.assay == assay], dtype=np.int64)
    if indices.size == 0:
        counts = Counter(t.assay for t in names)
        common = ", ".join(repr(a) for a, _ in counts.most_common(6))
        raise D3InputError(
            f"no Sei output has the assay {assay!r}; the {len(names)} names hold "
            f"{len(counts)} assays, e.g. {common}. Check the names file is Sei's target.sei.names"
        )
    return indices


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


# -- loading ------------------------------------------------------------------------------------


def load_sei(
    path: str | os.PathLike,
    names_path: str | os.PathLike | None = None,
    *,
    device: Any = "cpu",
    trusted: bool = False,
    mmap: bool = True,
) -> SeiOracle:
    """Loads Sei weights strictly by name, with the names of its outputs.

    The published ``best.sei.model.pth.tar`` holds ~890 M parameters (~3.6 GB in float32). It is
    memory-mapped (no second copy), the network is built on the meta device with sizes read from
    the weights, and the tensors are assigned to it.

    Args:
        path: The checkpoint, a dict whose ``state_dict`` keys start ``module.model.`` or
            ``model.``.
        names_path: ``target.sei.names``; default: that file beside the checkpoint.
        device: Where to put the network.
        trusted: Allow a full unpickle for a file that stores Python objects (it can run code).
        mmap: Memory-map the file; a file not in torch's zipfile format is read whole instead.

    Returns:
        The `SeiOracle`.

    Raises:
        CheckpointError: Unreadable file, Python objects without `trusted`, no ``state_dict``,
            other key prefixes, or missing, unexpected or mis-shaped keys (all listed).
        D3InputError: The names file is missing or malformed, its line count differs from the
            outputs, or it names no H3K4me3 output.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Sei checkpoint {str(path)!r} does not exist")
    names_file = Path(names_path) if names_path is not None else path.parent / "target.sei.names"
    if not names_file.is_file():
        raise D3InputError(
            f"no Sei output names at {str(names_file)!r}; looked "
            f"{'where names_path points' if names_path is not None else 'beside the checkpoint'}. "
            f"Pass names_path= the target.sei.names released with the Sei weights"
        )
    payload, notes = _read_payload(path, trusted=trusted, mmap=mmap)
    weights, prefix = _sei_weights(payload, path)
    sizes = _sei_sizes(weights, path)
    with torch.device("meta"):
        network = Sei(**sizes)  # shapes only: nothing allocated until the weights are assigned
    _check_weights(network, weights, path, sizes)
    network.load_state_dict(weights, strict=True, assign=True)
    names = read_sei_names(names_file, n_outputs=sizes["n_targets"])
    model = StrandAveraged(network).to(device).eval().requires_grad_(False)
    notes.append(f"weights under the prefix {prefix!r}")
    return SeiOracle(model, names, source=path, names_source=names_file, notes=notes)


def _read_payload(path: Path, *, trusted: bool, mmap: bool) -> tuple[Any, list[str]]:
    """``torch.load`` (weights only unless trusted); the payload and notes on how it was read."""
    try:
        return torch.load(path, map_location="cpu", weights_only=not trusted, mmap=mmap), []
    except RuntimeError as err:
        if not (mmap and "mmap can only be used" in str(err)):
            raise _load_error(path, err, trusted) from None
    except Exception as err:
        raise _load_error(path, err, trusted) from None
    # Not in torch's zipfile format (e.g. the legacy format): mmap is impossible, read it whole.
    payload, notes = _read_payload(path, trusted=trusted, mmap=False)
    return payload, ["not in torch's zipfile format, so read whole (mmap=False)", *notes]


def _load_error(path: Path, err: BaseException, trusted: bool) -> CheckpointError:
    """The error for a failed ``torch.load``: `trusted` named where a full unpickle would help."""
    text = str(err)
    found = re.search(r"GLOBAL (\S+)", text)
    if not trusted and isinstance(err, pickle.UnpicklingError) and found:
        reason = f"it stores Python objects ({found.group(1)})"
    elif not trusted and "legacy .tar format" in text:
        reason = "it is in torch's legacy .tar format"
    elif not trusted and isinstance(err, pickle.UnpicklingError):
        lines = text.split("WeightsUnpickler error:", 1)[-1].strip().splitlines()
        return CheckpointError(
            f"cannot read Sei checkpoint {str(path)!r} with torch.load(weights_only=True) "
            f"({lines[0] if lines else 'unpickling failed'}): it is corrupt or not a PyTorch file, "
            f"or it needs a full unpickle (trusted=True, only for a file you trust)"
        )
    else:
        return _unreadable(path, err)
    return CheckpointError(
        f"{path} cannot be read with torch.load(weights_only=True): {reason}, which needs a full "
        f"unpickle, and unpickling can run code hidden in a file. Pass trusted=True to load_sei "
        f"only if you trust where the file came from"
    )


def _unreadable(path: Path, err: BaseException) -> CheckpointError:
    reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return CheckpointError(
        f"cannot read Sei checkpoint {str(path)!r} (corrupt, truncated, or not a PyTorch file): "
        f"{reason}"
    )


def _sei_weights(payload: Any, path: Path) -> tuple[dict[str, Tensor], str]:
    """The ``state_dict`` tensors with the published prefix removed; the prefix."""
    if not isinstance(payload, dict) or not isinstance(payload.get("state_dict"), dict):
        found = list(payload)[:8] if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(
            f"{path} has no 'state_dict' dict; found {found}. Expected Sei's training "
            f"checkpoint {{'state_dict': {{'module.model.lconv1.0.weight': ..., ...}}, ...}}"
        )
    state = payload["state_dict"]
    odd = [k for k, v in state.items() if not isinstance(v, Tensor)][:5]
    if not state or odd:
        raise CheckpointError(f"{path}: state_dict is empty or holds non-tensors (keys {odd})")
    for prefix in SEI_PREFIXES:
        if all(k.startswith(prefix) for k in state):
            return {k[len(prefix) :]: v for k, v in state.items()}, prefix
    first = next((p for p in SEI_PREFIXES if next(iter(state)).startswith(p)), None)
    strays = [k for k in state if first is None or not k.startswith(first)][:5]
    raise CheckpointError(
        f"{path}: every state_dict key must start with 'module.model.' or 'model.' (all the "
        f"same); found keys such as {strays}. Save bare Sei weights as "
        f"{{'state_dict': {{'model.' + key: tensor}}}}"
    )


def _sei_sizes(weights: dict[str, Tensor], path: Path) -> dict[str, Any]:
    """Sei's constructor sizes read from the weights' shapes."""
    dims = {"lconv1.0.weight": 3, "lconv2.2.weight": 3, "lconv3.2.weight": 3}
    dims |= {"classifier.0.weight": 2, "classifier.2.weight": 2}
    bad = [
        f"{k} {tuple(weights[k].shape) if k in weights else 'missing'}"
        for k, d in dims.items()
        if k not in weights or weights[k].dim() != d
    ]
    if bad:
        raise CheckpointError(
            f"{path}: cannot read Sei's sizes; expected 3-d convolution and 2-d linear weights "
            f"but found {bad}. Is this a Sei checkpoint?"
        )
    c3 = weights["lconv3.2.weight"].shape[0]
    n_targets, features = weights["classifier.0.weight"].shape
    if features % c3 or features // c3 < 4:
        raise CheckpointError(
            f"{path}: classifier.0.weight has {features} inputs, which is not c3={c3} channels "
            f"times a spline df of at least 4"
        )
    channels = tuple(weights[k].shape[0] for k in ("lconv1.0.weight", "lconv2.2.weight"))
    return {"channels": (*channels, c3), "n_targets": n_targets, "spline_df": features // c3}


def _check_weights(model: Sei, weights: dict[str, Tensor], path: Path, sizes: dict) -> None:
    """Lists every missing, unexpected and mis-shaped key in one error."""
    expected = model.state_dict()  # meta tensors: shapes only
    missing = [k for k in expected if k not in weights]
    unexpected = [k for k in weights if k not in expected]
    misshaped = [
        f"{k}: file {tuple(weights[k].shape)}, Sei {tuple(v.shape)}"
        for k, v in expected.items()
        if k in weights and weights[k].shape != v.shape
    ]
    if missing or unexpected or misshaped:
        raise CheckpointError(
            f"{path}: the weights do not match a Sei with channels {sizes['channels']}, "
            f"{sizes['n_targets']} outputs and spline df {sizes['spline_df']} (sizes read from "
            f"the file): missing {missing or 'none'}; unexpected {unexpected or 'none'}; "
            f"mis-shaped {misshaped or 'none'}. Use the published best.sei.model.pth.tar or "
            f"weights saved from d3_promoter.sei.Sei"
        )
