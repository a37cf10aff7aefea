"""Loading Sei's published weights strictly by name, through d3-core's safe loader.

The file is opened with `d3_core.checkpoints.safe_load.safe_load` (weights only unless trusted,
memory-mapped where torch can), the network's sizes are read from the weights' shapes, the
network is built on the meta device and the tensors are assigned to it, every key checked.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from d3_core.checkpoints.safe_load import safe_load
from d3_core.errors import CheckpointError, D3InputError
from d3_promoter.sei.names import read_sei_names
from d3_promoter.sei.network import Sei, StrandAveraged
from d3_promoter.sei.oracle import SeiOracle

SEI_PREFIXES = ("module.model.", "model.")
"""Key prefixes of the published checkpoint (DataParallel around Selene's strand wrapper)."""


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


SEI_TRUST_HINT = "Pass trusted=True to load_sei only if you trust where the file came from"


def _read_payload(path: Path, *, trusted: bool, mmap: bool) -> tuple[Any, list[str]]:
    """The file's payload through d3's safe loader (weights only unless trusted), and notes on
    how it was read (a file not in torch's zipfile format is read whole, not memory-mapped)."""
    notes: list[str] = []
    # A file that is not readable is an UnreadableFileError naming it and what was wrong; one
    # that names code is an UntrustedFileError naming the global; both are CheckpointErrors.
    payload = safe_load(
        path,
        trusted=trusted,
        mmap=mmap,
        what="Sei checkpoint",
        trust_hint=SEI_TRUST_HINT,
        notes=notes,
    )
    return payload, notes


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
