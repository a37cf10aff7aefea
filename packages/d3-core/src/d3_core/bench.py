"""`d3 bench`: forward, training-step and sampling throughput and peak memory at paper size.

Each (dataset shape, architecture) case runs in its own worker process so that its peak
resident memory is its own. Every timing is printed beside a large-sgemm probe measured in the
same process just before it, because shared CPUs change speed for minutes at a time: compare
ratios and medians, not raw seconds across runs. Results are JSON lines on stdout and appended
to a file under `benchmarks/results/` together with the machine, torch version and command.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch

__all__ = ["CASES", "BenchCase", "main", "peak_rss_gib", "run_case", "sgemm_gflops"]


@dataclass(frozen=True)
class BenchCase:
    """One model shape to measure; sizes are the paper's (docs/models.md#dataset-variants)."""

    dataset: str
    arch: str
    length: int
    signal_dim: int
    label_mode: str
    batch: int
    micro_batch: int | None = None

    @property
    def name(self) -> str:
        return f"{self.dataset}-{self.arch}"


# Batch 32 as in the reference measurements; 1024-bp cases at batch 4 so a run stays in minutes.
# The transformer's training step runs in micro-batches of ~1000 tokens: the same step, with a
# fraction of the activations, which keeps the 92 M-parameter step under 5 GB on CPU.
CASES = {
    c.name: c
    for c in [
        BenchCase("deepstarr", "tran", 249, 2, "global", 32, micro_batch=4),
        BenchCase("deepstarr", "conv", 249, 2, "global", 32),
        BenchCase("mpra", "tran", 200, 3, "global", 32, micro_batch=4),
        BenchCase("mpra", "conv", 200, 3, "global", 32),
        BenchCase("promoter", "tran", 1024, 1, "per_position", 4, micro_batch=1),
        BenchCase("promoter", "conv", 1024, 1, "per_position", 4),
    ]
}


def sgemm_gflops(n: int = 2048, repeats: int = 3) -> float:
    """Best-of-`repeats` GFLOP/s of an (n, n) @ (n, n) float32 matmul: this CPU's peak now."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def peak_rss_gib() -> float:
    """This process's peak resident set in GiB, since its last exec.

    Linux's ``VmHWM`` is reset by exec; ``ru_maxrss`` is not (a worker started by a large
    parent would report the parent's peak), so it serves only where /proc is missing.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024**2  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB on Linux


def _build(case: BenchCase, checkpointing: str) -> torch.nn.Module:
    from d3_core.models import ConvConfig, ConvScoreModel, TransformerConfig, TransformerScoreModel

    if case.arch == "tran":
        config = TransformerConfig(
            length=case.length, signal_dim=case.signal_dim, label_mode=case.label_mode,
            checkpointing=checkpointing,
        )  # fmt: skip
        return TransformerScoreModel(config)
    config = ConvConfig(length=case.length, signal_dim=case.signal_dim, label_mode=case.label_mode)
    return ConvScoreModel(config)


def _inputs(case: BenchCase, batch: int, gen: torch.Generator):
    tokens = torch.randint(0, 4, (batch, case.length), generator=gen)
    shape = (batch, case.signal_dim) if case.label_mode == "global" else (batch, case.length, 1)
    return tokens, torch.randn(shape, generator=gen), torch.rand(batch, generator=gen) * 20


def _forward_flops(model: torch.nn.Module, case: BenchCase) -> float:
    """Matmul and attention FLOPs of one forward pass at batch 1 (they scale with the batch)."""
    from torch.utils.flop_counter import FlopCounterMode

    tokens, labels, sigma = _inputs(case, 1, torch.Generator().manual_seed(0))
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(tokens, labels, sigma)
    return float(counter.get_total_flops())


def _timed(fn) -> tuple[float, float]:
    """(seconds of fn(), sgemm GFLOP/s measured just before it)."""
    probe = sgemm_gflops()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start, probe


def _summary(times: list[float], probes: list[float]) -> dict:
    return {
        "seconds_median": statistics.median(times),
        "seconds": [round(t, 4) for t in times],
        "sgemm_gflops_median": statistics.median(probes),
        "sgemm_gflops": [round(p, 1) for p in probes],
    }


def _measure_forward(model, case, batch, repeats, gen) -> dict:
    tokens, labels, sigma = _inputs(case, batch, gen)
    flops = _forward_flops(model, case) * batch
    model.eval()
    with torch.no_grad():
        model(tokens, labels, sigma)  # warm-up
        runs = [_timed(lambda: model(tokens, labels, sigma)) for _ in range(repeats)]
    times, probes = [t for t, _ in runs], [p for _, p in runs]
    result = _summary(times, probes)
    achieved = [flops / t / 1e9 for t in times]
    result.update(
        gflops_median=statistics.median(achieved),
        fraction_of_sgemm_median=statistics.median(
            a / p for a, p in zip(achieved, probes, strict=True)
        ),
        forward_gflop=flops / 1e9,
        # torch's FLOP counter sees matmuls and convolutions; on CPU it misses the fused
        # attention kernel (~5 % of the transformer's FLOPs), so efficiency reads low.
        flops_counted="matmuls and convolutions (torch.utils.flop_counter)",
        tokens_per_s=batch * case.length / result["seconds_median"],
    )
    return result


def _measure_sampling(model, case, batch, steps, repeats, gen) -> dict:
    """Sampler time against the time of its steps + 1 bare model calls, interleaved.

    The sampler's own work (exponentials, staggered score, draws) scales with the batch like
    the model's, so a batch of 8 measures the same overhead ratio as a large one, faster.
    """
    from d3_core.diffusion.graph import UniformGraph
    from d3_core.diffusion.noise import GeometricNoise
    from d3_core.diffusion.sampling import sample

    tokens, labels, sigma = _inputs(case, batch, gen)
    graph, noise = UniformGraph(4), GeometricNoise()
    model.eval()

    def calls():
        with torch.no_grad():
            for _ in range(steps + 1):
                model(tokens, labels, sigma).exp()

    def draw():
        sample(
            model, labels, length=case.length, graph=graph, noise=noise, steps=steps,
            generator=torch.Generator().manual_seed(0),
        )  # fmt: skip

    draw()  # warm-up
    call_runs, sample_runs = [], []
    for _ in range(repeats):
        call_runs.append(_timed(calls))
        sample_runs.append(_timed(draw))
    result = _summary([t for t, _ in sample_runs], [p for _, p in sample_runs])
    calls_median = statistics.median(t for t, _ in call_runs)
    result.update(
        batch=batch,
        steps=steps,
        model_calls_seconds_median=calls_median,
        overhead_vs_model_calls=result["seconds_median"] / calls_median - 1.0,
        sequences_per_s=batch / result["seconds_median"],
        sequences_per_s_at_128_steps=batch / (result["seconds_median"] * 129 / (steps + 1)),
    )
    return result


def _measure_train(model, case, batch, micro_batch, repeats, gen) -> dict:
    """One step as training runs it: SEDD loss, backward, clip 1.0, AdamW, EMA update."""
    from d3_core.diffusion.graph import UniformGraph
    from d3_core.diffusion.noise import GeometricNoise
    from d3_core.training.ema import ExponentialMovingAverage
    from d3_core.training.step import train_step

    tokens, labels, _ = _inputs(case, batch, gen)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.999), eps=1e-8)
    ema = ExponentialMovingAverage(model, decay=0.9999)

    def step():
        train_step(model, optimizer, ema, tokens, labels, graph=UniformGraph(4),
                   noise=GeometricNoise(), micro_batch=micro_batch, generator=gen)  # fmt: skip

    step()  # warm-up: allocates optimizer state
    runs = [_timed(step) for _ in range(repeats)]
    result = _summary([t for t, _ in runs], [p for _, p in runs])
    result["tokens_per_s"] = batch * case.length / result["seconds_median"]
    result["micro_batch"] = micro_batch
    return result


def run_case(case: BenchCase, *, what: list[str], repeats: int, steps: int, batch: int,
             checkpointing: str, micro_batch: int | None,
             sample_batch: int) -> list[dict]:  # fmt: skip
    """Measures one case in this process; returns one record per measurement."""
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = _build(case, checkpointing)
    params = sum(p.numel() for p in model.parameters())
    base = {"case": case.name, **asdict(case), "batch": batch, "parameters": params}
    if case.arch == "tran":
        base["checkpointing"] = checkpointing
    records = []
    measures = {
        "forward": lambda: _measure_forward(model, case, batch, repeats, gen),
        "sample": lambda: _measure_sampling(model, case, sample_batch, steps, repeats, gen),
        "train": lambda: _measure_train(model, case, batch, micro_batch, repeats, gen),
    }
    for name in what:  # train last: its optimizer state dominates the peak
        record = {**base, "measure": name, **measures[name]()}
        record["peak_rss_gib"] = peak_rss_gib()
        records.append(record)
        print(json.dumps(record), flush=True)
    return records


def _machine() -> dict:
    return {
        "host": platform.node(),
        "cpu": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="d3 bench", description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES),
                        help=f"comma-separated subset of {', '.join(CASES)}")  # fmt: skip
    parser.add_argument("--what", default="forward,sample,train",
                        help="comma-separated measures, run in this order")  # fmt: skip
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per measure")
    parser.add_argument("--steps", type=int, default=2, help="sampling steps to time")
    parser.add_argument("--sample-batch", type=int, default=None,
                        help="sequences per sampling run (default: the batch, at most 8)")  # fmt: skip
    parser.add_argument("--batch", type=int, default=None, help="override every case's batch")
    parser.add_argument("--micro-batch", type=int, default=None,
                        help="sequences per forward/backward pass in the training step "
                        "(default: the case's own, see CASES)")  # fmt: skip
    parser.add_argument("--checkpointing", default="none",
                        help="transformer activation checkpointing modes, comma-separated: "
                        "each one is a separate run")  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"),
                        help="directory for the JSON-lines results file")  # fmt: skip
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return parser


def _split(value: str, allowed, what: str) -> list[str]:
    from d3_core.errors import D3ConfigError

    items = [v.strip().lower() for v in value.split(",") if v.strip()]
    bad = [v for v in items if v not in allowed]
    if bad or not items:
        raise D3ConfigError(f"unknown {what} {bad or value!r}; choose from {', '.join(allowed)}")
    return items


def _print_summary(lines: list[str]) -> None:
    """A table for people, on stderr: medians beside the sgemm probe of the same runs."""
    print(f"{'case':<16}{'measure':<9}{'median s':>9}{'sgemm GF/s':>11}  detail", file=sys.stderr)
    for record in map(json.loads, lines):
        if "measure" not in record:
            continue
        detail = {
            "forward": lambda r: f"{r['fraction_of_sgemm_median']:.0%} of sgemm",
            "sample": lambda r: f"{r['overhead_vs_model_calls']:+.1%} vs model calls",
            "train": lambda r: f"{r['tokens_per_s']:.0f} tokens/s",
        }[record["measure"]](record)
        print(
            f"{record['case']:<16}{record['measure']:<9}{record['seconds_median']:>9.2f}"
            f"{record['sgemm_gflops_median']:>11.0f}  {detail}, "
            f"peak RSS {record['peak_rss_gib']:.2f} GiB",
            file=sys.stderr,
        )


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark; see `d3 bench --help`."""
    args = _parser().parse_args(argv)
    cases = _split(args.cases, CASES, "case")
    what = _split(args.what, ("forward", "sample", "train"), "measure")
    modes = _split(args.checkpointing, ("none", "blocks", "selective"), "checkpointing mode")
    if args.worker:
        (case,) = cases
        batch = args.batch or CASES[case].batch
        micro = args.micro_batch or CASES[case].micro_batch
        run_case(CASES[case], what=what, repeats=args.repeats, steps=args.steps, batch=batch,
                 checkpointing=modes[0], micro_batch=micro,
                 sample_batch=args.sample_batch or min(batch, 8))  # fmt: skip
        return 0
    header = {
        "benchmark": "d3 bench",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join(["d3", "bench", *(argv if argv is not None else sys.argv[1:])]),
        **_machine(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{header['date'][:19].replace(':', '')}-{header['host']}.jsonl"
    print(json.dumps(header), flush=True)
    lines = [json.dumps(header)]
    failed = 0
    for case in cases:
        for mode in modes if CASES[case].arch == "tran" else modes[:1]:
            worker = [sys.executable, "-m", "d3_core.bench", "--worker", "--cases", case,
                      "--what", ",".join(what), "--repeats", str(args.repeats),
                      "--steps", str(args.steps), "--checkpointing", mode]  # fmt: skip
            if args.batch:
                worker += ["--batch", str(args.batch)]
            if args.micro_batch:
                worker += ["--micro-batch", str(args.micro_batch)]
            if args.sample_batch:
                worker += ["--sample-batch", str(args.sample_batch)]
            done = subprocess.run(worker, stdout=subprocess.PIPE, text=True)
            sys.stdout.write(done.stdout)
            lines += [line for line in done.stdout.splitlines() if line.startswith("{")]
            if done.returncode != 0:
                failed += 1
                print(json.dumps({"case": case, "error": f"worker exit {done.returncode}"}))
    partial = path.with_suffix(".jsonl.tmp")
    partial.write_text("\n".join(lines) + "\n")
    partial.replace(path)  # a crash leaves no half-written results file
    _print_summary(lines[1:])
    print(f"results written to {path}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
