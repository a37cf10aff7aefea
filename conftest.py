"""Repository-wide pytest hooks: the ``--run-slow`` option and the ``slow``/``gpu`` auto-skips."""

import os

import pytest

# The conformance base that dataset packages' tests subclass lives in d3-core; rewrite its asserts
# so that failures show the compared values.
pytest.register_assert_rewrite(
    "d3_core.testing.conformance", "d3_core.testing.checkpoint_conformance"
)


def pytest_addoption(parser: pytest.Parser) -> None:
    """Adds ``--run-slow``, which runs tests marked ``slow``."""
    parser.addoption(
        "--run-slow",
        action="store_true",
        default=False,
        help="run tests marked slow (also: D3_RUN_SLOW=1, or -m with an expression naming slow)",
    )


def _slow_tests_requested(config: pytest.Config) -> bool:
    """Whether the user asked for slow tests by flag, environment or marker expression."""
    if config.getoption("--run-slow") or os.environ.get("D3_RUN_SLOW") == "1":
        return True
    # With `-m slow` (or any expression naming it) the expression alone decides.
    return "slow" in (config.getoption("markexpr") or "")


def _cuda_available() -> bool:
    """Whether torch sees a CUDA device; torch is imported only when a gpu test was collected."""
    import torch

    return torch.cuda.is_available()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skips ``slow`` tests unless requested and ``gpu`` tests when CUDA is unavailable."""
    if not _slow_tests_requested(config):
        skip_slow = pytest.mark.skip(reason="slow: pass --run-slow or set D3_RUN_SLOW=1")
        for item in items:
            if item.get_closest_marker("slow") is not None:
                item.add_marker(skip_slow)
    gpu_items = [item for item in items if item.get_closest_marker("gpu") is not None]
    if gpu_items and not _cuda_available():
        skip_gpu = pytest.mark.skip(reason="gpu: no CUDA device available")
        for item in gpu_items:
            item.add_marker(skip_gpu)
