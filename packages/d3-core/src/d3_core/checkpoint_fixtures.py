"""Writers of the checkpoint files users already have, for tests: research, d3-dna, converted.

The files are built the way their authors' code built them: a module tree registered in SPEC §10's
order (so PyTorch itself decides the state-dict and ``parameters()`` order), saved with
``torch.save``. Nothing here is shared with the readers in `d3_core.checkpoint`, so a test that
writes with these and reads with those checks one against the other.

A research file is "trained" the way a real one is: only the trained tower (and the shared σ map)
moves away from its initial values, so the other tower's adaLN weights stay exactly zero, and its
EMA list differs from the raw weights wherever training happened.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf
from torch import Tensor, nn

__all__ = [
    "ResearchFile",
    "ResearchModel",
    "research_config",
    "write_converted",
    "write_packaged",
    "write_research",
]


class _Holder(nn.Module):
    """An empty module to hang named parameters and submodules on."""


def _param(*shape: int, requires_grad: bool = True) -> nn.Parameter:
    return nn.Parameter(torch.zeros(*shape), requires_grad=requires_grad)


class ResearchModel(nn.Module):
    """The research SEDD module tree with the towers and unused parts a file format has.

    Args:
        signal: Label width S of the transformer's ``signal_embedding``.
        length: Sequence length L (the conv ``label_emb`` maps to L).
        transformer: Build the transformer tower (``vocab_embed`` … ``output_layer``).
        conv: Build the conv tower (``linear`` … ``final``).
        scale: Register the unused ``scale`` parameter first.
        label_classes: Rows of the unused ``label_embed.embedding_table``; 0 = none.
        fourier: Register the unused DeepSTARR ``embed`` (frozen ``W``, then a Linear).
        label_emb_width: Input width of the conv ``label_emb``; None = no ``label_emb``.
        hidden, n_blocks, n_heads, cond, channels, conv_blocks, kernel, vocab: Sizes.
    """

    def __init__(
        self,
        *,
        signal: int,
        length: int,
        transformer: bool = True,
        conv: bool = True,
        scale: bool = True,
        label_classes: int = 5,
        fourier: bool = False,
        label_emb_width: int | None = None,
        hidden: int = 768,
        n_blocks: int = 12,
        n_heads: int = 12,
        cond: int = 128,
        channels: int = 256,
        conv_blocks: int = 20,
        kernel: int = 9,
        vocab: int = 4,
    ) -> None:
        super().__init__()
        if scale:
            self.scale = _param(1)
        if transformer:
            self.vocab_embed = _Holder()
            self.vocab_embed.embedding = _param(vocab, hidden)
            self.vocab_embed.signal_embedding = nn.Linear(signal, hidden)
        self.sigma_map = _Holder()
        self.sigma_map.mlp = nn.Sequential(nn.Linear(256, cond), nn.SiLU(), nn.Linear(cond, cond))
        if label_classes:
            self.label_embed = _Holder()
            self.label_embed.embedding_table = nn.Embedding(label_classes, cond)
        if transformer:
            head_dim = hidden // n_heads
            self.rotary_emb = _Holder()
            inv_freq = 1.0 / 10_000 ** (torch.arange(0, head_dim, 2).float() / head_dim)
            self.rotary_emb.register_buffer("inv_freq", inv_freq)
            self.blocks = nn.ModuleList(self._block(hidden, cond) for _ in range(n_blocks))
            self.output_layer = _Holder()
            self.output_layer.norm_final = _Holder()
            self.output_layer.norm_final.weight = nn.Parameter(torch.ones(hidden))
            self.output_layer.linear = nn.Linear(hidden, vocab)
            self.output_layer.adaLN_modulation = nn.Linear(cond, 2 * hidden)
            for layer in (self.output_layer.linear, self.output_layer.adaLN_modulation):
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)
        if fourier:
            fourier_module = _Holder()
            fourier_module.W = _param(128, requires_grad=False)
            self.embed = nn.Sequential(fourier_module, nn.Linear(256, 256))
        if conv:
            self.linear = nn.Conv1d(vocab + 1, channels, kernel, padding=kernel // 2)
            self.conv_blocks = nn.ModuleList(
                nn.Conv1d(channels, channels, kernel, padding="same") for _ in range(conv_blocks)
            )
            self.denses = nn.ModuleList(_Holder() for _ in range(conv_blocks))
            for dense in self.denses:
                dense.dense = nn.Linear(cond, channels)
            self.norms = nn.ModuleList(nn.GroupNorm(1, channels) for _ in range(conv_blocks))
            self.final = nn.Sequential(
                nn.Conv1d(channels, channels, 1), nn.GELU(), nn.Conv1d(channels, vocab, 1)
            )
            if label_emb_width is not None:
                self.label_emb = nn.Sequential(
                    nn.Linear(label_emb_width, length), nn.SiLU(), nn.Linear(length, length)
                )

    @staticmethod
    def _block(hidden: int, cond: int) -> nn.Module:
        block = _Holder()
        block.norm1 = _Holder()
        block.norm1.weight = nn.Parameter(torch.ones(hidden))
        block.attn_qkv = nn.Linear(hidden, 3 * hidden, bias=False)
        block.attn_out = nn.Linear(hidden, hidden, bias=False)
        block.norm2 = _Holder()
        block.norm2.weight = nn.Parameter(torch.ones(hidden))
        block.mlp = nn.Sequential(
            nn.Linear(hidden, 4 * hidden), nn.GELU("tanh"), nn.Linear(4 * hidden, hidden)
        )
        block.adaLN_modulation = nn.Linear(cond, 6 * hidden)
        nn.init.zeros_(block.adaLN_modulation.weight)
        nn.init.zeros_(block.adaLN_modulation.bias)
        return block


_TOWER_PREFIXES = {
    "transformer": ("vocab_embed.", "blocks.", "output_layer."),
    "conv": ("linear.", "conv_blocks.", "denses.", "norms.", "final.", "label_emb."),
}


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


def _train(model: ResearchModel, arch: str, seed: int) -> tuple[dict, list[Tensor], dict]:
    """Moves the trained tower away from its initial values; returns (state dict, EMA list,
    the EMA of the trained tower by name). Untrained parameters keep EMA = value."""
    generator = torch.Generator().manual_seed(seed)
    live = _TOWER_PREFIXES[arch] + ("sigma_map.",)
    shadow, named = [], {}
    with torch.no_grad():
        for name, p in model.named_parameters():
            trained = name.startswith(live)
            if trained:
                p.copy_(torch.randn(p.shape, generator=generator) * 0.2)
            if p.requires_grad:
                ema = p.detach().clone()
                if trained:
                    ema += torch.randn(p.shape, generator=generator) * 0.05
                    named[name] = ema
                shadow.append(ema)
    return model.state_dict(), shadow, named


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
    model = ResearchModel(
        signal=signal, length=length, label_classes=label_classes, fourier=fourier,
        label_emb_width=label_emb_width, hidden=hidden, n_blocks=n_blocks, n_heads=n_heads,
        cond=cond, channels=channels, conv_blocks=conv_blocks,
    )  # fmt: skip
    state, shadow, named = _train(model, arch, seed)
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
    live = (
        _TOWER_PREFIXES[arch]
        + ("sigma_map.",)
        + (("rotary_emb.",) if arch == "transformer" else ())
    )
    weights = {k: v for k, v in state.items() if k.startswith(live)}
    return ResearchFile(path, run_dir, weights, named, len(shadow), step)


def write_converted(source: ResearchFile, path: str | Path, *, dataset: str, arch: str) -> Path:
    """Wraps a research file as the earlier Lightning integration's converter did (SPEC §10 C):
    both towers under ``score_model.``, the EMA flattened, the research config as a DictConfig."""
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
    """Writes a d3-dna release ``.ckpt`` (SPEC §10 B): one tower, ``cond_dim`` 128, the EMA list
    aligned with that model's parameters, an OmegaConf DictConfig as hyper-parameters."""
    path = Path(path)
    transformer = arch == "transformer"
    model = ResearchModel(
        signal=signal, length=length, transformer=transformer, conv=not transformer,
        scale=not transformer, label_classes=5 if transformer else 0, fourier=not transformer,
        hidden=hidden, n_blocks=n_blocks, n_heads=n_heads, cond=128, channels=channels,
        conv_blocks=conv_blocks,
    )  # fmt: skip
    state, shadow, named = _train(model, arch, seed)
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
    live = (
        _TOWER_PREFIXES[arch]
        + ("sigma_map.",)
        + (("rotary_emb.",) if arch == "transformer" else ())
    )
    weights = {k: v for k, v in state.items() if k.startswith(live)}
    return ResearchFile(path, None, weights, named, len(shadow), step)
