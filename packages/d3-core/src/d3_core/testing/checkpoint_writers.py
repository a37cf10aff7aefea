"""Writers of the checkpoint files users already have, for tests: research, d3-dna, converted.

Every file is written from docs/checkpoint-formats.md's key tables (`d3_core.testing.key_tables`:
names, shapes, order, which entries are in the EMA list), not from d3's modules or readers.

A research file is "trained" the way a real one is: only the trained tower (and the shared σ map)
moves away from its initial values, so the other tower's adaLN weights stay exactly zero, and its
EMA list differs from the raw weights wherever training happened. `d3_core.testing.reference`
computes what the research code would from such a file's tensors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf
from torch import Tensor

from d3_core.testing.key_tables import Key, packaged_key_table, research_key_table

__all__ = [
    "ResearchFile",
    "research_config",
    "write_converted",
    "write_packaged",
    "write_research",
]

_TRAINED_PREFIXES = {
    "transformer": ("vocab_embed.", "sigma_map.", "blocks.", "output_layer."),
    "conv": ("sigma_map.", "linear.", "conv_blocks.", "denses.", "norms.", "final.", "label_emb."),
}
_ZERO_INIT = ("adaLN_modulation.", "output_layer.linear.")
"""Initialised to zero in the research transformer, so exactly zero while untrained."""


def _value(key: Key, trained: bool, generator: torch.Generator) -> Tensor:
    """A tensor as training (or its absence) leaves it: fan-in scaled, zero-init kept at zero."""
    name, shape = key.name, key.shape
    if name == "scale":
        return torch.ones(shape)
    if name == "rotary_emb.inv_freq":
        head_dim = 2 * shape[0]
        return 1.0 / 10_000 ** (torch.arange(0, head_dim, 2).float() / head_dim)
    if name == "embed.0.W":
        return torch.randn(shape, generator=generator) * 30
    if any(part in name for part in _ZERO_INIT) and not trained:
        return torch.zeros(shape)
    noise = torch.randn(shape, generator=generator)
    norm = name.endswith(("norm1.weight", "norm2.weight", "norm_final.weight")) or (
        name.startswith("norms.") and name.endswith(".weight")
    )
    if norm:
        return 1 + 0.1 * noise if trained else torch.ones(shape)
    if len(shape) == 1:
        return 0.1 * noise
    fan_in = math.prod(shape[1:])
    gain = 0.5 if "adaLN_modulation" in name else 1.0
    return noise * gain / math.sqrt(fan_in)


def _materialise(table: list[Key], arch: str, seed: int):
    """(state dict, EMA list, EMA of the trained entries by name) for a key table."""
    generator = torch.Generator().manual_seed(seed)
    state, shadow, named = {}, [], {}
    for key in table:
        trained = key.name.startswith(_TRAINED_PREFIXES[arch])
        value = _value(key, trained, generator)
        state[key.name] = value
        if key.ema:
            ema = value.clone()
            if trained:
                ema = ema + 0.02 * torch.randn(key.shape, generator=generator)
                named[key.name] = ema
            shadow.append(ema)
    return state, shadow, named


@dataclass(frozen=True)
class ResearchFile:
    """A written test checkpoint and what loading it must give.

    Attributes:
        path: The file (or, for research runs, the ``checkpoint.pth`` in its run directory).
        run_dir: The research run directory, if one was written.
        weights: The raw weights of the trained tower (and σ map), by name.
        ema: The EMA values the loaded model must hold, by name; they differ from ``weights``.
        ema_length: Length of the file's positional EMA list.
        step: The stored step.
    """

    path: Path
    run_dir: Path | None
    weights: dict[str, Tensor]
    ema: dict[str, Tensor]
    ema_length: int
    step: int

    def ema_state(self) -> dict[str, Tensor]:
        """The trained tower's tensors as the research code evaluates them: EMA applied."""
        return {**self.weights, **self.ema}


def research_config(
    dataset: str, arch: str, *, length: int, hidden: int, n_blocks: int, n_heads: int, cond: int
) -> dict[str, Any]:
    """A research run's ``hydra/config.yaml`` as plain data (SEDD's sections)."""
    # fmt: off
    return {
        "ngpus": 1,
        "training": {"batch_size": 256, "n_iters": 1_000_000, "ema": 0.9999, "accum": 1},
        "data": {"train": dataset, "valid": dataset},
        "graph": {"type": "uniform"},
        "noise": {"type": "geometric", "sigma_min": 1e-4, "sigma_max": 20},
        "sampling": {"predictor": "euler", "steps": 128, "noise_removal": True},
        "optim": {"weight_decay": 0, "optimizer": "AdamW", "lr": 3e-4, "beta1": 0.9,
                  "beta2": 0.999, "eps": 1e-8, "warmup": 2500, "grad_clip": 1.0},
        "model": {"name": "small", "type": "ddit", "hidden_size": hidden, "cond_dim": cond,
                  "length": length, "n_blocks": n_blocks, "n_heads": n_heads,
                  "scale_by_sigma": True, "dropout": 0.1},
    }
    # fmt: on


def _live(state: dict[str, Tensor], arch: str) -> dict[str, Tensor]:
    prefixes = _TRAINED_PREFIXES[arch] + (("rotary_emb.",) if arch == "transformer" else ())
    return {k: v for k, v in state.items() if k.startswith(prefixes)}


def write_research(
    run_dir: str | Path,
    *,
    dataset: str,
    arch: str,
    signal: int,
    length: int,
    label_classes: int,
    fourier: bool = False,
    label_emb_width: int | None = None,
    hidden: int = 32,
    n_blocks: int = 2,
    n_heads: int = 2,
    channels: int = 16,
    conv_blocks: int = 5,
    seed: int = 0,
    step: int = 1234,
    weights_name: str = "checkpoints/checkpoint.pth",
    config: bool = True,
) -> ResearchFile:
    """Writes a research run directory: ``hydra/config.yaml`` and a both-tower ``.pth``.

    ``cond_dim`` is 128 for a Tran run and 256 for a Conv run, as in the research files.
    """
    run_dir = Path(run_dir)
    cond = 128 if arch == "transformer" else 256
    table = research_key_table(
        arch=arch, signal=signal, length=length, label_classes=label_classes, fourier=fourier,
        label_emb_width=label_emb_width, hidden=hidden, n_blocks=n_blocks, n_heads=n_heads,
        channels=channels, conv_blocks=conv_blocks,
    )  # fmt: skip
    state, shadow, named = _materialise(table, arch, seed)
    path = run_dir / weights_name
    path.parent.mkdir(parents=True, exist_ok=True)
    ema = {"decay": 0.9999, "num_updates": step, "shadow_params": shadow}
    torch.save({"optimizer": {"state": {}, "param_groups": []}, "model": state, "ema": ema,
                "step": step}, path)  # fmt: skip
    if config:
        plain = research_config(dataset, arch, length=length, hidden=hidden, n_blocks=n_blocks,
                                n_heads=n_heads, cond=cond)  # fmt: skip
        (run_dir / "hydra").mkdir(parents=True, exist_ok=True)
        OmegaConf.save(OmegaConf.create(plain), run_dir / "hydra" / "config.yaml")
    return ResearchFile(path, run_dir, _live(state, arch), named, len(shadow), step)


def write_converted(source: ResearchFile, path: str | Path, *, dataset: str, arch: str) -> Path:
    """Wraps a research file as the earlier Lightning integration's converter did
    (docs/checkpoint-formats.md#converted-lightning-checkpoints): both towers under
    ``score_model.``, the EMA flattened, the research config as a DictConfig."""
    path = Path(path)
    research = torch.load(source.path, weights_only=True)
    state_dict = {f"score_model.{k}": v for k, v in research["model"].items()}
    ema = research["ema"]
    state_dict |= {"ema.decay": ema["decay"], "ema.num_updates": ema["num_updates"],
                   "ema.shadow_params": ema["shadow_params"]}  # fmt: skip
    config = OmegaConf.load(source.run_dir / "hydra" / "config.yaml")
    payload = {
        "epoch": 0,
        "global_step": research["step"],
        "pytorch-lightning_version": "2.1.0",
        "state_dict": state_dict,
        "hyper_parameters": {"cfg": config, "original_step": research["step"]},
    }
    torch.save(payload, path)
    return path


def write_packaged(
    path: str | Path,
    *,
    dataset: str,
    arch: str,
    signal: int,
    length: int,
    hidden: int = 32,
    n_blocks: int = 2,
    n_heads: int = 2,
    channels: int = 16,
    conv_blocks: int = 5,
    seed: int = 0,
    step: int = 777,
) -> ResearchFile:
    """Writes a d3-dna release ``.ckpt`` (docs/checkpoint-formats.md#packaged-release-checkpoints):
    one tower, ``cond_dim`` 128, the EMA list aligned with that model's parameters, an OmegaConf
    DictConfig as hyper-parameters."""
    path = Path(path)
    transformer = arch == "transformer"
    table = packaged_key_table(
        arch=arch, signal=signal, hidden=hidden, n_blocks=n_blocks, n_heads=n_heads, cond=128,
        channels=channels, conv_blocks=conv_blocks,
    )  # fmt: skip
    state, shadow, named = _materialise(table, arch, seed)
    state_dict = {f"score_model.{k}": v for k, v in state.items()}
    state_dict |= {"ema.decay": 0.9999, "ema.num_updates": step, "ema.shadow_params": shadow}
    config = OmegaConf.create({
        "model": {"architecture": "transformer" if transformer else "convolutional",
                  "hidden_size": hidden, "cond_dim": 128, "n_blocks": n_blocks,
                  "n_heads": n_heads, "dropout": 0.1},
        "dataset": {"name": dataset, "sequence_length": length, "signal_dim": signal},
        "noise": {"type": "geometric", "sigma_min": 1e-4, "sigma_max": 20.0},
        "training": {"batch_size": 256, "ema": 0.9999},
    })  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"epoch": 3, "global_step": step, "pytorch-lightning_version": "2.4.0",
                "state_dict": state_dict,
                "hyper_parameters": {"cfg": config, "dataset_name": dataset}}, path)  # fmt: skip
    return ResearchFile(path, None, _live(state, arch), named, len(shadow), step)
