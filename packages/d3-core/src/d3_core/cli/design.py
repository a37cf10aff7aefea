"""``d3 design``: the command around `d3_core.generation.design.design`, its files and its report.

Writes into ``--out``: ``designs.fasta`` (best first; the header carries rank, predictions,
GC and longest homopolymer), ``designs.tsv`` (the same as a table), ``designs.npz``
(``tokens`` (n, L) uint8, ``arr_0`` (n, L, 4) one-hot, ``predictions``, ``target``),
``report.json``/``report.md`` (hit rate, diversity, nearest training sequence, what was
rejected) and ``provenance.json``. ``--out`` must be new, empty or d3's, and one ``d3`` writes
there at a time; the set is written in full beside an earlier one and swapped in only then, so a
failure (a full disk) keeps the earlier set (`d3_core.generation.filesets`).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

from d3_core.cli.options import add_checkpoint_options, add_guidance_options, positive
from d3_core.data.files import read_data_file
from d3_core.errors import D3InputError

__all__ = ["DESIGN_FILES", "add_parser", "design_report", "run"]

DESIGN_FILES = ("designs.fasta", "designs.tsv", "designs.npz", "report.json", "report.md",
                "provenance.json")  # fmt: skip


def add_parser(commands) -> argparse.ArgumentParser:
    """Registers ``d3 design``."""
    p = commands.add_parser(
        "design",
        help="design sequences for a target activity under synthesis constraints",
        description="Samples candidates for one target activity (guided by the checkpoint's "
        "defaults, or --guidance / --oracle-guidance), keeps those that satisfy every "
        "constraint, ranks them by the oracle's distance to the target and writes FASTA, TSV, "
        "NPZ, a report and provenance into --out.",
    )
    p.add_argument("--checkpoint", required=True, help="any checkpoint d3 sample reads")
    add_checkpoint_options(p)
    p.add_argument(
        "--target", action="append", required=True, metavar="NAME=VALUE",
        help="target per label: a number, or high / low (the 90th / 10th percentile of the "
        "training labels, needs --data); repeat for every label, e.g. --target Dev=high "
        "--target Hk=low",
    )  # fmt: skip
    p.add_argument("--num-designs", type=positive, default=100, help="designs to return")
    p.add_argument("--data", help="data file: training labels for high/low and the nearest "
                   "training sequence (default: the one trained on, when it exists)")  # fmt: skip
    p.add_argument(
        "--fix",
        action="append",
        default=[],
        metavar="POS:SEQ",
        help="hold SEQ at 0-based position POS, e.g. 100:TGACTCA; repeatable",
    )
    p.add_argument(
        "--forbid",
        action="append",
        default=[],
        metavar="KMER",
        help="k-mer that may not occur on either strand, e.g. GAATTC; repeatable",
    )
    p.add_argument("--gc", type=float, nargs=2, metavar=("MIN", "MAX"), help="GC fraction range")
    p.add_argument("--max-homopolymer", type=positive, metavar="N", help="longest run of a base")
    p.add_argument(
        "--tolerance",
        type=float,
        help="a design hits its target when every oracle "
        "output is within this of it (default: 0.5 sd of the training labels, else 0.5)",
    )
    p.add_argument(
        "--ground-truth",
        action="store_true",
        help="also score the designs by the planted rule of synthetic data",
    )
    p.add_argument(
        "--oversample",
        type=float,
        default=2.0,
        help="candidates per round per missing design (default: 2)",
    )
    p.add_argument("--max-rounds", type=positive, default=10, help="default: 10")
    p.add_argument("--steps", type=positive, help="sampler steps (default: the config's)")
    p.add_argument("--predictor", choices=("analytic", "euler"), help="default: the config's")
    p.add_argument("--batch-size", type=positive, help="sequences per forward pass")
    p.add_argument("--seed", type=int, default=0, help="default: 0")
    p.add_argument("--device", help="cpu, cuda, ... (default: cuda if available)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--force", action="store_true", help="overwrite designs in --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_guidance_options(p)
    return p


def _hits(predictions, goal, tolerance):
    import numpy as np

    return (np.abs(predictions - goal[None]) <= tolerance[None]).all(1)


def _top_hits(scores, goal):
    """Whether each design's highest output is the one the target asks highest (specificity)."""
    import numpy as np

    return np.argmax(scores, axis=1) == int(np.argmax(goal))


def design_report(result, *, names, tolerance, train, truth=None, oracle=None) -> dict[str, Any]:
    """Hit rate, diversity and nearest training sequence of a `DesignResult`."""
    import numpy as np

    from d3_core.evaluation.metrics import diversity, max_identity
    from d3_core.generation.design import gc_content, longest_homopolymer

    n, length = result.tokens.shape
    report: dict[str, Any] = {
        "num_designs": int(n),
        "target": dict(zip(names, map(float, result.target), strict=True)),
        "tolerance": dict(zip(names, map(float, tolerance), strict=True)),
        "candidates_sampled": int(result.sampled),
        "acceptance_rate": float(result.accepted / result.sampled) if result.sampled else None,
        "rejected_by": dict(result.rejected),
        "diversity": diversity(result.tokens) if n >= 2 else None,
        "gc": {"mean": float(gc_content(result.tokens).mean())},
        "longest_homopolymer": int(longest_homopolymer(result.tokens).max()),
        "seconds": round(result.seconds, 1),
    }
    if result.predictions is not None:
        goal = oracle.spec.targets_of(result.target[None])[0]
        report["oracle"] = {
            "name": oracle.spec.name,
            "hit_rate": float(_hits(result.predictions, goal, tolerance).mean()),
            "top_output_rate": float(_top_hits(result.predictions, goal).mean()),
            "mean_prediction": dict(zip(oracle.output_names,
                                        map(float, result.predictions.mean(0)), strict=True)),
        }  # fmt: skip
    if truth is not None:
        scored = np.asarray(truth(result.tokens))
        report["planted_rule"] = {
            "hit_rate": float(_hits(scored, result.target, tolerance).mean()),
            "top_output_rate": float(_top_hits(scored, result.target).mean()),
            "mean_score": dict(zip(names, map(float, scored.mean(0)), strict=True)),
        }
    if train is not None:
        nearest = max_identity(result.tokens, train) / length
        report["nearest_training_sequence"] = {
            "mean_identity": float(nearest.mean()), "max_identity": float(nearest.max()),
            "exact_copies": int((nearest == 1.0).sum()), "training_sequences": len(train),
        }  # fmt: skip
    return report


def _markdown(report: dict[str, Any], provenance: dict[str, Any]) -> str:
    target = ", ".join(f"{k} = {v:.3g}" for k, v in report["target"].items())
    lines = [f"# d3 design: {provenance['dataset']}", "",
             f"{report['num_designs']} designs for {target} from {provenance['checkpoint']}.", "",
             "| measure | value |", "|---|---|"]  # fmt: skip
    if "oracle" in report:
        lines.append(
            f"| hit rate, {report['oracle']['name']} | {report['oracle']['hit_rate']:.3f} |"
        )
    if "planted_rule" in report:
        lines.append(f"| hit rate, planted rule | {report['planted_rule']['hit_rate']:.3f} |")
    for key, name in (("oracle", "oracle"), ("planted_rule", "planted rule")):
        if key in report and len(report["target"]) > 1:
            lines.append(f"| the output asked highest scores highest, {name} | "
                         f"{report[key]['top_output_rate']:.3f} |")  # fmt: skip
    tol = ", ".join(f"{k} ± {v:.3g}" for k, v in report["tolerance"].items())
    lines.append(f"| hit means every output within | {tol} |")
    if report["diversity"] is not None:
        lines.append(f"| diversity (mean nearest-neighbour identity) | {report['diversity']:.3f} |")
    near = report.get("nearest_training_sequence")
    if near:
        lines.append(f"| nearest training sequence, mean / max identity | "
                     f"{near['mean_identity']:.3f} / {near['max_identity']:.3f} |")  # fmt: skip
    lines.append(f"| candidates sampled (accepted) | {report['candidates_sampled']} "
                 f"({report['acceptance_rate']:.2f}) |")  # fmt: skip
    for kind, count in report["rejected_by"].items():
        lines.append(f"| rejected: {kind} | {count} |")
    g = provenance["guidance"]
    lines += ["", f"Guidance: classifier-free w = {g['cfg']:g}, oracle weight {g['oracle']:g} "
              f"({g['oracle_form']})."]  # fmt: skip
    return "\n".join(lines) + "\n"


def _write(out: Path, result, report, provenance, names, oracle_names) -> list[Path]:

    from d3_core.generation.filesets import replace_set

    with replace_set(out, names=DESIGN_FILES) as stage:
        _write_files(stage, result, report, provenance, names, oracle_names)
    return [out / name for name in DESIGN_FILES]


def _write_files(stage: Path, result, report, provenance, names, oracle_names) -> None:
    import numpy as np

    from d3_core.data.loader import tokens_to_onehot
    from d3_core.data.synthetic import decode
    from d3_core.generation.design import gc_content, longest_homopolymer

    gc, runs = gc_content(result.tokens), longest_homopolymer(result.tokens)
    preds = result.predictions
    with (
        open(stage / "designs.fasta", "w", encoding="utf-8") as fasta,
        open(stage / "designs.tsv", "w", encoding="utf-8") as tsv,
    ):
        head = ["rank", "sequence", "gc", "longest_homopolymer"]
        if preds is not None:
            head += [f"oracle_{n}" for n in oracle_names] + ["distance_to_target"]
        tsv.write("\t".join(head) + "\n")
        for i, row in enumerate(result.tokens):
            seq = decode(row)
            extra = ""
            cells = [str(i + 1), seq, f"{gc[i]:.4f}", str(runs[i])]
            if preds is not None:
                extra = " " + " ".join(f"{n}={v:.4g}" for n, v in
                                       zip(oracle_names, preds[i], strict=True))  # fmt: skip
                cells += [f"{v:.6g}" for v in preds[i]] + [f"{result.distance[i]:.6g}"]
            fasta.write(f">design_{i + 1}{extra} gc={gc[i]:.3f} homopolymer={runs[i]}\n{seq}\n")
            tsv.write("\t".join(cells) + "\n")
    with open(stage / "designs.npz", "wb") as file:
        arrays = {"tokens": result.tokens, "arr_0": tokens_to_onehot(result.tokens, layout="NLC"),
                  "target": result.target, "label_names": np.array(list(names))}  # fmt: skip
        if preds is not None:
            arrays["predictions"] = preds
        np.savez(file, **arrays)
    with open(stage / "report.json", "w", encoding="utf-8") as file:
        json.dump(report, file, indent=2)
        file.write("\n")
    with open(stage / "report.md", "w", encoding="utf-8") as file:
        file.write(_markdown(report, provenance))
    with open(stage / "provenance.json", "w", encoding="utf-8") as file:
        json.dump(provenance, file, indent=2)
        file.write("\n")


def run(args: argparse.Namespace) -> int:
    """``d3 design``: check the request and --out, then design, rank, write, summarise."""
    import math

    from d3_core.devices import resolve_device
    from d3_core.generation.design import Constraints
    from d3_core.generation.filesets import claim
    from d3_core.seeds import check_seed

    check_seed(args.seed, option="--seed")
    if not (math.isfinite(args.oversample) and args.oversample > 0):
        raise D3InputError(f"--oversample must be a number above 0, got {args.oversample}")
    constraints = Constraints(tuple(args.forbid), tuple(args.gc) if args.gc else None,
                              args.max_homopolymer)  # fmt: skip
    device = resolve_device(args.device)
    with claim(args.out, owned=DESIGN_FILES, what="designs") as out:
        taken = [n for n in DESIGN_FILES if (out / n).exists()]
        if taken and not args.force:
            raise D3InputError(f"{out} already holds {', '.join(taken)}; choose another --out "
                               "or pass --force")  # fmt: skip
        return _design(args, out, device, constraints)


def _design(args: argparse.Namespace, out: Path, device: str, constraints) -> int:
    """Loads, designs, ranks and writes, inside the claimed --out."""
    import numpy as np
    import torch

    from d3_core import __version__
    from d3_core.checkpoints.load import load_checkpoint
    from d3_core.diffusion.guidance import load_guiding_oracle, resolve_guidance
    from d3_core.generation.design import design, parse_fixed, parse_targets
    from d3_core.generation.sequences import check_fits

    loaded = load_checkpoint(args.checkpoint, device=device, trusted=args.trust_checkpoint,
                             dataset=args.dataset, arch=args.arch)  # fmt: skip
    plugin = loaded.plugin
    if plugin.label_mode != "global":
        raise D3InputError(
            f"d3 design takes one target per label; {plugin.name} labels are per position. "
            "Sample for label tracks with `d3 sample --labels FILE`"
        )
    names = list(loaded.cfg.dataset.label_names)
    data = args.data or loaded.cfg.dataset.data
    train_tokens = train_labels = None
    if data and Path(data).exists():
        splits = read_data_file(plugin, data, need=("train",))
        train_tokens = splits["train"].tokens.numpy()
        train_labels = splits["train"].labels.numpy()
    elif args.data:
        raise D3InputError(f"--data {args.data!r} does not exist")
    target = parse_targets(args.target, names, train_labels)
    length = loaded.cfg.dataset.sequence_length
    check_fits(int(min(args.num_designs * args.oversample, 2**62)) + 1, length, (len(names),),
               option="--num-designs")  # fmt: skip
    fixed = parse_fixed(args.fix, length) if args.fix else None
    oracle = load_guiding_oracle(args.oracle, plugin, device=device,
                                 trusted=args.trust_checkpoint, names=args.oracle_names)  # fmt: skip
    guidance, notes = resolve_guidance(
        loaded.model, loaded.cfg.sampling, cfg=args.guidance, oracle=args.oracle_guidance,
        oracle_form=args.oracle_guidance_form, has_oracle=oracle is not None,
    )  # fmt: skip
    for note in notes:
        print(note, flush=True)
    if oracle is None:
        print("no --oracle: designs are returned in sampling order, unranked", flush=True)
    sampling = loaded.cfg.sampling
    steps, predictor = args.steps or sampling.steps, args.predictor or sampling.predictor
    print(f"designing {args.num_designs} sequences for "
          f"{', '.join(f'{n}={v:.3g}' for n, v in zip(names, target, strict=True))} "
          f"({predictor}, {steps} steps)", flush=True)  # fmt: skip
    result = design(
        loaded, target, num_designs=args.num_designs, constraints=constraints, fixed=fixed,
        oracle=oracle, guidance=guidance, guide=oracle, oversample=args.oversample,
        max_rounds=args.max_rounds, seed=args.seed, steps=steps, predictor=predictor,
        batch_size=args.batch_size or sampling.batch_size, progress=not args.no_progress,
    )  # fmt: skip
    if len(result.tokens) < args.num_designs:
        print(f"warning: only {len(result.tokens)} of {args.num_designs} candidates satisfied the "
              f"constraints in {args.max_rounds} rounds", flush=True)  # fmt: skip
    if args.tolerance is not None:
        tolerance = np.full(len(target), args.tolerance, dtype=np.float32)
    elif train_labels is not None:
        tolerance = 0.5 * train_labels.std(0)
    else:
        tolerance = np.full(len(target), 0.5, dtype=np.float32)
    truth = plugin.load("ground_truth") if args.ground_truth else None
    report = design_report(result, names=names, tolerance=tolerance, train=train_tokens,
                           truth=truth, oracle=oracle)  # fmt: skip
    provenance = {
        "checkpoint": str(loaded.path), "checkpoint_sha256": loaded.sha256,
        "dataset": loaded.dataset, "architecture": loaded.architecture,
        "target_request": list(args.target), "fixed": list(args.fix),
        "constraints": constraints.describe(), "guidance": guidance.describe(),
        "guidance_notes": notes, "oracle": oracle.describe() if oracle else None,
        "steps": steps, "predictor": predictor, "seed": args.seed, "device": device,
        "versions": {"d3-core": __version__, "torch": str(torch.__version__)},
        "host": platform.node(), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }  # fmt: skip
    oracle_names = list(oracle.output_names) if oracle else []
    written = _write(out, result, report, provenance, names, oracle_names)
    print(_markdown(report, provenance), flush=True)
    for path in written:
        print(f"  {path}", flush=True)
    return 0
