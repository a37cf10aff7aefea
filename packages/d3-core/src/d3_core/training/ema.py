"""Exponential moving average of a model's trainable parameters, stored by name
(docs/method.md#ema)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from d3_core.errors import CheckpointError, D3ConfigError

__all__ = ["ExponentialMovingAverage"]


def _trainable(model: nn.Module) -> dict[str, nn.Parameter]:
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


class ExponentialMovingAverage:
    """Shadow copies of a model's trainable parameters, keyed by parameter name.

    Call `update(model)` once after every optimizer step. The decay warms up as
    d_n = min(decay, (1 + n) / (10 + n)) with n the number of updates so far (after
    incrementing), and each update is shadow <- shadow - (1 - d_n) (shadow - param).

    Args:
        model: The model whose trainable parameters are tracked.
        decay: Target decay; D3 uses 0.9999.
    """

    def __init__(self, model: nn.Module, decay: float = 0.9999) -> None:
        if not 0.0 <= decay < 1.0:
            raise D3ConfigError(f"EMA decay must lie in [0, 1), got {decay}")
        self.decay = decay
        self.num_updates = 0
        self.shadow = {n: p.detach().clone() for n, p in _trainable(model).items()}

    def current_decay(self) -> float:
        """The decay the next update will use."""
        n = self.num_updates + 1
        return min(self.decay, (1 + n) / (10 + n))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Moves every shadow towards the model's current parameter value."""
        params = self._matching(model)
        weight = 1.0 - self.current_decay()
        self.num_updates += 1
        shadows = list(self.shadow.values())
        torch._foreach_lerp_(shadows, [params[n].detach() for n in self.shadow], weight)

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Overwrites the model's trainable parameters with the averages."""
        params = self._matching(model)
        for name, shadow in self.shadow.items():
            params[name].copy_(shadow)

    @contextmanager
    def average_parameters(self, model: nn.Module) -> Iterator[nn.Module]:
        """Temporarily swaps the averages into `model`; the trained values return on exit."""
        params = self._matching(model)
        backup = {n: params[n].detach().clone() for n in self.shadow}
        self.copy_to(model)
        try:
            yield model
        finally:
            with torch.no_grad():
                for name, value in backup.items():
                    params[name].copy_(value)

    def to(self, device: torch.device | str) -> ExponentialMovingAverage:
        """Moves the shadows to `device` (in place) and returns self."""
        self.shadow = {n: s.to(device) for n, s in self.shadow.items()}
        return self

    def state_dict(self) -> dict[str, Any]:
        """Plain data: {"decay", "num_updates", "shadow": {name: tensor}}."""
        return {"decay": self.decay, "num_updates": self.num_updates, "shadow": dict(self.shadow)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Loads a `state_dict`, strictly: every name present, no extras, every shape equal."""
        missing = sorted(set(self.shadow) - set(state["shadow"]))
        unexpected = sorted(set(state["shadow"]) - set(self.shadow))
        mismatched = [
            f"{n}: checkpoint {tuple(state['shadow'][n].shape)} vs model {tuple(s.shape)}"
            for n, s in self.shadow.items()
            if n in state["shadow"] and state["shadow"][n].shape != s.shape
        ]
        if missing or unexpected or mismatched:
            raise CheckpointError(
                "EMA state does not match the model: "
                f"missing {missing or 'none'}; unexpected {unexpected or 'none'}; "
                f"shape mismatches {mismatched or 'none'}"
            )
        self.decay = float(state["decay"])
        self.num_updates = int(state["num_updates"])
        for name, shadow in self.shadow.items():
            shadow.copy_(state["shadow"][name])

    def _matching(self, model: nn.Module) -> dict[str, nn.Parameter]:
        params = _trainable(model)
        if params.keys() != self.shadow.keys():
            missing = sorted(set(self.shadow) - set(params))
            extra = sorted(set(params) - set(self.shadow))
            raise CheckpointError(
                f"model does not match the EMA: parameters missing from the model {missing}, "
                f"parameters the EMA does not track {extra}"
            )
        return params
