"""Tests of the ``d3`` command line: subcommands, exit statuses, error lines and lazy imports."""

import json
import re
import subprocess
import sys
from types import ModuleType

import pytest

from d3_core import __version__
from d3_core.cli.main import main
from d3_core.errors import PluginError


def run_python(*args: str) -> subprocess.CompletedProcess:
    """Runs the test interpreter with ``args`` and captures its output as text."""
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=60, check=False
    )


# --- Parser -------------------------------------------------------------------------------------


def test_help_lists_every_subcommand_and_exits_0(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["--help"])
    assert caught.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: d3 ")
    for command in ("datasets", "train", "sample", "make-data", "demo", "bench"):
        assert re.search(rf"\n    {command}\s", out), command


def test_version_names_d3_core_and_its_version(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["--version"])
    assert caught.value.code == 0
    assert capsys.readouterr().out == f"d3 (d3-core {__version__})\n"


def test_no_subcommand_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as caught:
        main([])
    assert caught.value.code == 2
    assert "d3: error: the following arguments are required: COMMAND" in capsys.readouterr().err


def test_an_unknown_option_of_a_subcommand_is_a_usage_error(capsys, installed):
    installed()
    with pytest.raises(SystemExit) as caught:
        main(["datasets", "--bogus", "x"])
    assert caught.value.code == 2
    assert capsys.readouterr().err.endswith("d3: error: unrecognized arguments: --bogus x\n")


def test_help_imports_neither_torch_nor_the_registry():
    code = (
        "import sys\n"
        "from d3_core.cli.main import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('torch', 'numpy', 'omegaconf', 'd3_core.registry')\n"
        "print('IMPORTED', [name for name in heavy if name in sys.modules])\n"
    )
    result = run_python("-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "IMPORTED []"


def test_python_dash_m_d3_core_runs_the_same_command_line():
    result = run_python("-m", "d3_core", "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"d3 (d3-core {__version__})\n"


# --- d3 datasets --------------------------------------------------------------------------------


def test_datasets_prints_one_table_row_per_installed_plugin(
    capsys, installed, make_plugin, ready_components
):
    installed(
        make_plugin(
            "promoter", sequence_length=1024, label_names=("CAGE",), label_mode="per_position"
        ),
        make_plugin("deepstarr", version="0.1.2", **ready_components),
    )
    assert main(["datasets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split() for line in lines] == [
        ["name", "package", "version", "length", "labels", "status"],
        ["deepstarr", "d3-deepstarr", "0.1.2", "249", "Dev,", "Hk", "(global)", "ready"],
        ["promoter", "d3-promoter", "0.1.0", "1024", "CAGE", "(per", "position)", "placeholder"],
    ]
    # Columns line up: every cell of a column starts where its header does.
    assert {line.index("d3-") for line in lines[1:]} == {lines[0].index("package")}


def test_datasets_as_json_gives_every_declared_field(capsys, installed, make_plugin):
    installed(make_plugin("mpra", label_names=("a", "b", "c")))
    assert main(["datasets", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {
            "name": "mpra",
            "distribution": "d3-mpra",
            "sequence_length": 249,
            "label_names": ["a", "b", "c"],
            "label_mode": "global",
            "version": "0.1.0",
            "architectures": [],
            "ready": False,
            "description": "A test dataset.",
        }
    ]


def test_datasets_with_none_installed_names_the_packages_to_install(capsys, installed):
    installed()
    assert main(["datasets"]) == 0
    assert capsys.readouterr().out == (
        "no dataset plugins installed; install one with pip, e.g. one of: "
        "d3-deepstarr, d3-mpra, d3-promoter\n"
    )


def test_datasets_marks_a_broken_plugin_and_exits_1(
    capsys, installed, fake_entry_point, make_plugin
):
    installed(
        make_plugin("mpra"), fake_entry_point("deepstarr", ImportError("boom"), "d3-deepstarr")
    )
    assert main(["datasets"]) == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines()[1].split() == [
        "deepstarr",
        "d3-deepstarr",
        "-",
        "-",
        "-",
        "broken",
    ]
    assert captured.out.splitlines()[2].split()[-1] == "placeholder"
    assert captured.err == (
        "d3: error: entry point 'deepstarr' (d3_deepstarr.plugin:PLUGIN) of d3-deepstarr failed "
        "to import: ImportError: boom; reinstall that package\n"
    )


def test_datasets_reports_a_duplicate_name_on_one_line(capsys, installed, make_plugin):
    installed(make_plugin("mpra"), make_plugin("mpra", distribution="mpra-fork"))
    assert main(["datasets"]) == 1
    assert capsys.readouterr().err == (
        "d3: error: dataset name 'mpra' is registered by more than one installed package: "
        "d3-mpra and mpra-fork; uninstall all but one of them\n"
    )


# --- d3 demo ------------------------------------------------------------------------------------


def test_demo_of_a_plugin_without_training_components_names_what_is_missing(
    capsys, installed, make_plugin
):
    installed(make_plugin("deepstarr"))
    assert main(["demo"]) == 1
    assert capsys.readouterr().err == (
        "d3: error: d3-deepstarr 0.1.0 is installed but does not provide a LightningModule "
        "subclass, score models, packaged configs, a data loader; upgrade it "
        "(`pip install -U d3-deepstarr`)\n"
    )


def test_demo_without_the_dataset_installed_prints_one_error_line_and_exits_1(capsys, installed):
    installed()
    assert main(["demo", "--dataset", "deepstarr"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "d3: error: no dataset plugin named 'deepstarr' is installed; install it with "
        "`pip install d3-deepstarr` (installed: none)\n"
    )


def test_d3_debug_shows_the_full_error_instead_of_one_line(monkeypatch, installed):
    installed()
    monkeypatch.setenv("D3_DEBUG", "1")
    with pytest.raises(PluginError, match=r"`pip install d3-promoter`"):
        main(["demo", "--dataset", "promoter"])


# --- d3 bench -----------------------------------------------------------------------------------


@pytest.fixture
def fake_bench(monkeypatch):
    """Puts a stand-in ``d3_core.bench`` in place; returns the argument lists it was called with."""
    calls = []
    module = ModuleType("d3_core.bench")

    def bench_main(argv):
        calls.append(list(argv))
        return 3 if "--fail" in argv else 0

    module.main = bench_main
    monkeypatch.setitem(sys.modules, "d3_core.bench", module)
    return calls


def test_bench_forwards_every_argument_after_it(fake_bench):
    argv = ["--help", "--device", "cpu", "graph", "-n", "3", "--json"]
    assert main(["bench", *argv]) == 0
    assert fake_bench == [argv]


def test_bench_returns_the_benchmark_exit_status(fake_bench):
    assert main(["bench", "--fail"]) == 3
    assert main(["bench"]) == 0
    assert fake_bench == [["--fail"], []]
