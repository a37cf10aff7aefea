"""Reading every checkpoint a user has, and writing d3's own format from any of them.

Four kinds of file are read, recognised by their content, never by their file name:

* ``d3``: the Lightning ``.ckpt`` that `d3 train` writes (or `d3 convert`): plain data and
  tensors only, EMA by parameter name, the config, dataset, architecture and precision.
* ``research``: the published D3 code's ``checkpoint.pth`` (SPEC §10 A), alone or in its run
  directory (``hydra/config.yaml`` beside ``checkpoints/``). Both towers, a positional EMA list.
* ``packaged``: the d3-dna release's Lightning ``.ckpt`` (SPEC §10 B).
* ``converted``: the earlier Lightning integration's files (SPEC §10 C): a research checkpoint
  in a Lightning envelope.

Files are opened with ``torch.load(weights_only=True)``, which cannot run code. The packaged and
converted files store their configs as pickled OmegaConf objects, which only a full unpickler
reads, and unpickling can execute code hidden in a file: those load only with ``trusted=True``
(``--trust-checkpoint``). Converting such a file once gives a d3 file that loads safely.

Every format is read strictly by name: a missing, unexpected or mis-shaped tensor is an error
that lists them, and a positional EMA list is named through SPEC's key order before use.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn

from d3_core import formats
from d3_core.config import config_from_plain, model_sizes, resolve_config, to_plain
from d3_core.errors import CheckpointError, D3ConfigError, D3Error
from d3_core.graph import Graph, UniformGraph
from d3_core.noise import Noise, build_noise
from d3_core.registry import (
    DatasetPlugin,
    arch_label,
    canonical_arch,
    list_datasets,
    load_dataset_plugin,
)

__all__ = [
    "CHECKPOINT_FORMAT",
    "FORMATS",
    "CheckpointContents",
    "LoadedModel",
    "file_sha256",
    "find_checkpoints",
    "load_checkpoint",
    "load_model_local",
    "load_payload",
    "locate_checkpoint",
    "read_checkpoint",
    "read_contents",
    "weight_mismatches",
    "write_checkpoint",
]

CHECKPOINT_FORMAT = 1
"""Version of the ``d3`` block written by `D3LightningModule`; readers refuse newer ones."""

MODEL_PREFIX = "score_model."
FORMATS = ("d3", "research", "packaged", "converted")
RESEARCH_CONFIGS = ("hydra/config.yaml", ".hydra/config.yaml")
RESEARCH_DILATIONS = (1, 1, 4, 16, 64)  # fixed in the research conv model (SPEC §7)
TRUST_HINT = (
    "Pass --trust-checkpoint (trusted=True in Python) only if you trust where the file came "
    "from, then `d3 convert` it once to get a file that loads safely"
)


@dataclass
class CheckpointContents:
    """What any checkpoint holds, in d3's terms: the parts `load_checkpoint` and
    `write_checkpoint` need.

    Attributes:
        format: One of `FORMATS`.
        path: The file read.
        plugin: The dataset's plugin.
        cfg: A d3 config describing the model (sizes read from the weights).
        weights: The trained (raw) weights of the score model, by d3 parameter name.
        ema: The EMA shadow of every trainable parameter, by name.
        ema_decay: The EMA decay.
        ema_updates: EMA updates so far.
        step: Optimizer steps trained.
        precision: The precision the model was trained under (Lightning's names).
        notes: How the file was read: evidence for the architecture, what was dropped.
        source_config: The file's own config as plain data (None for d3 files and bare files).
        state: The whole payload, for d3 files only.
    """

    format: str
    path: Path
    plugin: DatasetPlugin
    cfg: DictConfig
    weights: dict[str, Tensor]
    ema: dict[str, Tensor]
    ema_decay: float
    ema_updates: int
    step: int
    precision: str
    notes: list[str] = field(default_factory=list)
    source_config: Any = None
    state: dict[str, Any] | None = None

    @property
    def architecture(self) -> str:
        return str(self.cfg.model.architecture)


@dataclass(frozen=True)
class LoadedModel:
    """A score model restored from a checkpoint, in eval mode, with its EMA weights.

    Attributes:
        model: The score model.
        graph: The transition graph it was trained with.
        noise: The noise schedule it was trained with.
        cfg: The run's full config.
        dataset: Dataset name.
        architecture: ``"transformer"`` or ``"conv"``.
        step: Optimizer steps trained.
        precision: The Lightning precision it was trained under.
        path: The checkpoint file.
        sha256: Hex digest of the file, for provenance.
        format: Which kind of file it was (`FORMATS`).
        notes: How it was read (architecture evidence, dropped tensors).
    """

    model: nn.Module
    graph: Graph
    noise: Noise
    cfg: DictConfig
    dataset: str
    architecture: str
    step: int
    precision: str
    path: Path
    sha256: str
    format: str = "d3"
    notes: tuple[str, ...] = ()


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# -- finding the file ---------------------------------------------------------------------------


def _research_weights_in(run: Path) -> Path | None:
    """The weights of a research run directory, in SPEC §10 A's order of preference."""
    final = run / "checkpoints" / "checkpoint.pth"
    if final.is_file():
        return final
    numbered = []
    for candidate in (run / "checkpoints").glob("checkpoint_*.pth"):
        match = re.fullmatch(r"checkpoint_(\d+)\.pth", candidate.name)
        if match and candidate.is_file():
            numbered.append((int(match.group(1)), candidate))
    if numbered:
        return max(numbered)[1]
    meta = run / "checkpoints-meta" / "checkpoint.pth"
    return meta if meta.is_file() else None


def _research_config_for(run: Path) -> Path | None:
    for name in RESEARCH_CONFIGS:
        if (run / name).is_file():
            return run / name
    return None


def locate_checkpoint(path: str | os.PathLike) -> Path:
    """The checkpoint file a path stands for.

    A file is itself. A d3 run directory gives ``checkpoints/last.ckpt``; a research run
    directory (``hydra/config.yaml`` or ``.hydra/config.yaml``) gives
    ``checkpoints/checkpoint.pth``, else the highest ``checkpoints/checkpoint_<k>.pth``, else
    ``checkpoints-meta/checkpoint.pth``.

    Raises:
        CheckpointError: Nothing is there, naming what was looked for.
    """
    path = Path(path)
    if path.is_file():
        return path
    if not path.exists():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    if not path.is_dir():
        raise CheckpointError(f"{path} is neither a checkpoint file nor a run directory")
    ours = path / "checkpoints" / "last.ckpt"
    if ours.is_file():
        return ours
    if _research_config_for(path) is not None:
        weights = _research_weights_in(path)
        if weights is None:
            raise CheckpointError(
                f"{path} is a research run directory without weights: none of "
                f"checkpoints/checkpoint.pth, checkpoints/checkpoint_<k>.pth, "
                f"checkpoints-meta/checkpoint.pth exists"
            )
        return weights
    raise CheckpointError(
        f"{path} is not a run directory d3 reads: it has neither {ours} (a d3 run) nor "
        f"hydra/config.yaml or .hydra/config.yaml (a research run)"
    )


_TORCH_MAGIC = (b"PK\x03\x04", b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")


def looks_like_torch_file(path: Path) -> bool:
    """Whether a file starts like a ``torch.save`` output (a zip archive or a pickle)."""
    try:
        with open(path, "rb") as file:
            head = file.read(4)
    except OSError:
        return False
    return any(head.startswith(magic) for magic in _TORCH_MAGIC)


def find_checkpoints(directory: str | os.PathLike) -> list[Path]:
    """Every file under a directory that starts like a PyTorch file, sorted by path.

    Content decides, not the name: ``.pth``, ``.ckpt``, ``.pt`` and ``.tar`` alike.
    """

    def unfinished(path: Path) -> bool:  # a write in progress (`d3_core.io.atomic_path`)
        return path.name.startswith(".") and path.name.endswith(".tmp")

    return [
        p
        for p in sorted(Path(directory).rglob("*"))
        if p.is_file() and not unfinished(p) and looks_like_torch_file(p)
    ]


# -- reading the payload ------------------------------------------------------------------------


def load_payload(path: Path, *, trusted: bool = False) -> Any:
    """``torch.load`` with weights_only=True; a full unpickle only when trusted.

    Raises:
        CheckpointError: The file is unreadable or truncated, or needs unpickling of Python
            objects and ``trusted`` is false (the message names the first such object).
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        refused = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
        if refused is None and not trusted:
            raise _unreadable(path, _unpickler_reason(err)) from None
        if refused is not None and not trusted:
            raise CheckpointError(
                f"{path} stores Python objects ({refused.group(1)}), which torch.load can read "
                f"only by unpickling, and unpickling can run code hidden in a file. The d3-dna "
                f"packaged release and the earlier Lightning converter store their configs this "
                f"way. {TRUST_HINT}"
            ) from None
    except Exception as err:
        raise _unreadable(path, err) from None
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:
        raise _unreadable(path, err) from None


def _unpickler_reason(err: BaseException) -> BaseException:
    """The line of a weights-only unpickling error that says what was wrong."""
    text = str(err)
    if "WeightsUnpickler error:" in text:
        tail = text.split("WeightsUnpickler error:", 1)[1].strip().splitlines()
        if tail and tail[0].strip():
            return ValueError(tail[0].strip())
    return err


def _unreadable(path: Path, err: BaseException) -> CheckpointError:
    reason = str(err).splitlines()[0] if str(err) else type(err).__name__
    return CheckpointError(
        f"cannot read checkpoint {str(path)!r} (corrupt, truncated, or not a PyTorch file): "
        f"{reason}"
    )


def _kind(state: Any, path: Path) -> str:
    """Which format a loaded payload is, from its keys."""
    if isinstance(state, dict):
        if "d3" in state:
            return "d3"
        if isinstance(state.get("model"), dict) and isinstance(state.get("ema"), dict):
            return "research"
        weights = state.get("state_dict")
        if isinstance(weights, dict) and any(str(k).startswith(MODEL_PREFIX) for k in weights):
            model = [k[len(MODEL_PREFIX) :] for k in weights if str(k).startswith(MODEL_PREFIX)]
            both = any(k.startswith(formats.TRANSFORMER_PREFIXES) for k in model) and any(
                k.startswith(formats.CONV_PREFIXES) for k in model
            )
            hparams = state.get("hyper_parameters") or {}
            return "converted" if both or "original_step" in hparams else "packaged"
    keys = sorted(map(str, state)) if isinstance(state, dict) else type(state).__name__
    raise CheckpointError(
        f"{path} is not a checkpoint d3 reads (top-level entries: {keys}); expected a d3 "
        f"checkpoint ('d3'), a research checkpoint ('model', 'ema') or a Lightning checkpoint "
        f"of the packaged release ('state_dict' with 'score_model.*')"
    )


def read_checkpoint(path: str | os.PathLike, *, map_location: Any = "cpu") -> dict[str, Any]:
    """Loads a d3 checkpoint's payload safely (``weights_only=True``) and checks its format.

    Raises:
        CheckpointError: The file is missing, unreadable, truncated, needs unpickling of code
            objects, or is not a d3 checkpoint of a format this version reads.
    """
    path = locate_checkpoint(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise CheckpointError(
            f"cannot read checkpoint {str(path)!r} (corrupt, truncated, or not a PyTorch file "
            f"that loads with weights_only=True): {_first_line(err)}"
        ) from None
    return _check_d3(state, path)


def _first_line(err: BaseException) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def _check_d3(state: Any, path: Path) -> dict[str, Any]:
    block = state.get("d3") if isinstance(state, dict) else None
    if not isinstance(block, dict):
        raise CheckpointError(
            f"{path} is not a d3 checkpoint (its 'd3' entry is missing or not a mapping); read "
            f"research and d3-dna "
            f"checkpoints with load_checkpoint, or convert them with `d3 convert`"
        )
    missing = [k for k in ("state_dict", "hyper_parameters") if k not in state]
    if missing or "cfg" not in state.get("hyper_parameters", {}):
        raise CheckpointError(
            f"{path} is an incomplete d3 checkpoint: it lacks "
            f"{', '.join(missing) or 'hyper_parameters.cfg'}"
        )
    version = block.get("format_version")
    if not isinstance(version, int) or version > CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path} has checkpoint format {version!r}; this d3-core reads formats up to "
            f"{CHECKPOINT_FORMAT}: upgrade d3-core"
        )
    return state


def read_contents(
    path: str | os.PathLike,
    *,
    trusted: bool = False,
    dataset: str | None = None,
    arch: str | None = None,
) -> CheckpointContents:
    """Reads any checkpoint a user has into d3's terms, strictly and by name.

    Args:
        path: A checkpoint file of any of the four formats, a d3 run directory or a research
            run directory.
        trusted: Allow a full unpickle for files that need one (packaged and converted files).
        dataset: The dataset the caller expects; a checkpoint of another dataset is refused.
        arch: The architecture the caller expects (any spelling). For a research file, the
            tower to load; otherwise a checkpoint of the other architecture is refused.

    Raises:
        CheckpointError: Unreadable, not a checkpoint, untrusted pickles, weights or EMA that
            do not match their layout, or a dataset or architecture other than expected.
        PluginError: The checkpoint's dataset package is not installed.
    """
    file = locate_checkpoint(path)
    state = load_payload(file, trusted=trusted)
    kind = _kind(state, file)
    reader = {
        "d3": _read_d3,
        "research": _read_research,
        "packaged": _read_packaged,
        "converted": _read_converted,
    }[kind]
    wanted_arch = canonical_arch(arch) if arch else None
    contents = reader(state, file, dataset=dataset, arch=wanted_arch)  # checks the dataset
    if wanted_arch and contents.architecture != wanted_arch:
        raise CheckpointError(
            f"{file} is a {arch_label(contents.architecture)} checkpoint, but "
            f"{arch_label(wanted_arch)} was asked for"
        )
    return contents


# -- d3 ---------------------------------------------------------------------------------------------


def _read_d3(state: dict, path: Path, *, dataset: str | None, arch: str | None):
    state = _check_d3(state, path)
    block = state["d3"]
    plugin = _plugin_for(block.get("dataset"), asked=dataset, source=path, evidence="its d3 block")
    cfg = config_from_plain(state["hyper_parameters"]["cfg"], plugin)
    weights = {
        k[len(MODEL_PREFIX) :]: v
        for k, v in state["state_dict"].items()
        if k.startswith(MODEL_PREFIX)
    }
    ema = state.get("ema") or {}
    shadow = ema.get("shadow")
    if not isinstance(shadow, dict):
        raise CheckpointError(f"{path} has no EMA weights ('ema.shadow'); it cannot be sampled")
    notes = []
    if "converted_from" in block:
        origin = block["converted_from"]
        notes.append(f"converted from the {origin.get('format')} checkpoint {origin.get('file')}")
    return CheckpointContents(
        format="d3",
        path=path,
        plugin=plugin,
        cfg=cfg,
        weights=weights,
        ema=dict(shadow),
        ema_decay=float(ema.get("decay", cfg.training.ema_decay)),
        ema_updates=int(ema.get("num_updates", 0)),
        step=int(state.get("global_step", 0)),
        precision=str(block.get("precision", "32-true")),
        notes=notes,
        state=state,
    )


# -- research and converted -------------------------------------------------------------------


def _strip_module_prefix(weights: dict[str, Tensor], notes: list[str]) -> dict[str, Tensor]:
    """Data-parallel wrappers save ``module.``-prefixed names; the layout has none."""
    if weights and all(k.startswith("module.") for k in weights):
        notes.append("stripped the 'module.' prefix of a data-parallel model")
        return {k[len("module.") :]: v for k, v in weights.items()}
    return weights


def _load_yaml(path: Path) -> Any:
    try:
        return OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    except Exception as err:
        raise CheckpointError(f"cannot read the run config {path}: {_first_line(err)}") from None


def _get(config: Any, dotted: str, default: Any = None) -> Any:
    node = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def _run_folder(path: Path) -> Path:
    """The run a checkpoint file belongs to: the folder above ``checkpoints/`` or
    ``checkpoints-meta/`` for a research run's weights, else the file's own folder."""
    folder = path.resolve().parent
    return folder.parent if folder.name in ("checkpoints", "checkpoints-meta") else folder


def _arch_in_path(path: Path) -> tuple[str, str] | None:
    """The architecture the run folder's own name gives (``Tran`` or ``Conv``), if it gives one.

    Only the run folder counts: the folders above it (``model_zoo/conv_runs/...``) name
    projects, not the file's architecture.
    """
    name = _run_folder(path).name
    try:
        return canonical_arch(name), name
    except D3Error:
        return None


def _research_arch(
    weights: dict[str, Tensor], config: Any, path: Path, asked: str | None
) -> tuple[str, str]:
    """Which tower of a research file was trained, and the evidence, in SPEC §10 A's order.

    The first available of: what the caller asked, the run folder's name, ``cond_dim``. The
    transformer's adaLN weights (all exactly zero = never trained) are checked against it.

    Raises:
        CheckpointError: The evidence contradicts itself, or there is none.
    """
    evidence: list[tuple[str, str]] = []
    if asked:
        evidence.append((asked, f"--arch {arch_label(asked)} was asked for"))
    named = _arch_in_path(path)
    if named:
        evidence.append((named[0], f"the run folder is named {named[1]!r}"))
    cond = _get(config, "model.cond_dim")
    if cond is None and "sigma_map.mlp.0.weight" in weights:
        cond = int(weights["sigma_map.mlp.0.weight"].shape[0])
    if cond in (128, 256):
        evidence.append(("transformer" if cond == 128 else "conv", f"cond_dim is {cond}"))
    untrained = formats.adaln_untrained(weights)
    content = None
    if untrained is not None:
        content = (
            ("conv", "the transformer's adaLN weights are all zero (never trained)")
            if untrained
            else ("transformer", "the transformer's adaLN weights have been trained")
        )
    if not evidence and content is None:
        raise CheckpointError(
            f"{path}: cannot tell which tower was trained; pass --arch Tran or --arch Conv"
        )
    chosen, reason = evidence[0] if evidence else content
    if content is not None and content[0] != chosen:
        raise CheckpointError(
            f"{path}: {reason}, so the {arch_label(chosen)} tower would be loaded, but "
            f"{content[1]}; the {arch_label(chosen)} tower of this file is not a trained model"
        )
    agreeing = [why for arch, why in evidence[1:] if arch == chosen]
    if content is not None and evidence:
        agreeing.append(content[1])
    note = f"architecture {arch_label(chosen)}: {reason}"
    if agreeing:
        note += f" (agrees: {'; '.join(agreeing)})"
    return chosen, note


def _dataset_from_weights(weights: dict[str, Tensor], arch: str) -> tuple[int, str, int | None]:
    """(label width, label mode, sequence length or None) of the trained tower's weights."""
    if arch == "transformer":
        width = int(weights["vocab_embed.signal_embedding.weight"].shape[1])
        return width, "unknown", None
    if "label_emb.0.weight" in weights:
        length, width = weights["label_emb.0.weight"].shape
        return int(width), "global", int(length)
    return 1, "per_position", None


def _plugin_for(
    named: Any,
    *,
    asked: str | None,
    source: Path,
    evidence: str,
    width: tuple[int, str, int | None] | None = None,
) -> DatasetPlugin:
    """The dataset plugin of a checkpoint: by its stored name, else by its label width.

    Raises:
        CheckpointError: The stored name is not the one asked for (both named), the label width
            matches no installed dataset or several, or contradicts the named one.
        PluginError: The named dataset's package is not installed.
    """
    asked = asked.strip().lower() if asked else None
    if named:
        name = str(named).strip().lower()
        if asked and name != asked:
            raise CheckpointError(
                f"{source} is a {name} checkpoint ({evidence}); it cannot be used as a "
                f"{asked} model"
            )
        plugin = load_dataset_plugin(name)
    else:
        plugin = None
    if width is None:
        if plugin is None:
            raise CheckpointError(f"{source} does not say which dataset it was trained on")
        return plugin
    labels, mode, length = width

    def fits(p: DatasetPlugin) -> bool:
        return (
            p.label_width == labels
            and (mode == "unknown" or p.label_mode == mode)
            and (length is None or p.sequence_length == length)
        )

    shape = f"{labels} label{'s' if labels > 1 else ''}" + (f", {length} bp" if length else "")
    if plugin is not None:
        if not fits(plugin):
            raise CheckpointError(
                f"{source} says it is a {plugin.name} model ({evidence}) but its weights take "
                f"{shape}; {plugin.name} has {plugin.label_width} labels "
                f"({', '.join(plugin.label_names)}) of {plugin.sequence_length} bp"
            )
        return plugin
    if asked:
        plugin = load_dataset_plugin(asked)
        if not fits(plugin):
            raise CheckpointError(
                f"{source} takes {shape}, so it is not a {asked} model ({asked} has "
                f"{plugin.label_width} labels of {plugin.sequence_length} bp)"
            )
        return plugin
    candidates = [load_dataset_plugin(name) for name in list_datasets()]
    matching = [p for p in candidates if fits(p)]
    if len(matching) == 1:
        return matching[0]
    installed = ", ".join(p.name for p in candidates) or "none"
    found = ", ".join(p.name for p in matching)
    raise CheckpointError(
        f"{source} does not name its dataset and its weights take {shape}, which "
        + (f"several installed datasets fit ({found})" if matching else "no installed dataset fits")
        + f" (installed: {installed}); pass --dataset"
    )


def _research_noise(config: Any, notes: list[str]) -> dict[str, Any]:
    """The geometric noise of a run's config (all D3 runs use it; SPEC §2)."""
    noise = _get(config, "noise") or {}
    graph = str(_get(config, "graph.type", "uniform")).lower()
    if graph != "uniform":
        raise CheckpointError(
            f"the run was trained with the {graph!r} graph; d3 models D3's uniform graph only"
        )
    kind = str(noise.get("type", "geometric")).lower()
    if kind != "geometric":
        raise CheckpointError(
            f"the run was trained with {kind!r} noise; d3 reads geometric-noise runs (every D3 "
            f"config uses it)"
        )
    if not noise:
        notes.append("no noise section in the config: D3's geometric noise 1e-4..20 assumed")
    return {
        "type": "geometric",
        "sigma_min": float(noise.get("sigma_min", 1e-4)),
        "sigma_max": float(noise.get("sigma_max", 20.0)),
    }


# research config key -> d3 config key; each is applied only if it is a valid d3 value.
_RESEARCH_TRAINING = {
    "training.batch_size": "training.batch_size",
    "training.n_iters": "training.max_steps",
    "training.ema": "training.ema_decay",
    "optim.lr": "training.lr",
    "optim.warmup": "training.warmup_steps",
    "optim.grad_clip": "training.grad_clip",
    "optim.weight_decay": "training.weight_decay",
    "optim.eps": "training.adam_eps",
}


def _d3_config(
    plugin: DatasetPlugin,
    arch: str,
    sizes: dict[str, Any],
    noise: dict[str, Any],
    settings: dict[str, Any],
    notes: list[str],
) -> DictConfig:
    """A d3 config for a foreign checkpoint: the paper preset, its sizes, noise and settings."""
    cfg = resolve_config(plugin.name, arch, preset="paper")
    for key, value in sizes.items():
        OmegaConf.update(cfg, f"model.{key}", value, merge=False)
    for key, value in noise.items():
        OmegaConf.update(cfg, f"noise.{key}", value, merge=False)
    for key, value in settings.items():
        if value is None:
            continue
        trial = cfg.copy()
        try:
            OmegaConf.update(trial, key, value, merge=False)
            config_from_plain(to_plain(trial), plugin)
        except Exception:  # a setting d3 cannot take is skipped, and said so
            notes.append(f"ignored the run's {key} = {value!r}: not a valid d3 value")
            continue
        cfg = trial
    try:
        return config_from_plain(to_plain(cfg), plugin)
    except D3ConfigError as err:
        raise CheckpointError(f"the checkpoint's model does not fit d3's config: {err}") from None


def _model_sizes_from(weights: dict[str, Tensor], arch: str, dropout: Any) -> dict[str, Any]:
    s = formats.layout_sizes(weights)
    if arch == "transformer":
        if s["hidden"] % s["head_dim"] or s["mlp_hidden"] % s["hidden"]:
            raise CheckpointError(
                f"transformer sizes do not fit: hidden {s['hidden']}, head dim {s['head_dim']}, "
                f"MLP {s['mlp_hidden']}"
            )
        return {
            "vocab_size": s["vocab"],
            "hidden_size": s["hidden"],
            "n_blocks": s["n_blocks"],
            "n_heads": s["hidden"] // s["head_dim"],
            "cond_dim": s["cond"],
            "mlp_ratio": s["mlp_hidden"] // s["hidden"],
            "dropout": float(dropout if dropout is not None else 0.1),
        }
    return {
        "vocab_size": s["vocab"],
        "channels": s["channels"],
        "n_blocks": s["conv_blocks"],
        "kernel_size": s["kernel"],
        "dilations": list(RESEARCH_DILATIONS),
        "cond_dim": s["cond"],
    }


def _check_config_sizes(config: Any, sizes: dict[str, Any], path: Path, arch: str) -> None:
    """The run config's model sizes must be the weights' (for the trained tower)."""
    keys = ("hidden_size", "n_blocks", "n_heads") if arch == "transformer" else ()
    wrong = [
        f"model.{key} = {_get(config, f'model.{key}')!r} but the weights have {sizes[key]}"
        for key in (*keys, "cond_dim")
        if _get(config, f"model.{key}") is not None and _get(config, f"model.{key}") != sizes[key]
    ]
    if wrong:
        raise CheckpointError(
            f"{path}: its config does not describe its weights: {'; '.join(wrong)}"
        )


def _check_label_emb_length(model: dict[str, Tensor], plugin: DatasetPlugin, path: Path) -> None:
    """The conv ``label_emb`` maps to one value per position, trained or dead."""
    weight = model.get("label_emb.0.weight")
    if weight is not None and weight.shape[0] != plugin.sequence_length:
        raise CheckpointError(
            f"{path}: label_emb.0.weight is {tuple(weight.shape)}, mapping labels to "
            f"{weight.shape[0]} positions, but {plugin.name} sequences are "
            f"{plugin.sequence_length} bp"
        )


def _from_research_layout(
    model: dict[str, Tensor],
    shadow: Any,
    ema_meta: dict[str, Any],
    config: Any,
    *,
    path: Path,
    fmt: str,
    step: int,
    dataset: str | None,
    arch: str | None,
    notes: list[str],
) -> CheckpointContents:
    """Formats A and C: check the both-tower layout, name the EMA, keep the trained tower."""
    model = _strip_module_prefix(dict(model), notes)
    expected = formats.check_layout(model, formats.RESEARCH, str(path))
    named_ema = formats.ema_by_name(shadow, expected, str(path))
    arch, evidence = _research_arch(model, config, path, arch)
    notes.append(evidence)
    kept, dropped = formats.tower_weights(model, arch)
    ema, _ = formats.tower_weights(named_ema, arch)
    notes.append(f"dropped {formats.describe_dropped(dropped)}")
    data_name = _get(config, "data.train")
    plugin = _plugin_for(
        data_name,
        asked=dataset,
        source=path,
        evidence="data.train in its config",
        width=_dataset_from_weights(kept, arch),
    )
    _check_label_emb_length(model, plugin, path)
    sizes = _model_sizes_from(kept, arch, _get(config, "model.dropout"))
    _check_config_sizes(config, sizes, path, arch)
    length = _get(config, "model.length")
    if length is not None and length != plugin.sequence_length:
        raise CheckpointError(
            f"{path}: its config says model.length = {length}, but {plugin.name} sequences are "
            f"{plugin.sequence_length} bp"
        )
    settings = {d3: _get(config, key) for key, d3 in _RESEARCH_TRAINING.items()}
    betas = (_get(config, "optim.beta1"), _get(config, "optim.beta2"))
    if None not in betas:
        settings["training.betas"] = [float(b) for b in betas]
    if config is None:
        notes.append("no run config found: sizes from the weights, d3's paper settings otherwise")
    cfg = _d3_config(plugin, arch, sizes, _research_noise(config, notes), settings, notes)
    return CheckpointContents(
        format=fmt,
        path=path,
        plugin=plugin,
        cfg=cfg,
        weights=kept,
        ema=ema,
        ema_decay=float(ema_meta.get("decay", cfg.training.ema_decay)),
        ema_updates=int(ema_meta.get("num_updates", 0)),
        step=step,
        # SPEC §6: the research transformer ran its blocks under bfloat16 autocast (on GPU).
        precision="bf16-mixed" if arch == "transformer" else "32-true",
        notes=notes,
        source_config=config,
    )


def _read_research(state: dict, path: Path, *, dataset: str | None, arch: str | None):
    notes: list[str] = []
    config_file = _research_config_for(path.parent) or _research_config_for(path.parent.parent)
    config = _load_yaml(config_file) if config_file else None
    if config_file:
        notes.append(f"run config {config_file}")
    ema = state["ema"]
    if "shadow_params" not in ema:
        raise CheckpointError(f"{path}: its 'ema' entry has no 'shadow_params' list")
    return _from_research_layout(
        state["model"],
        ema["shadow_params"],
        ema,
        config,
        path=path,
        fmt="research",
        step=int(state.get("step", 0)),
        dataset=dataset,
        arch=arch,
        notes=notes,
    )


def _lightning_parts(state: dict, path: Path) -> tuple[dict, Any, dict, Any]:
    """(model weights, EMA list, EMA metadata, hyper-parameters) of a Lightning envelope."""
    weights = state["state_dict"]
    model = {k[len(MODEL_PREFIX) :]: v for k, v in weights.items() if k.startswith(MODEL_PREFIX)}
    if "ema.shadow_params" in weights:
        meta = {
            k[len("ema.") :]: weights[k] for k in ("ema.decay", "ema.num_updates") if k in weights
        }
        shadow = weights["ema.shadow_params"]
    elif isinstance(state.get("ema"), dict) and "shadow_params" in state["ema"]:
        meta, shadow = state["ema"], state["ema"]["shadow_params"]
    else:
        raise CheckpointError(
            f"{path} has no EMA list ('ema.shadow_params'); it cannot be loaded with its EMA "
            f"weights"
        )
    meta = {k: (v.item() if isinstance(v, Tensor) else v) for k, v in meta.items()}
    hparams = state.get("hyper_parameters") or {}
    return model, shadow, meta, hparams


def _read_converted(state: dict, path: Path, *, dataset: str | None, arch: str | None):
    model, shadow, meta, hparams = _lightning_parts(state, path)
    config = formats.plain_config(hparams.get("cfg"))
    step = hparams.get("original_step", state.get("global_step", 0))
    return _from_research_layout(
        model,
        shadow,
        meta,
        config,
        path=path,
        fmt="converted",
        step=int(step),
        dataset=dataset,
        arch=arch,
        notes=["a research checkpoint in the earlier Lightning integration's envelope"],
    )


# -- packaged ---------------------------------------------------------------------------------


def _read_packaged(state: dict, path: Path, *, dataset: str | None, arch: str | None):
    model, shadow, meta, hparams = _lightning_parts(state, path)
    notes: list[str] = []
    model = _strip_module_prefix(model, notes)
    config = formats.plain_config(hparams.get("cfg")) or {}
    stored = _get(config, "model.architecture")
    if stored is not None:
        found = canonical_arch(stored)
        notes.append(f"architecture {arch_label(found)}: model.architecture = {stored!r}")
    else:
        found = "transformer" if "vocab_embed.embedding" in model else "conv"
        notes.append(f"architecture {arch_label(found)}: from its weights' names")
    layout = formats.PACKAGED_TRANSFORMER if found == "transformer" else formats.PACKAGED_CONV
    expected = formats.check_layout(model, layout, str(path))
    named_ema = formats.ema_by_name(shadow, expected, str(path))
    kept, dropped = formats.tower_weights(model, found)
    ema, _ = formats.tower_weights(named_ema, found)
    if dropped:
        notes.append(f"dropped {formats.describe_dropped(dropped)}")
    named = hparams.get("dataset_name") or _get(config, "dataset.name")
    plugin = _plugin_for(
        named,
        asked=dataset,
        source=path,
        evidence="dataset_name in its hyper-parameters",
        # A packaged conv model's label mode is fixed; a named dataset is checked just below.
        width=None if named and found == "conv" else _dataset_from_weights(kept, found),
    )
    if found == "conv" and plugin.label_width != 1:
        raise CheckpointError(
            f"{path} is a d3-dna conv model, which takes one label channel (a per-position "
            f"track, or one global value broadcast over the positions; it has no label_emb), so "
            f"it cannot model {plugin.name}'s {plugin.label_width} labels "
            f"({', '.join(plugin.label_names)})"
        )
    length = _get(config, "dataset.sequence_length")
    if length is not None and length != plugin.sequence_length:
        raise CheckpointError(
            f"{path}: its config says dataset.sequence_length = {length}, but {plugin.name} "
            f"sequences are {plugin.sequence_length} bp"
        )
    sizes = _model_sizes_from(kept, found, _get(config, "model.dropout"))
    _check_config_sizes(config, sizes, path, found)
    if found == "conv" and plugin.label_mode == "global":
        sizes["label_embedding"] = False
        notes.append("its one global label is broadcast over the positions, as d3-dna's conv does")
    precision = _get(config, "training.precision") or _get(config, "trainer.precision")
    precision = _lightning_precision(precision, found, notes)
    settings = {
        "training.ema_decay": _get(config, "training.ema"),
        "training.batch_size": _get(config, "training.batch_size"),
        "training.lr": _get(config, "optim.lr"),
    }
    cfg = _d3_config(plugin, found, sizes, _research_noise(config, notes), settings, notes)
    return CheckpointContents(
        format="packaged",
        path=path,
        plugin=plugin,
        cfg=cfg,
        weights=kept,
        ema=ema,
        ema_decay=float(meta.get("decay", cfg.training.ema_decay)),
        ema_updates=int(meta.get("num_updates", 0)),
        step=int(state.get("global_step", 0)),
        precision=precision,
        notes=notes,
        source_config=config or None,
    )


def _lightning_precision(value: Any, arch: str, notes: list[str]) -> str:
    names = {
        "32": "32-true",
        "32-true": "32-true",
        "bf16": "bf16-mixed",
        "bf16-mixed": "bf16-mixed",
    }
    names |= {"16": "16-mixed", "16-mixed": "16-mixed", "bf16-true": "bf16-true"}
    if value is not None and str(value) in names:
        return names[str(value)]
    guess = "bf16-mixed" if arch == "transformer" else "32-true"
    notes.append(f"precision not recorded: {guess} assumed, as the research runs")
    return guess


# -- the model --------------------------------------------------------------------------------


def weight_mismatches(
    expected: dict[str, Tensor], weights: dict[str, Tensor]
) -> tuple[list[str], list[str], list[str]]:
    """(missing, unexpected, mis-shaped) keys of `weights` against a module's state dict."""
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    mismatched = [
        f"{k}: checkpoint {tuple(weights[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in weights and weights[k].shape != v.shape
    ]
    return missing, unexpected, mismatched


def _strict_load(model: nn.Module, weights: dict[str, Tensor], source: Path, what: str) -> None:
    """Loads weights by name; any missing, unexpected or mis-shaped key is an error."""
    missing, unexpected, mismatched = weight_mismatches(model.state_dict(), weights)
    if missing or unexpected or mismatched:
        raise CheckpointError(
            f"{source}: the {what} do not match the model: missing {missing or 'none'}; "
            f"unexpected {unexpected or 'none'}; shape mismatches {mismatched or 'none'}"
        )
    model.load_state_dict(weights, strict=True)


def build_model(contents: CheckpointContents, *, ema: bool = True) -> nn.Module:
    """The dataset's score model holding a checkpoint's weights (EMA applied by default).

    Raises:
        CheckpointError: The weights or the EMA do not match the model, by name and shape.
    """
    plugin, cfg, path = contents.plugin, contents.cfg, contents.path
    model = plugin.score_model_class(cfg.model.architecture)(model_sizes(cfg, plugin))
    _strict_load(model, contents.weights, path, "weights")
    if ema:
        trainable = {n for n, p in model.named_parameters() if p.requires_grad}
        if set(contents.ema) != trainable:
            raise CheckpointError(
                f"{path}: the EMA does not cover the model's parameters: missing "
                f"{sorted(trainable - set(contents.ema)) or 'none'}; unexpected "
                f"{sorted(set(contents.ema) - trainable) or 'none'}"
            )
        _strict_load(model, {**model.state_dict(), **contents.ema}, path, "EMA weights")
    return model.eval()


def load_checkpoint(
    path: str | os.PathLike,
    *,
    device: Any = "cpu",
    trusted: bool = False,
    dataset: str | None = None,
    arch: str | None = None,
) -> LoadedModel:
    """Restores the score model of any checkpoint a user has, with its EMA weights applied.

    Args:
        path: A checkpoint of any format in `FORMATS`, a d3 run directory (its ``last.ckpt``)
            or a research run directory.
        device: Where to put the model.
        trusted: Allow a full unpickle (packaged and converted files need it).
        dataset: Refuse a checkpoint of another dataset.
        arch: The tower to load from a research file; refuse another architecture otherwise.

    Raises:
        CheckpointError: See `read_contents`; or weights or EMA that do not match the model.
        PluginError: The checkpoint's dataset package is not installed.
    """
    contents = read_contents(path, trusted=trusted, dataset=dataset, arch=arch)
    model = build_model(contents)
    cfg = contents.cfg
    noise = {k: v for k, v in cfg.noise.items() if k != "type"}
    return LoadedModel(
        model=model.to(device).eval(),
        graph=UniformGraph(4),
        noise=build_noise(cfg.noise.type, **noise),
        cfg=cfg,
        dataset=contents.plugin.name,
        architecture=contents.architecture,
        step=contents.step,
        precision=contents.precision,
        path=contents.path,
        sha256=file_sha256(contents.path),
        format=contents.format,
        notes=tuple(contents.notes),
    )


def load_model_local(
    path: str | os.PathLike, device: Any = "cpu", *, trusted: bool = False
) -> tuple[nn.Module, Graph, Noise]:
    """The original design's loader: ``(model, graph, noise)`` with the EMA weights applied.

    The model also takes the research call ``model(tokens, labels, train, sigma)``.

    Args:
        path: A checkpoint of any format, or a d3 or research run directory.
        device: Where to put the model.
        trusted: Allow a full unpickle (packaged and converted files need it).
    """
    loaded = load_checkpoint(path, device=device, trusted=trusted)
    return loaded.model, loaded.graph, loaded.noise


# -- writing --------------------------------------------------------------------------------


def write_checkpoint(contents: CheckpointContents, out: str | os.PathLike) -> Path:
    """Writes checkpoint contents in d3's format, atomically (a crash leaves no partial file).

    The raw weights and the EMA are stored by name, the config as plain data; the ``d3`` block
    records where it came from. Loading the result gives bit-identical tensors.
    """
    import lightning

    from d3_core import __version__
    from d3_core.io import atomic_path

    out = Path(out)
    plugin, cfg = contents.plugin, contents.cfg
    source = {
        "format": contents.format,
        "file": str(contents.path.resolve()),
        "sha256": file_sha256(contents.path),
        "step": contents.step,
        "notes": list(contents.notes),
        "config": contents.source_config,
    }
    state = {
        "epoch": 0,
        "global_step": contents.step,
        "pytorch-lightning_version": lightning.__version__,
        "state_dict": {MODEL_PREFIX + k: v for k, v in contents.weights.items()},
        "ema": {
            "decay": contents.ema_decay,
            "num_updates": contents.ema_updates,
            "shadow": dict(contents.ema),
        },
        "hyper_parameters": {"cfg": to_plain(cfg), "dataset_name": plugin.name},
        "d3": {
            "format_version": CHECKPOINT_FORMAT,
            "dataset": plugin.name,
            "architecture": contents.architecture,
            "sequence_length": int(cfg.dataset.sequence_length),
            "label_names": list(cfg.dataset.label_names),
            "label_mode": str(cfg.dataset.label_mode),
            "precision": contents.precision,
            "versions": {
                "d3-core": __version__,
                plugin.distribution: plugin.version,
                "torch": str(torch.__version__),
                "lightning": lightning.__version__,
            },
            "converted_from": source,
        },
    }
    with atomic_path(out) as tmp:
        torch.save(state, tmp)
    return out
