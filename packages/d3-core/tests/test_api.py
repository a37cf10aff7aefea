"""`d3_core`'s public API: every name resolves to its module, and importing the package is light."""

from __future__ import annotations

import subprocess
import sys

import pytest

import d3_core


def test_every_public_name_is_the_object_of_the_module_that_owns_it():
    from d3_core.checkpoints.load import load_model_local
    from d3_core.evaluation.run import evaluate_run

    assert d3_core.load_model_local is load_model_local
    assert d3_core.evaluate_run is evaluate_run
    assert d3_core.evaluate is evaluate_run
    for name in d3_core.__all__:
        assert getattr(d3_core, name) is not None, name
    assert set(d3_core.__all__) <= set(dir(d3_core))


def test_the_seed_promise_imports_from_the_package():
    from d3_core import load_model_local  # noqa: F401


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_name"):
        d3_core.no_such_name  # noqa: B018


def test_importing_d3_core_does_not_import_torch():
    code = "import sys, d3_core; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
