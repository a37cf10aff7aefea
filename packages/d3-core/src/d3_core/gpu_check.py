"""`python -m d3_core.gpu_check` (`nox -s gpu-check`): is this CUDA machine ready for D3?

Three checks on the paper-size Promoter transformer (1024 bp, H 768, 12 blocks, 12 heads),
one line of figures each; the exit status is 1 if any fails:

1. **train**: optimizer steps of `d3_core.training.step.train_step` with the score model under
   bfloat16 autocast, as ``d3 train`` runs a transformer on GPUs (``training.precision: auto``);
   the loss stays in float32. Prints tokens/s and the model FLOPs utilisation (MFU: 3 × the
   forward FLOPs per token × tokens/s over the device's dense bf16 peak).
2. **sample**: the analytic sampler, 128 steps, batch 256, in float32 as ``d3 sample`` runs it,
   and in float32 with TF32 matmuls. Prints sequences/s. Sampling never runs in bfloat16: the
   published Promoter models sampled under bf16 autocast give sequences a discriminator tells
   from real ones (AUROC ≈ 1.0, against 0.55 in fp16): bf16 keeps 8 bits of mantissa in the
   log-scores whose exponentials the sampler draws from.
3. **agree**: a research-layout checkpoint (written from the published key table) loaded on the
   CPU and on the GPU gives the same log-scores in float32 (TF32 off) to 1e-4.

``--dry-run`` runs the same code on the CPU at toy sizes in seconds, so CI keeps it working.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["Sizes", "main"]

# Dense bf16 peaks (TFLOP/s) by device name, from the vendors' data sheets; --peak-tflops overrides.
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0}


@dataclass(frozen=True)
class Sizes:
    """Model and workload sizes of one run of the check."""

    hidden: int = 768
    n_blocks: int = 12
    n_heads: int = 12
    train_batch: int = 32
    train_steps: int = 3
    sample_batch: int = 256
    sample_steps: int = 128
    agree_batch: int = 4


DRY_RUN = Sizes(hidden=32, n_blocks=2, n_heads=2, train_batch=2, train_steps=2,
                sample_batch=2, sample_steps=4, agree_batch=2)  # fmt: skip


class _Autocast(nn.Module):
    """Runs a score model under autocast and hands float32 log-scores to the loss."""

    def __init__(self, model: nn.Module, device: torch.device, dtype: torch.dtype) -> None:
        super().__init__()
        self.model, self.device_type, self.dtype = model, device.type, dtype

    def forward(self, tokens, labels, sigma):
        with torch.autocast(self.device_type, dtype=self.dtype):
            return self.model(tokens, labels, sigma).float()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn: Callable[[], object], device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def _model(sizes: Sizes, device: torch.device) -> nn.Module:
    from d3_core.registry import get_model_class_for_dataset, load_dataset_plugin

    plugin = load_dataset_plugin("promoter")
    cls = get_model_class_for_dataset("promoter", "transformer")
    config = cls.config_class(
        length=plugin.sequence_length, signal_dim=plugin.label_width,
        label_mode=plugin.label_mode, hidden_size=sizes.hidden, n_blocks=sizes.n_blocks,
        n_heads=sizes.n_heads,
    )  # fmt: skip
    torch.manual_seed(0)
    return cls(config).to(device)


def _inputs(batch: int, length: int, device: torch.device, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, 4, (batch, length), generator=gen)
    labels = torch.rand(batch, length, 1, generator=gen)
    sigma = torch.rand(batch, generator=gen) * 20
    return tokens.to(device), labels.to(device), sigma.to(device)


def _forward_flops_per_token(model: nn.Module, length: int, device: torch.device) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    tokens, labels, sigma = _inputs(1, length, device)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(tokens, labels, sigma)
    return counter.get_total_flops() / length


def _peak_tflops(device: torch.device, override: float | None) -> tuple[float | None, str]:
    if override:
        return override, "given"
    if device.type != "cuda":
        from d3_core.bench import sgemm_gflops

        return sgemm_gflops() / 1e3, "this CPU's float32 sgemm"
    name = torch.cuda.get_device_name(device)
    for key, peak in PEAK_BF16_TFLOPS.items():
        if key in name:
            return peak, f"{name} dense bf16"
    return None, f"{name}: unknown peak, pass --peak-tflops"


def check_train(sizes: Sizes, device: torch.device, peak_override: float | None) -> dict:
    from d3_core.diffusion.graph import UniformGraph
    from d3_core.diffusion.noise import GeometricNoise
    from d3_core.training.ema import ExponentialMovingAverage
    from d3_core.training.step import train_step

    model = _model(sizes, device)
    length = model.config.length
    flops_per_token = _forward_flops_per_token(model, length, device)
    model.train()
    wrapped = _Autocast(model, device, torch.bfloat16)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4)
    ema = ExponentialMovingAverage(wrapped, decay=0.9999)
    tokens, labels, _ = _inputs(sizes.train_batch, length, device)
    gen = torch.Generator(device=device).manual_seed(0)
    losses = []

    def step():
        loss = train_step(wrapped, optimizer, ema, tokens, labels, graph=UniformGraph(4),
                          noise=GeometricNoise(), generator=gen)  # fmt: skip
        losses.append(float(loss))

    step()  # warm-up: optimizer state, kernels
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    seconds = statistics.median(_timed(step, device) for _ in range(sizes.train_steps))
    tokens_per_s = sizes.train_batch * length / seconds
    peak, peak_source = _peak_tflops(device, peak_override)
    mfu = 3 * flops_per_token * tokens_per_s / (peak * 1e12) if peak else None
    result = {"check": "train", "ok": all(map(math.isfinite, losses)), "seconds_per_step": seconds,
              "tokens_per_s": tokens_per_s, "mfu": mfu, "peak": peak_source,
              "losses": losses}  # fmt: skip
    if device.type == "cuda":
        result["peak_memory_gib"] = torch.cuda.max_memory_allocated(device) / 1024**3
    return result


def check_sample(sizes: Sizes, device: torch.device) -> dict:
    from d3_core.diffusion.graph import UniformGraph
    from d3_core.diffusion.noise import GeometricNoise
    from d3_core.diffusion.sampling import sample

    model = _model(sizes, device).eval()
    _, labels, _ = _inputs(sizes.sample_batch, model.config.length, device)
    result = {"check": "sample", "ok": True, "batch": sizes.sample_batch,
              "steps": sizes.sample_steps}  # fmt: skip
    for mode in ("float32", "tf32"):

        def draw():
            return sample(model, labels, length=model.config.length, graph=UniformGraph(4),
                          noise=GeometricNoise(), steps=sizes.sample_steps,
                          generator=torch.Generator(device=device).manual_seed(0))  # fmt: skip

        with _tf32(mode == "tf32"):  # the flags only act on CUDA
            tokens = draw()  # warm-up, and the check that it samples real tokens
            seconds = _timed(draw, device)
        result["ok"] &= bool(((tokens >= 0) & (tokens < 4)).all())
        result[f"{mode}_sequences_per_s"] = sizes.sample_batch / seconds
    return result


@contextmanager
def _tf32(on: bool):
    """CUDA matmuls and convolutions in TF32 (on) or full float32 (off) inside the block."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = on
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def check_agree(sizes: Sizes, device: torch.device, tolerance: float = 1e-4) -> dict:
    from d3_core.checkpoints.load import load_model_local
    from d3_core.registry import load_dataset_plugin
    from d3_core.testing.checkpoint_writers import write_research

    plugin = load_dataset_plugin("promoter")
    with tempfile.TemporaryDirectory(prefix="d3-gpu-check-") as run_dir:
        write_research(run_dir, dataset="promoter", arch="transformer", signal=1,
                       length=plugin.sequence_length, label_classes=5, hidden=sizes.hidden,
                       n_blocks=sizes.n_blocks, n_heads=sizes.n_heads)  # fmt: skip
        cpu_model, _, _ = load_model_local(run_dir, "cpu")
        dev_model, _, _ = load_model_local(run_dir, device)
    tokens, labels, sigma = _inputs(sizes.agree_batch, plugin.sequence_length, torch.device("cpu"))
    with torch.no_grad():
        expected = cpu_model(tokens, labels, sigma)
        with _tf32(False):
            got = dev_model(tokens.to(device), labels.to(device), sigma.to(device)).cpu()
    error = float((got - expected).abs().max())
    scale = float(expected.abs().max())
    return {"check": "agree", "ok": error <= tolerance, "max_abs_error": error,
            "tolerance": tolerance, "max_abs_log_score": scale}  # fmt: skip


def _line(result: dict) -> str:
    status = "ok  " if result["ok"] else "FAIL"
    figures = ", ".join(
        f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
        for k, v in result.items()
        if k not in ("check", "ok", "losses") and v is not None
    )
    return f"{status} {result['check']:<6} {figures}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m d3_core.gpu_check", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--dry-run", action="store_true",
                        help="the same checks on the CPU at toy sizes (seconds), for CI")  # fmt: skip
    parser.add_argument("--device", default=None, help="default: cuda, or cpu with --dry-run")
    parser.add_argument("--checks", default="train,sample,agree", help="a subset, comma-separated")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="the device's dense bf16 peak for MFU (default: from its name)")  # fmt: skip
    args = parser.parse_args(argv)
    device = torch.device(args.device or ("cpu" if args.dry_run else "cuda"))
    if device.type == "cuda" and not torch.cuda.is_available():
        print("d3: error: no CUDA device is visible to this torch "
              f"({torch.__version__}); run with --dry-run to check the code on the CPU",
              file=sys.stderr)  # fmt: skip
        return 2
    sizes = DRY_RUN if args.dry_run else Sizes()
    checks = {
        "train": lambda: check_train(sizes, device, args.peak_tflops),
        "sample": lambda: check_sample(sizes, device),
        "agree": lambda: check_agree(sizes, device),
    }
    chosen = [c.strip() for c in args.checks.split(",") if c.strip()]
    unknown = sorted(set(chosen) - set(checks))
    if unknown or not chosen:
        parser.error(f"unknown checks {unknown}; choose from {', '.join(checks)}")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"d3 gpu-check on {name}, torch {torch.__version__}, sizes {sizes}", flush=True)
    failed = 0
    for check in chosen:
        start = time.perf_counter()
        result = checks[check]()
        print(f"{_line(result)} ({time.perf_counter() - start:.0f} s)", flush=True)
        failed += not result["ok"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
