"""`EvaluateRequest`: every ``d3 evaluate`` option reaches the request, and bad ones are refused."""

from __future__ import annotations

import dataclasses

import pytest

from d3_core.cli.main import build_parser
from d3_core.errors import D3InputError
from d3_core.evaluation.request import _FROM_ARGS, EvaluateRequest


def _evaluate_parser():
    parser = build_parser()
    subcommands = next(a for a in parser._actions if a.dest == "command")
    return subcommands.choices["evaluate"]


def test_every_evaluate_option_is_a_request_field():
    fields = {f.name for f in dataclasses.fields(EvaluateRequest)}
    dests = {a.dest for a in _evaluate_parser()._actions if a.dest != "help"}
    unmapped = {d for d in dests if _FROM_ARGS.get(d, (d,))[0] not in fields}
    assert unmapped == set()


def test_from_args_maps_names_and_negated_flags(tmp_path):
    args = build_parser().parse_args(
        ["evaluate", "--dataset", "toy", "--out", str(tmp_path), "--oracle", "o.ckpt",
         "--no-plots", "--trust-checkpoint", "--kmer", "6", "4", "6"]
    )  # fmt: skip
    request = EvaluateRequest.from_args(args)
    assert request.oracle_path == "o.ckpt"
    assert (request.plots, request.discriminator, request.progress) == (False, True, True)
    assert request.trusted is True
    assert request.kmer == (4, 6)
    assert request.out == tmp_path


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"oracle_path": None}, "nothing to score with"),
        ({"paired_repeat": 2, "replicates": 2}, "not both"),
        ({"paired_repeat": 0}, "at least 1"),
        ({"samples": "s.npz", "replicates": 2, "model_path": None}, "1 with --samples"),
        ({"model_path": None, "guidance_sweep": (1.0,)}, "give --model-path"),
        ({"model_path": None}, "--model-path \\(to sample\\) or --samples"),
    ],
)
def test_check_refuses_what_cannot_be_evaluated(tmp_path, changes, message):
    base = {"dataset": "toy", "out": tmp_path, "oracle_path": "o.ckpt", "model_path": "m"}
    with pytest.raises(D3InputError, match=message):
        EvaluateRequest(**(base | changes)).check()


def test_check_refuses_an_existing_report_without_force(tmp_path):
    (tmp_path / "report.json").write_text("{}")
    request = EvaluateRequest(dataset="toy", out=tmp_path, ground_truth=True, model_path="m")
    with pytest.raises(D3InputError, match=r"already holds report\.json"):
        request.check()
    dataclasses.replace(request, force=True).check()
