"""d3 beside d3-dna 0.1.3 in one process: forward, training step, sampling, peak memory.

Run it with ``nox -s bench-vs-d3dna`` (a venv holding both packages) or directly::

    python benchmarks/vs_d3dna.py [--cases deepstarr-tran,deepstarr-conv,promoter-tran]
        [--what forward,train,sample] [--repeats 3] [--steps 8] [--no-memory]

Both implementations build the paper-size model of each case (d3's research layout and
d3-dna's ``TransformerModel``/``ConvolutionalModel`` from the same sizes) and run in this one
process, interleaved A B A B, each timed run right after a large-sgemm probe. What is timed:

* ``forward``: an eval-mode forward without gradients on the same tokens, labels and noise.
* ``train``: one optimizer step as each package trains: the SEDD score-entropy loss on the
  same batch (d3: ``d3_core.training.step.train_step``, micro-batched as its configs are; d3-dna:
  its own ``get_step_fn`` with its loss, AdamW, warm-up, clip 1.0 and EMA), float32.
* ``sample``: the analytic predictor at equal steps (equal network calls: steps + 1), plus
  d3's bare model calls, which give the sampler's own overhead.

Peak memory is the maximum resident set of a fresh subprocess per (package, case, measure)
that builds the model and runs the measure once. Results go to ``benchmarks/results/`` as
JSON lines and a Markdown table of ratios (d3-dna time / d3 time: above 1 means d3 is faster).

d3-dna's Conv model takes only per-position labels; DeepSTARR's two activities reach it as a
(B, L, 1) channel (the work of d3's small label projection is negligible beside the model).
Importing d3-dna sets ``torch.set_float32_matmul_precision("medium")``; this script puts it
back to "highest" so both packages run true float32.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch

from d3_core.bench import peak_rss_gib, sgemm_gflops


@dataclass(frozen=True)
class Case:
    """A paper-size model shape and the batch each measure runs at."""

    dataset: str
    arch: str
    length: int
    signal_dim: int
    label_mode: str
    batch: int  # forward and training step
    sample_batch: int
    micro_batch: int | None  # d3's training micro-batch (its configs'); d3-dna has none

    @property
    def name(self) -> str:
        return f"{self.dataset}-{self.arch}"


CASES = {
    c.name: c
    for c in (
        Case("deepstarr", "tran", 249, 2, "global", batch=16, sample_batch=4, micro_batch=4),
        Case("deepstarr", "conv", 249, 2, "global", batch=32, sample_batch=8, micro_batch=None),
        Case("promoter", "tran", 1024, 1, "per_position", batch=4, sample_batch=1, micro_batch=1),
    )
}
MEASURES = ("forward", "train", "sample")


def inputs(case: Case, batch: int, seed: int = 0):
    """Tokens, labels (global (B, S) or per-position (B, L, S)) and σ, the same for both."""
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, 4, (batch, case.length), generator=gen)
    shape = (batch, case.signal_dim) if case.label_mode == "global" else (batch, case.length, 1)
    return tokens, torch.randn(shape, generator=gen), torch.rand(batch, generator=gen) * 20


class D3:
    """d3: ``d3_core`` models, ``train_step`` and ``sample``."""

    name = "d3"

    def __init__(self, case: Case):
        from d3_core.diffusion.graph import UniformGraph
        from d3_core.diffusion.noise import GeometricNoise
        from d3_core.models import (
            ConvConfig,
            ConvScoreModel,
            TransformerConfig,
            TransformerScoreModel,
        )

        self.case = case
        self.graph, self.noise = UniformGraph(4), GeometricNoise()
        size = dict(length=case.length, signal_dim=case.signal_dim, label_mode=case.label_mode)
        torch.manual_seed(0)
        if case.arch == "tran":
            self.model = TransformerScoreModel(TransformerConfig(**size))
        else:
            self.model = ConvScoreModel(ConvConfig(**size))

    def forward(self, tokens, labels, sigma):
        return self.model(tokens, labels, sigma)

    def train_step(self):
        from d3_core.training.ema import ExponentialMovingAverage
        from d3_core.training.step import train_step

        self.model.train()
        optimizer = torch.optim.AdamW(self.model.parameters(), lr=3e-4, weight_decay=0.0)
        ema = ExponentialMovingAverage(self.model, decay=0.9999)
        gen = torch.Generator().manual_seed(1)

        def step(tokens, labels):
            train_step(self.model, optimizer, ema, tokens, labels, graph=self.graph,
                       noise=self.noise, micro_batch=self.case.micro_batch, generator=gen)  # fmt: skip

        return step

    def sample(self, labels, steps):
        from d3_core.diffusion.sampling import sample

        return sample(self.model, labels, length=self.case.length, graph=self.graph,
                      noise=self.noise, steps=steps, generator=torch.Generator().manual_seed(0))  # fmt: skip

    def model_calls(self, tokens, labels, sigma, calls):
        for _ in range(calls):
            self.model(tokens, labels, sigma).exp()


class D3DNA:
    """d3-dna 0.1.3: its ``TransformerModel``/``ConvolutionalModel``, step function, sampler."""

    name = "d3-dna"

    def __init__(self, case: Case):
        from d3_dna.models import ConvolutionalModel, TransformerModel, diffusion
        from d3_dna.models.diffusion import get_graph, get_noise
        from omegaconf import OmegaConf

        diffusion.tqdm = lambda steps, **_: steps  # no progress bar per sampling call

        torch.set_float32_matmul_precision("highest")  # undo d3-dna's import-time "medium"
        self.case = case
        model = (
            {"hidden_size": 768, "cond_dim": 128, "n_heads": 12, "n_blocks": 12, "dropout": 0.1}
            if case.arch == "tran"
            else {"conv_channels": 256, "cond_dim": 256}
        )
        self.cfg = OmegaConf.create({
            "tokens": 4,
            "graph": {"type": "uniform"},
            "noise": {"type": "geometric", "sigma_min": 1e-4, "sigma_max": 20.0},
            "dataset": {"num_classes": 4, "signal_dim": case.signal_dim,
                        "sequence_length": case.length},
            "model": {"architecture": "transformer" if case.arch == "tran" else "convolutional",
                      "scale_by_sigma": False, **model},
            "optim": {"optimizer": "AdamW", "lr": 3e-4, "beta1": 0.9, "beta2": 0.999,
                      "eps": 1e-8, "weight_decay": 0.0, "warmup": 2500, "grad_clip": 1.0},
        })  # fmt: skip
        self.graph, self.noise = get_graph(self.cfg, "cpu"), get_noise(self.cfg)
        torch.manual_seed(0)
        cls = TransformerModel if case.arch == "tran" else ConvolutionalModel
        self.model = cls(self.cfg)

    def _labels(self, labels):
        # d3-dna's Conv takes per-position signals only: a global label becomes one channel.
        if self.case.arch == "conv" and labels.dim() == 2:
            return labels[:, None, :1].expand(-1, self.case.length, 1)
        return labels

    def forward(self, tokens, labels, sigma):
        return self.model(tokens, self._labels(labels), False, sigma)[0]

    def train_step(self):
        from d3_dna.models.ema import ExponentialMovingAverage
        from d3_dna.modules.trainer import get_optimizer, get_step_fn, optimization_manager

        torch.set_float32_matmul_precision("highest")
        self.model.train()
        state = {
            "model": self.model,
            "optimizer": get_optimizer(self.cfg, self.model.parameters()),
            "scaler": torch.amp.GradScaler("cpu", enabled=False),
            "ema": ExponentialMovingAverage(self.model.parameters(), decay=0.9999),
            "step": 0,
        }
        step_fn = get_step_fn(self.noise, self.graph, True, optimization_manager(self.cfg), 1)

        def step(tokens, labels):
            step_fn(state, tokens, self._labels(labels))

        return step

    def sample(self, labels, steps):
        from d3_dna.models.diffusion import get_pc_sampler

        sampler = get_pc_sampler(self.graph, self.noise, (labels.shape[0], self.case.length),
                                 "analytic", steps, device=torch.device("cpu"),
                                 dtype=torch.float32)  # fmt: skip
        self.model.eval()
        return sampler(self.model, self._labels(labels))


IMPLEMENTATIONS = {"d3": D3, "d3-dna": D3DNA}


def _timed(fn) -> dict:
    probe = sgemm_gflops()
    start = time.perf_counter()
    fn()
    return {"seconds": time.perf_counter() - start, "sgemm_gflops": probe}


def _jobs(impl, case: Case, measure: str, steps: int) -> dict:
    """The callables to time for one measure: {label: fn}."""
    if measure == "forward":
        tokens, labels, sigma = inputs(case, case.batch)
        impl.model.eval()

        def forward():
            with torch.no_grad():
                impl.forward(tokens, labels, sigma)

        return {impl.name: forward}
    if measure == "train":
        tokens, labels, _ = inputs(case, case.batch)
        step = impl.train_step()
        return {impl.name: lambda: step(tokens, labels)}
    tokens, labels, sigma = inputs(case, case.sample_batch)
    impl.model.eval()
    jobs = {impl.name: lambda: impl.sample(labels, steps)}
    if isinstance(impl, D3):

        def calls():
            with torch.no_grad():
                impl.model_calls(tokens, labels, sigma, steps + 1)

        jobs["d3 model calls"] = calls
    return jobs


def measure_interleaved(case: Case, measure: str, repeats: int, steps: int, impls) -> dict:
    """Times every job of every implementation, interleaved, after one warm-up each."""
    jobs = {}
    for impl in impls:
        jobs.update(_jobs(impl, case, measure, steps))
    for fn in jobs.values():
        fn()  # warm-up (allocates optimizer state, the kernels' workspaces)
    runs = {label: [] for label in jobs}
    for i in range(repeats):
        order = list(jobs) if i % 2 == 0 else list(reversed(jobs))  # A B, B A, ...
        for label in order:
            runs[label].append(_timed(jobs[label]))
    return {
        label: {
            "seconds_median": statistics.median(r["seconds"] for r in rs),
            "seconds": [round(r["seconds"], 4) for r in rs],
            "sgemm_gflops": [round(r["sgemm_gflops"], 1) for r in rs],
        }
        for label, rs in runs.items()
    }


def memory_worker(impl_name: str, case_name: str, measure: str, steps: int) -> None:
    """Runs in a fresh process: builds one model, runs one measure once, prints peak RSS."""
    case = CASES[case_name]
    impl = IMPLEMENTATIONS[impl_name](case)
    built = peak_rss_gib()
    _jobs(impl, case, measure, steps)[impl.name]()  # a training step allocates AdamW's state
    print(
        json.dumps(
            {"peak_rss_gib": round(peak_rss_gib(), 3), "rss_after_build_gib": round(built, 3)}
        )
    )


def peak_memory(impl_name: str, case: Case, measure: str, steps: int) -> dict:
    cmd = [sys.executable, __file__, "--memory-worker", impl_name, case.name, measure,
           "--steps", str(steps)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _rate(case: Case, measure: str, seconds: float) -> tuple[float, str]:
    if measure == "sample":
        return case.sample_batch / seconds, "seq/s"
    return case.batch * case.length / seconds, "tokens/s"


def table(records: list[dict]) -> str:
    """Markdown: per case and measure, both medians, the speed ratio and peak memory."""
    lines = [
        "| case | measure | d3 s | d3-dna s | speed d3/d3-dna | d3 rate | d3 peak GiB "
        "| d3-dna peak GiB | memory d3/d3-dna | sgemm GF/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        t, case = r["timings"], CASES[r["case"]]
        ours, theirs = t["d3"]["seconds_median"], t["d3-dna"]["seconds_median"]
        rate, unit = _rate(case, r["measure"], ours)
        mem = r.get("memory", {})
        peak = {k: mem.get(k, {}).get("peak_rss_gib") for k in ("d3", "d3-dna")}
        mem_ratio = f"{peak['d3'] / peak['d3-dna']:.2f}" if all(peak.values()) else "–"
        probes = [p for v in t.values() for p in v["sgemm_gflops"]]
        detail = f"{rate:.1f} {unit}"
        if "d3 model calls" in t:
            overhead = ours / t["d3 model calls"]["seconds_median"] - 1
            detail += f" (sampler overhead {overhead:+.1%})"
        lines.append(
            f"| {r['case']} | {r['measure']} | {ours:.2f} | {theirs:.2f} | {theirs / ours:.2f}× "
            f"| {detail} | {peak['d3'] or '–'} | {peak['d3-dna'] or '–'} | {mem_ratio} "
            f"| {min(probes):.0f}–{max(probes):.0f} |"
        )
    return "\n".join(lines)


def _write_atomic(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(text)
    partial.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES), help=f"subset of {', '.join(CASES)}")
    parser.add_argument("--what", default=",".join(MEASURES), help="subset of forward,train,sample")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each (>= 3)")
    parser.add_argument("--steps", type=int, default=8, help="sampling steps of both samplers")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--memory-worker", nargs=3, metavar=("IMPL", "CASE", "MEASURE"),
                        help=argparse.SUPPRESS)  # fmt: skip
    args = parser.parse_args(argv)
    if args.memory_worker:
        memory_worker(*args.memory_worker, steps=args.steps)
        return 0
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    what = [m.strip() for m in args.what.split(",") if m.strip()]
    bad = [c for c in cases if c not in CASES] + [m for m in what if m not in MEASURES]
    if bad or args.repeats < 1 or args.steps < 1:
        parser.error(f"unknown cases or measures {bad}, or repeats/steps below 1")

    import d3_dna

    import d3_core

    header = {
        "benchmark": "d3 vs d3-dna",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python", "benchmarks/vs_d3dna.py", *(argv or sys.argv[1:])]),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "d3_core": d3_core.__version__,
        "d3_dna": d3_dna.__version__,
        "precision": "float32",
    }
    print(json.dumps(header), flush=True)
    records = []
    for name in cases:
        case = CASES[name]
        impls = [D3(case), D3DNA(case)]
        params = {i.name: sum(p.numel() for p in i.model.parameters()) for i in impls}
        for measure in what:
            record = {"case": name, **asdict(case), "measure": measure, "parameters": params}
            record["timings"] = measure_interleaved(case, measure, args.repeats, args.steps, impls)
            if measure == "sample":
                record["steps"] = args.steps
            records.append(record)
            print(json.dumps(record), flush=True)
        del impls
    if not args.no_memory:
        for record in records:
            case = CASES[record["case"]]
            record["memory"] = {
                impl: peak_memory(impl, case, record["measure"], args.steps)
                for impl in IMPLEMENTATIONS
            }
            print(json.dumps({"case": case.name, "measure": record["measure"],
                              "memory": record["memory"]}), flush=True)  # fmt: skip
    markdown = table(records)
    print(markdown)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"{header['date'][:19].replace(':', '')}-vs-d3dna-{header['host']}"
    _write_atomic(
        args.out / f"{stem}.jsonl", "".join(json.dumps(x) + "\n" for x in [header, *records])
    )
    _write_atomic(
        args.out / f"{stem}.md",
        f"# d3 vs d3-dna\n\n```\n{json.dumps(header, indent=1)}\n```\n\n{markdown}\n",
    )
    print(f"results written to {args.out / stem}.{{jsonl,md}}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
