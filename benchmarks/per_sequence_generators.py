"""What per-sequence generators cost: seconds per sampled batch, one generator against B of them.

``d3 sample`` draws sequence i from its own generator seeded with ``step_seed(seed, i)``
(`d3_core.generation.sequences.sample_sequences`), so a sequence does not depend on its batch,
its shard or the device count. That means B small random draws per step instead of one. This
script measures what it costs, on the machine it runs on::

    python benchmarks/per_sequence_generators.py [--cases deepstarr-conv,deepstarr-tran,bare]
        [--batch 64] [--steps 4] [--repeats 5] [--threads 1] [--device cpu] [--out benchmarks/results]

For each case it times `d3_core.diffusion.sampling.sample` (analytic predictor, ``--steps`` steps
plus the final denoiser) on one batch with a single ``torch.Generator`` for the batch ("before")
and with one generator per sequence ("after"), interleaved and alternating which goes first,
each right after a 2048² float32 sgemm probe (a shared CPU changes speed for minutes at a time).
Cases: the paper-size DeepSTARR score models (`d3_core.bench.CASES`, random weights: the speed
is the same) and ``bare``, a score function that costs nothing, so the sampler's own work and
the generators' overhead are all that is timed (the worst case). It prints medians and writes
``<date>-per-sequence-generators-<host>.jsonl``: a header (command, machine) and one line per case.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from d3_core.bench import CASES, sgemm_gflops
from d3_core.diffusion.graph import UniformGraph
from d3_core.diffusion.noise import GeometricNoise
from d3_core.diffusion.sampling import sample
from d3_core.seeds import step_seed


def _score_fn(case: str, length: int, device: str):
    if case == "bare":

        def bare(tokens, labels, sigma):
            return torch.zeros(*tokens.shape, 4, device=tokens.device)

        return bare, length, 2
    from d3_core.bench import _build

    spec = CASES[case]
    model = _build(spec, "none").to(device).eval()
    return model, spec.length, spec.signal_dim


def _probe(device: str) -> float:
    if device == "cpu":
        return sgemm_gflops()
    a = torch.randn(8192, 8192, device=device)
    torch.mm(a, a)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(5):
        torch.mm(a, a)
    torch.cuda.synchronize()
    return 5 * 2 * 8192**3 / (time.perf_counter() - start) / 1e9


def measure(case: str, *, batch: int, steps: int, repeats: int, device: str, length: int) -> dict:
    """Median seconds per batch with one generator and with one per sequence, interleaved."""
    score_fn, length, signal_dim = _score_fn(case, length, device)
    labels = torch.randn(batch, signal_dim, device=device)
    graph, noise = UniformGraph(4), GeometricNoise()

    def draw(per_sequence: bool) -> float:
        if per_sequence:
            generator = [torch.Generator(device).manual_seed(step_seed(0, i)) for i in range(batch)]
        else:
            generator = torch.Generator(device).manual_seed(step_seed(0))
        if device != "cpu":
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.inference_mode():
            sample(score_fn, labels, length=length, graph=graph, noise=noise, steps=steps,
                   generator=generator)  # fmt: skip
        if device != "cpu":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    draw(False), draw(True)  # warm-up
    runs: dict[str, list[float]] = {"one_generator": [], "per_sequence": []}
    probes = []
    for r in range(repeats):
        order = (False, True) if r % 2 == 0 else (True, False)
        for per_sequence in order:
            probes.append(_probe(device))
            key = "per_sequence" if per_sequence else "one_generator"
            runs[key].append(draw(per_sequence))
    before, after = (statistics.median(runs[k]) for k in ("one_generator", "per_sequence"))
    ratios = [b / a for a, b in zip(runs["one_generator"], runs["per_sequence"], strict=True)]
    return {
        "case": case, "batch": batch, "steps": steps, "length": length, "device": device,
        "seconds_per_batch_one_generator_median": before,
        "seconds_per_batch_per_sequence_median": after,
        "per_sequence_over_one_generator_median": statistics.median(ratios),
        "seconds": {k: [round(v, 4) for v in vs] for k, vs in runs.items()},
        "sgemm_gflops_median": statistics.median(probes),
        "sgemm_gflops": [round(p, 1) for p in probes],
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default="deepstarr-conv,deepstarr-tran,bare")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--length", type=int, default=249, help="sequence length of 'bare'")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    header = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "python benchmarks/per_sequence_generators.py " + shlex.join(
            sys.argv[1:] if argv is None else argv),
        "host": platform.node(), "cpu": platform.processor() or platform.machine(),
        "cpus": __import__("os").cpu_count(), "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(), "device": args.device,
        "gpu": torch.cuda.get_device_name() if args.device != "cpu" else None,
    }  # fmt: skip
    records = []
    print(
        f"{'case':<16}{'batch':>6}{'one gen s':>11}{'per-seq s':>11}{'ratio':>8}{'sgemm GF/s':>12}"
    )
    for case in args.cases.split(","):
        record = measure(case, batch=args.batch, steps=args.steps, repeats=args.repeats,
                         device=args.device, length=args.length)  # fmt: skip
        records.append(record)
        print(f"{case:<16}{args.batch:>6}{record['seconds_per_batch_one_generator_median']:>11.4f}"
              f"{record['seconds_per_batch_per_sequence_median']:>11.4f}"
              f"{record['per_sequence_over_one_generator_median']:>8.3f}"
              f"{record['sgemm_gflops_median']:>12.0f}", flush=True)  # fmt: skip
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H%M%S")
    path = out / f"{stamp}-per-sequence-generators-{platform.node()}.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in [header, *records]))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
