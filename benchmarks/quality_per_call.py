"""Quality per network call: planted-rule fidelity and diversity of d3's samplers against steps.

Run it on a trained synthetic-data run (``d3 demo`` writes one)::

    python benchmarks/quality_per_call.py --run runs/demo-deepstarr-Conv-... [--labels 256]
        [--steps 8,16,32,64,128] [--predictors euler,analytic] [--seeds 0,1]
        [--guidance default,0] [--threads 1] [--out benchmarks/results]

For every guidance weight, sampling seed, predictor (`d3_core.diffusion.sampling.PREDICTORS`) and step
count it draws one sequence per test label (the first ``--labels`` of the run's data file) with
the checkpoint's EMA model, exactly as ``d3 sample`` does (`d3_core.generation.sequences.sample_sequences`,
per-sequence generators), without oracle guidance. ``default`` is the checkpoint's
``sampling.guidance`` (classifier-free guidance, `d3_core.diffusion.guidance.resolve_guidance`).

Each set is scored by the planted rule (the dataset's ``ground_truth``), which nothing was tuned
on: SP-MSE against the rule's activity of the real test sequences of the same labels
(docs/metrics.md#metrics, as ``d3 evaluate``), the MSE against the requested labels themselves
(which carry the rule's noise, σ = 0.3 for DeepSTARR), Pearson r of requested labels against the
samples' activities per output, and diversity (mean nearest-neighbour identity; lower is more
diverse). Network calls are counted by a forward hook on the model: ``nfe`` is calls per sequence
(steps + 1 for the final denoiser) and ``model_rows_per_sequence`` the rows the model saw (twice
``nfe`` under classifier-free guidance, whose conditional and unconditional halves share one call).

Writes ``<date>-quality-per-call-<host>.json`` (a header and one record per set) and a ``.png``
of SP-MSE and diversity against NFE, mean over seeds with their range as error bars.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from d3_core.checkpoints.load import load_checkpoint
from d3_core.data.loader import label_names_of
from d3_core.diffusion.guidance import resolve_guidance
from d3_core.diffusion.sampling import PREDICTORS
from d3_core.evaluation.metrics import diversity, pearson, sp_mse
from d3_core.generation.sequences import sample_sequences
from d3_core.io import atomic_path, atomic_write
from d3_core.registry import load_dataset_plugin

METRICS = ("sp_mse", "mse_vs_labels", "diversity", "seconds")


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="run directory or checkpoint")
    parser.add_argument("--data", type=Path, help="data file (default: the run's)")
    parser.add_argument("--labels", type=int, default=256, help="first N test labels")
    parser.add_argument("--steps", type=_ints, default=[8, 16, 32, 64, 128])
    parser.add_argument("--predictors", default=",".join(PREDICTORS))
    parser.add_argument("--seeds", type=_ints, default=[0, 1])
    parser.add_argument("--guidance", default="default", help="CFG weights: 'default' or numbers")
    parser.add_argument("--batch-size", type=int, help="default: the checkpoint's")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    return parser.parse_args(argv)


class CallCounter:
    """Forward hook counting the model's calls and the rows (sequences) they carried."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.calls = self.rows = 0
        self.handle = model.register_forward_hook(self)

    def __call__(self, module, args, output) -> None:
        self.calls += 1
        self.rows += int(args[0].shape[0])


def _finite(value):
    """`value` with NaN and infinities (a constant column's Pearson r) as None: strict JSON."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return None if isinstance(value, float) and not math.isfinite(value) else value


def score_set(truth, tokens, labels, f_real, names) -> dict[str, float]:
    """Planted-rule metrics of one set of samples drawn for `labels` (row i for label i)."""
    f_gen = np.asarray(truth(tokens.astype(np.int64)), dtype=np.float64)
    out = {"sp_mse": sp_mse(f_real, f_gen), "mse_vs_labels": sp_mse(labels, f_gen)}
    for name, r in zip(names, pearson(labels, f_gen), strict=True):
        out[f"pearson.{name}"] = float(r)
    out["diversity"] = diversity(tokens)
    return out


def summarise(records: list[dict]) -> list[dict]:
    """Mean and spread (half the range) over seeds of each (guidance, predictor, steps)."""
    groups: dict[tuple, list[dict]] = {}
    for rec in records:
        groups.setdefault((rec["cfg"], rec["predictor"], rec["steps"]), []).append(rec)
    rows = []
    for (cfg, predictor, steps), recs in groups.items():
        keys = [k for k in recs[0] if k in METRICS or k.startswith("pearson.")]
        row = {"cfg": cfg, "predictor": predictor, "steps": steps, "seeds": len(recs),
               "nfe": recs[0]["nfe"], "model_rows_per_sequence": recs[0]["model_rows_per_sequence"]}  # fmt: skip
        for k in keys:
            values = np.array([r[k] for r in recs])
            row[k] = float(values.mean())
            row[f"{k}_spread"] = float(values.max() - values.min()) / 2
        rows.append(row)
    return rows


def markdown(rows: list[dict], names) -> str:
    cols = ["CFG w", "predictor", "steps", "NFE", "rows/seq", "SP-MSE", "MSE vs labels",
            *(f"r {n}" for n in names), "diversity", "s"]  # fmt: skip
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]

    def cell(row, key, digits):
        return f"{row[key]:.{digits}f} ± {row[key + '_spread']:.{digits}f}"

    for row in rows:
        cells = [f"{row['cfg']:g}", row["predictor"], str(row["steps"]), str(row["nfe"]),
                 f"{row['model_rows_per_sequence']:g}", cell(row, "sp_mse", 2),
                 cell(row, "mse_vs_labels", 2), *(cell(row, f"pearson.{n}", 3) for n in names),
                 cell(row, "diversity", 3), f"{row['seconds']:.1f}"]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path, reference: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    colours = {p: f"C{i}" for i, p in enumerate(dict.fromkeys(r["predictor"] for r in rows))}
    styles = {
        w: ("-", "--", "-.", ":")[i % 4]
        for i, w in enumerate(dict.fromkeys(r["cfg"] for r in rows))
    }
    nfes = sorted({r["nfe"] for r in rows})
    panels = (("sp_mse", axes[0], "SP-MSE, planted rule (lower is better)"),
              ("diversity", axes[1], "diversity: NN identity (lower is more diverse)"))  # fmt: skip
    for key, ax, label in panels:
        for cfg, predictor in dict.fromkeys((r["cfg"], r["predictor"]) for r in rows):
            curve = sorted((r for r in rows if (r["cfg"], r["predictor"]) == (cfg, predictor)),
                           key=lambda r: r["nfe"])  # fmt: skip
            ax.errorbar([r["nfe"] for r in curve], [r[key] for r in curve],
                        yerr=[r[f"{key}_spread"] for r in curve], marker="o", capsize=3,
                        color=colours[predictor], ls=styles[cfg],
                        label=f"{predictor}, CFG w = {cfg:g}")  # fmt: skip
        ax.axhline(reference[key], color="grey", ls=":", lw=1, label=reference[f"{key}_label"])
        ax.set_xscale("log", base=2)
        ax.set_xticks(nfes, [str(x) for x in nfes])
        ax.minorticks_off()
        ax.legend(fontsize=8)
        ax.set_xlabel("network calls per sequence (NFE = steps + 1)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    fig.suptitle(reference["title"], fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    predictors = [p for p in args.predictors.split(",") if p]
    loaded = load_checkpoint(args.run, device="cpu")
    plugin = load_dataset_plugin(loaded.dataset)
    data = args.data or Path(loaded.cfg.dataset.data)
    splits = plugin.load("data_loader")(data)
    _, names = label_names_of(plugin, splits, loaded.cfg.dataset.label_names)
    test = splits["test"]
    n = min(args.labels, len(test))
    real, labels = test.tokens[:n].numpy(), test.labels[:n].numpy().astype(np.float32)
    truth = plugin.load("ground_truth")
    f_real = np.asarray(truth(real.astype(np.int64)), dtype=np.float64)
    shuffled = f_real[np.random.default_rng(0).permutation(n)]
    batch_size = args.batch_size or loaded.cfg.sampling.batch_size
    weights = [None if w == "default" else float(w) for w in args.guidance.split(",") if w]
    header = {
        "benchmark": "quality per network call",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join(["python", *sys.argv]),
        "host": platform.node(), "cpus": torch.multiprocessing.cpu_count(),
        "torch": str(torch.__version__), "torch_threads": torch.get_num_threads(),
        "checkpoint": str(loaded.path), "checkpoint_sha256": loaded.sha256,
        "checkpoint_step": loaded.step, "dataset": loaded.dataset,
        "architecture": loaded.architecture, "data": str(Path(data).resolve()),
        "labels": f"first {n} test labels", "batch_size": batch_size, "oracle_guidance": 0,
        "reference": {"real_test_diversity": diversity(real),
                      "sp_mse_real_shuffled_labels": sp_mse(f_real, shuffled),
                      "mse_real_vs_labels": sp_mse(labels, f_real)},
    }  # fmt: skip
    print(json.dumps(_finite(header)), flush=True)
    counter = CallCounter(loaded.model)
    records = []
    for weight in weights:
        chosen, notes = resolve_guidance(loaded.model, loaded.cfg.sampling, cfg=weight)
        for note in notes:
            print(note, file=sys.stderr)
        for seed in args.seeds:
            for predictor in predictors:
                for steps in args.steps:
                    counter.calls = counter.rows = 0
                    run = sample_sequences(loaded, labels, seed=seed, steps=steps,
                                           predictor=predictor, batch_size=batch_size,
                                           progress=False, guidance=chosen)  # fmt: skip
                    nfe = counter.calls / math.ceil(n / batch_size)
                    record = {"cfg": chosen.cfg, "predictor": predictor, "steps": steps,
                              "seed": seed, "nfe": int(nfe) if nfe.is_integer() else nfe,
                              "model_rows_per_sequence": counter.rows / n,
                              "seconds": run.seconds,
                              **score_set(truth, run.tokens, labels, f_real, names)}  # fmt: skip
                    records.append(record)
                    print(json.dumps(_finite(record)), flush=True)
    counter.handle.remove()
    rows = summarise(records)
    table = markdown(rows, names)
    print(table)
    stem = f"{header['date'][:19].replace(':', '')}-quality-per-call-{header['host']}"
    with atomic_write(args.out / f"{stem}.json") as file:
        results = {"header": header, "summary": rows, "records": records}
        json.dump(_finite(results), file, indent=1, allow_nan=False)
        file.write("\n")
    ref = header["reference"]
    plot(rows, args.out / f"{stem}.png", {
        "sp_mse": ref["sp_mse_real_shuffled_labels"], "sp_mse_label": "real, shuffled labels",
        "diversity": ref["real_test_diversity"], "diversity_label": "real test sequences",
        "title": f"{loaded.dataset} {loaded.architecture}, step {loaded.step}: {n} test labels, "
                 f"seeds {args.seeds}, {header['torch_threads']} thread(s), no oracle guidance",
    })  # fmt: skip
    print(f"wrote {args.out / stem}.json and .png", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
