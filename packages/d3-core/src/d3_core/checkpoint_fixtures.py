"""Writers of the checkpoint files users already have, for tests: research, d3-dna, converted.

Every file is written from a key table transcribed from SPEC §10 (names, shapes, order, which
entries are in the EMA list), not from d3's modules or readers: `research_key_table` is SPEC §10
A, `packaged_key_table` SPEC §10 B. Research constants are written as the research code writes
them, whatever the config says: the conv tower's ``denses.k.dense`` is Linear(256, ·) in every
file (`RESEARCH_DENSE_INPUT`), DeepSTARR-Tran's unused ``embed`` is (128,), (256, 256), (256,),
and ``cond_dim`` is 128 in Tran files and 256 in Conv files. `PAPER_LAYOUTS` lists the six
published dataset × architecture layouts at paper size.

A research file is "trained" the way a real one is: only the trained tower (and the shared σ map)
moves away from its initial values, so the other tower's adaLN weights stay exactly zero, and its
EMA list differs from the raw weights wherever training happened. `reference_log_scores` is the
research forward pass written out from SPEC §6 and §7 on the file's tensors by name, so a test can
compare a loaded model with what the research code computes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch import Tensor

__all__ = [
    "PAPER_LAYOUTS",
    "RESEARCH_DENSE_INPUT",
    "Key",
    "ResearchFile",
    "packaged_key_table",
    "reference_log_scores",
    "research_config",
    "research_key_table",
    "write_converted",
    "write_packaged",
    "write_research",
]

RESEARCH_DENSE_INPUT = 256
"""Input width of the research conv tower's ``denses.k.dense``: a constant of that code, not
``cond_dim`` (SPEC §10 A), so a Tran file's dead conv tower has (256, 256) denses beside C = 128."""
RESEARCH_DILATIONS = (1, 1, 4, 16, 64)


@dataclass(frozen=True)
class Key:
    """One state-dict entry of a table: name, shape, and whether it is in the EMA list."""

    name: str
    shape: tuple[int, ...]
    ema: bool = True


PAPER_LAYOUTS: dict[tuple[str, str], dict[str, Any]] = {
    ("deepstarr", "transformer"): {"signal": 2, "length": 249, "label_classes": 5,
                                   "fourier": True, "label_emb_width": 2, "ema_length": 266},
    ("deepstarr", "conv"): {"signal": 2, "length": 249, "label_classes": 5, "fourier": False,
                            "label_emb_width": 2, "ema_length": 264},
    ("mpra", "transformer"): {"signal": 3, "length": 200, "label_classes": 4, "fourier": False,
                              "label_emb_width": 2, "ema_length": 264},
    ("mpra", "conv"): {"signal": 3, "length": 200, "label_classes": 4, "fourier": False,
                       "label_emb_width": 3, "ema_length": 264},
    ("promoter", "transformer"): {"signal": 1, "length": 1024, "label_classes": 5,
                                  "fourier": False, "label_emb_width": None, "ema_length": 260},
    ("promoter", "conv"): {"signal": 1, "length": 1024, "label_classes": 5, "fourier": False,
                           "label_emb_width": None, "ema_length": 260},
}  # fmt: skip
"""SPEC §10 A per published layout: label width S, length L, rows of the unused
``label_embed.embedding_table`` (n_cls + 1), whether the unused ``embed`` is there, the input
width S_lab of the conv ``label_emb`` (None: none), and the EMA list length at paper size."""


def _transformer_keys(*, vocab: int, hidden: int, signal: int, cond: int, label_classes: int,
                      n_blocks: int, n_heads: int) -> list[Key]:  # fmt: skip
    keys = [
        Key("vocab_embed.embedding", (vocab, hidden)),
        Key("vocab_embed.signal_embedding.weight", (hidden, signal)),
        Key("vocab_embed.signal_embedding.bias", (hidden,)),
        *_sigma_keys(cond),
        Key("label_embed.embedding_table.weight", (label_classes, cond)),
        Key("rotary_emb.inv_freq", (hidden // n_heads // 2,), ema=False),
    ]
    for i in range(n_blocks):
        p = f"blocks.{i}."
        keys += [
            Key(p + "norm1.weight", (hidden,)),
            Key(p + "attn_qkv.weight", (3 * hidden, hidden)),
            Key(p + "attn_out.weight", (hidden, hidden)),
            Key(p + "norm2.weight", (hidden,)),
            Key(p + "mlp.0.weight", (4 * hidden, hidden)),
            Key(p + "mlp.0.bias", (4 * hidden,)),
            Key(p + "mlp.2.weight", (hidden, 4 * hidden)),
            Key(p + "mlp.2.bias", (hidden,)),
            Key(p + "adaLN_modulation.weight", (6 * hidden, cond)),
            Key(p + "adaLN_modulation.bias", (6 * hidden,)),
        ]
    return [
        *keys,
        Key("output_layer.norm_final.weight", (hidden,)),
        Key("output_layer.linear.weight", (vocab, hidden)),
        Key("output_layer.linear.bias", (vocab,)),
        Key("output_layer.adaLN_modulation.weight", (2 * hidden, cond)),
        Key("output_layer.adaLN_modulation.bias", (2 * hidden,)),
    ]


def _sigma_keys(cond: int) -> list[Key]:
    return [
        Key("sigma_map.mlp.0.weight", (cond, 256)),
        Key("sigma_map.mlp.0.bias", (cond,)),
        Key("sigma_map.mlp.2.weight", (cond, cond)),
        Key("sigma_map.mlp.2.bias", (cond,)),
    ]


def _conv_keys(
    *, vocab: int, channels: int, kernel: int, blocks: int, dense_input: int
) -> list[Key]:
    keys = [Key("linear.weight", (channels, vocab + 1, kernel)), Key("linear.bias", (channels,))]
    for i in range(blocks):
        keys += [Key(f"conv_blocks.{i}.weight", (channels, channels, kernel)),
                 Key(f"conv_blocks.{i}.bias", (channels,))]  # fmt: skip
    for i in range(blocks):
        keys += [Key(f"denses.{i}.dense.weight", (channels, dense_input)),
                 Key(f"denses.{i}.dense.bias", (channels,))]  # fmt: skip
    for i in range(blocks):
        keys += [Key(f"norms.{i}.weight", (channels,)), Key(f"norms.{i}.bias", (channels,))]
    return [
        *keys,
        Key("final.0.weight", (channels, channels, 1)),
        Key("final.0.bias", (channels,)),
        Key("final.2.weight", (vocab, channels, 1)),
        Key("final.2.bias", (vocab,)),
    ]


def research_key_table(
    *,
    arch: str,
    signal: int,
    length: int,
    label_classes: int,
    fourier: bool = False,
    label_emb_width: int | None = None,
    hidden: int = 768,
    n_blocks: int = 12,
    n_heads: int = 12,
    channels: int = 256,
    conv_blocks: int = 20,
    kernel: int = 9,
    vocab: int = 4,
) -> list[Key]:
    """SPEC §10 A: every entry of a research ``checkpoint.pth`` model, in its stored order.

    Both towers are there whatever ``arch`` trained; ``arch`` only sets C (128 Tran, 256 Conv).
    The defaults are the paper sizes; tests shrink them, never the research constants.
    """
    cond = 128 if arch == "transformer" else 256
    keys = [Key("scale", (1,))]
    keys += _transformer_keys(vocab=vocab, hidden=hidden, signal=signal, cond=cond,
                              label_classes=label_classes, n_blocks=n_blocks, n_heads=n_heads)  # fmt: skip
    if fourier:
        keys += [Key("embed.0.W", (128,), ema=False), Key("embed.1.weight", (256, 256)),
                 Key("embed.1.bias", (256,))]  # fmt: skip
    keys += _conv_keys(vocab=vocab, channels=channels, kernel=kernel, blocks=conv_blocks,
                       dense_input=RESEARCH_DENSE_INPUT)  # fmt: skip
    if label_emb_width is not None:
        keys += [Key("label_emb.0.weight", (length, label_emb_width)),
                 Key("label_emb.0.bias", (length,)), Key("label_emb.2.weight", (length, length)),
                 Key("label_emb.2.bias", (length,))]  # fmt: skip
    return keys


def packaged_key_table(
    *,
    arch: str,
    signal: int,
    hidden: int = 768,
    n_blocks: int = 12,
    n_heads: int = 12,
    cond: int = 128,
    channels: int = 256,
    conv_blocks: int = 20,
    kernel: int = 9,
    vocab: int = 4,
) -> list[Key]:
    """SPEC §10 B: the model of a d3-dna ``.ckpt`` (one tower), in its stored order.

    The conv model's unused ``embed`` is d3-dna's GaussianFourierProjection(C) then Linear(C, C),
    and its denses take C; both as d3-dna 0.1.3 builds them.
    """
    if arch == "transformer":
        return _transformer_keys(vocab=vocab, hidden=hidden, signal=signal, cond=cond,
                                 label_classes=5, n_blocks=n_blocks, n_heads=n_heads)  # fmt: skip
    return [
        Key("scale", (1,)),
        *_sigma_keys(cond),
        Key("embed.0.W", (cond // 2,), ema=False),
        Key("embed.1.weight", (cond, cond)),
        Key("embed.1.bias", (cond,)),
        *_conv_keys(vocab=vocab, channels=channels, kernel=kernel, blocks=conv_blocks,
                    dense_input=cond),
    ]  # fmt: skip


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
        arch: The trained tower.
        n_heads: Attention heads of the transformer tower (the weights do not say).
    """

    path: Path
    run_dir: Path | None
    weights: dict[str, Tensor]
    ema: dict[str, Tensor]
    ema_length: int
    step: int
    arch: str = "transformer"
    n_heads: int = 2

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
    return ResearchFile(path, run_dir, _live(state, arch), named, len(shadow), step, arch, n_heads)


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
    return ResearchFile(path, None, _live(state, arch), named, len(shadow), step, arch, n_heads)


# -- the research forward pass (SPEC §6, §7), on tensors by name ---------------------------------


def _linear(x: Tensor, w: dict[str, Tensor], name: str) -> Tensor:
    return x @ w[name + ".weight"].T + w[name + ".bias"]


def _sigma_map(w: dict[str, Tensor], sigma: Tensor) -> Tensor:
    freqs = torch.exp(-math.log(10_000) * torch.arange(128, dtype=sigma.dtype) / 128)
    args = sigma[:, None] * freqs[None]
    features = torch.cat([args.cos(), args.sin()], dim=-1)  # cos first
    hidden = F.silu(_linear(features, w, "sigma_map.mlp.0"))
    return F.silu(_linear(hidden, w, "sigma_map.mlp.2"))  # c = SiLU(sigma_map(sigma))


def _norm(x: Tensor, weight: Tensor) -> Tensor:
    return F.layer_norm(x, x.shape[-1:], eps=1e-5) * weight


def _transformer(w: dict[str, Tensor], tokens: Tensor, labels: Tensor, sigma: Tensor,
                 n_heads: int) -> Tensor:  # fmt: skip
    batch, length = tokens.shape
    hidden = w["vocab_embed.embedding"].shape[1]
    d = hidden // n_heads
    signal = _linear(labels, w, "vocab_embed.signal_embedding")
    x = w["vocab_embed.embedding"][tokens] + (signal[:, None] if signal.dim() == 2 else signal)
    c = _sigma_map(w, sigma)
    inv_freq = 1.0 / 10_000 ** (torch.arange(0, d, 2, dtype=x.dtype) / d)
    theta = torch.arange(length, dtype=x.dtype)[:, None] * inv_freq[None]
    table = torch.cat([theta, theta], dim=-1)[:, None]  # (L, 1, d)

    def rotate(v: Tensor) -> Tensor:  # GPT-NeoX rotate-half
        return v * table.cos() + torch.cat([-v[..., d // 2 :], v[..., : d // 2]], -1) * table.sin()

    n_blocks = len({k.split(".")[1] for k in w if k.startswith("blocks.")})
    for i in range(n_blocks):
        p = f"blocks.{i}."
        mods = _linear(c, w, p + "adaLN_modulation")[:, None].chunk(6, dim=-1)
        shift1, scale1, gate1, shift2, scale2, gate2 = mods
        h = _norm(x, w[p + "norm1.weight"]) * (1 + scale1) + shift1
        qkv = (h @ w[p + "attn_qkv.weight"].T).view(batch, length, 3, n_heads, d)
        q, k, v = rotate(qkv[:, :, 0]), rotate(qkv[:, :, 1]), qkv[:, :, 2]
        att = torch.einsum("blhd,bmhd->bhlm", q, k) / math.sqrt(d)
        a = torch.einsum("bhlm,bmhd->blhd", att.softmax(-1), v).reshape(batch, length, hidden)
        x = x + gate1 * (a @ w[p + "attn_out.weight"].T)
        h = _norm(x, w[p + "norm2.weight"]) * (1 + scale2) + shift2
        h = _linear(F.gelu(_linear(h, w, p + "mlp.0"), approximate="tanh"), w, p + "mlp.2")
        x = x + gate2 * h
    shift, scale = _linear(c, w, "output_layer.adaLN_modulation")[:, None].chunk(2, dim=-1)
    h = _norm(x, w["output_layer.norm_final.weight"]) * (1 + scale) + shift
    return _linear(h, w, "output_layer.linear")


def _conv(w: dict[str, Tensor], tokens: Tensor, labels: Tensor, sigma: Tensor) -> Tensor:
    length = tokens.shape[1]
    if labels.dim() == 3:
        signal = labels  # the per-position label is the fifth channel
    elif "label_emb.0.weight" in w:
        signal = _linear(F.silu(_linear(labels, w, "label_emb.0")), w, "label_emb.2")[..., None]
    else:  # d3-dna: a (B, 1) label broadcast over positions
        signal = labels[:, None, :].expand(-1, length, -1)
    x = torch.cat([F.one_hot(tokens, 4).to(signal.dtype), signal], dim=-1).transpose(1, 2)
    pad = w["linear.weight"].shape[2] // 2
    h = F.silu(F.conv1d(x, w["linear.weight"], w["linear.bias"], padding=pad))
    c = _sigma_map(w, sigma)
    n_blocks = len({k.split(".")[1] for k in w if k.startswith("conv_blocks.")})
    for k in range(n_blocks):
        dilation = RESEARCH_DILATIONS[k % len(RESEARCH_DILATIONS)]
        dense = _linear(c, w, f"denses.{k}.dense")[:, :, None]
        normed = F.group_norm(h + dense, 1, w[f"norms.{k}.weight"], w[f"norms.{k}.bias"], 1e-5)
        conv = F.conv1d(normed, w[f"conv_blocks.{k}.weight"], w[f"conv_blocks.{k}.bias"],
                        padding=pad * dilation, dilation=dilation)  # fmt: skip
        h = h + F.silu(conv)
    h = F.gelu(F.conv1d(h, w["final.0.weight"], w["final.0.bias"]))  # exact erf GELU
    return F.conv1d(h, w["final.2.weight"], w["final.2.bias"]).transpose(1, 2)


def reference_log_scores(
    weights: dict[str, Tensor],
    arch: str,
    tokens: Tensor,
    labels: Tensor,
    sigma: Tensor,
    *,
    n_heads: int = 12,
    dtype: torch.dtype = torch.float64,
) -> Tensor:
    """The research model's log-scores (B, L, 4), computed from its tensors by name.

    Written out from SPEC §6 (transformer) and §7 (conv), independently of d3's models, with the
    current token's entry set to 0 as d3 does (the research conv model left it unmasked; SPEC §7).

    Args:
        weights: The trained tower's tensors (EMA applied), by research name.
        arch: ``"transformer"`` or ``"conv"``.
        tokens: (B, L) int64.
        labels: (B, S) or (B, L, 1).
        sigma: (B,).
        n_heads: Attention heads (the transformer's weights do not say).
        dtype: Precision of the computation.
    """
    w = {k: v.to(dtype) for k, v in weights.items()}
    labels, sigma = labels.to(dtype), sigma.to(dtype)
    if arch == "transformer":
        out = _transformer(w, tokens, labels, sigma, n_heads)
    else:
        out = _conv(w, tokens, labels, sigma)
    return out.scatter(-1, tokens[..., None], 0.0)
