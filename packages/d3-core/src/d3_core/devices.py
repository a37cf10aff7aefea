"""Which torch device a command runs on: the ``--device`` option, checked before any work.

`resolve_device` is what ``d3 sample``, ``d3 design``, ``d3 evaluate`` and ``d3 oracle train``
(``--gpus``) call first, so that a device torch cannot use is one line naming the devices it can
(``d3: error: ...``), not torch's "Torch not compiled with CUDA enabled" traceback half-way
through loading a checkpoint.
"""

from __future__ import annotations

from d3_core.errors import D3ConfigError

__all__ = ["available_devices", "require_cuda", "resolve_device"]


def available_devices() -> list[str]:
    """The device strings torch can use here: ``cpu``, then ``cuda:0``..., then ``mps``."""
    import torch

    found = ["cpu"]
    if torch.cuda.is_available():
        found += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return found


def resolve_device(requested: str | None, *, option: str = "--device") -> str:
    """The device to run on: `requested` once checked, or ``cuda`` when there is one, else ``cpu``.

    Args:
        requested: ``cpu``, ``cuda``, ``cuda:N``, ``mps`` (any case), or None for the default.
        option: The option's name, for messages.

    Returns:
        A device string torch accepts (``cuda`` stays ``cuda``: torch's current device).

    Raises:
        D3ConfigError: Not a device name, or one this machine (or this build of torch) lacks;
            the message lists the devices that are available.
    """
    import torch

    if requested is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    text = str(requested).strip().lower()
    have = ", ".join(available_devices())
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise D3ConfigError(f"{option} {requested!r} is not a device; use one of: {have}") from None
    if device.type == "cpu":
        return "cpu" if device.index in (None, 0) else _missing(option, requested, have)
    if device.type == "cuda":
        require_cuda(f"{option} {requested}")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise D3ConfigError(
                f"{option} {requested}: this machine has {count} CUDA device(s) "
                f"(cuda:0..cuda:{count - 1}); available: {have}"
            )
        return text
    if device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise D3ConfigError(
                f"{option} {requested}: no Apple MPS device here; available: {have}"
            )
        return "mps"
    return _missing(option, requested, have)


def require_cuda(what: str) -> None:
    """Raises D3ConfigError unless torch can use a CUDA GPU here.

    Args:
        what: What asked for one, e.g. ``--gpus 1``; the message starts with it.
    """
    import torch

    if torch.cuda.is_available():
        return
    why = (
        "this torch was built without CUDA"
        if torch.version.cuda is None
        else "no CUDA GPU is visible (check CUDA_VISIBLE_DEVICES and the driver)"
    )
    raise D3ConfigError(f"{what}: {why}; available: {', '.join(available_devices())}")


def _missing(option: str, requested: str, have: str) -> str:
    raise D3ConfigError(f"{option} {requested!r}: d3 does not run there; use one of: {have}")
