"""`d3 bench` cases and argument handling (the measurements themselves are benchmarks)."""

import pytest

from d3_core.bench import CASES, main
from d3_core.errors import D3ConfigError


def test_bench_cases_cover_every_dataset_and_architecture_at_paper_length():
    shapes = {(c.dataset, c.arch, c.length) for c in CASES.values()}
    assert shapes == {
        (d, a, n)
        for d, n in (("deepstarr", 249), ("mpra", 200), ("promoter", 1024))
        for a in ("tran", "conv")
    }


def test_bench_refuses_an_unknown_case_and_names_the_valid_ones():
    with pytest.raises(
        D3ConfigError, match=r"unknown case \['yeast-tran'\]; choose from deepstarr"
    ):
        main(["--cases", "yeast-tran"])


def test_bench_refuses_an_unknown_measure():
    with pytest.raises(D3ConfigError, match=r"unknown measure \['backward'\]"):
        main(["--what", "backward"])
