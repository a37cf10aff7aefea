"""Nox sessions: one test suite per package, lint, wheel builds, benchmarks and the demo."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path

import nox

nox.needs_version = ">=2024.3.2"
# Plain venv + pip: pip reads this machine's pip configuration (local torch wheel, caps); uv
# does not, and an unpinned torch resolves to a multi-GB CUDA build.
nox.options.default_venv_backend = "venv"
nox.options.sessions = ["test-core", "test-deepstarr", "test-mpra", "test-promoter", "lint"]

ROOT = Path(__file__).resolve().parent
PACKAGES = ROOT / "packages"
DATASET_DISTS = ("d3-deepstarr", "d3-mpra", "d3-promoter")
# scipy serves d3-core's tests as a reference implementation; neither is a package dependency.
TEST_DEPS = ("pytest", "scipy")
# One ruff for everyone: a new ruff release adds rules, which would fail lint on unchanged code.
RUFF = "ruff==0.17.6"
# No .pyc files at install time: pip would byte-compile every module of torch (about 14 s a
# session here); Python compiles only what a session imports, once.
NO_COMPILE = "--no-compile"
LINT_PATHS = ("packages", "benchmarks", "scripts", "noxfile.py", "conftest.py")


def torch_spec() -> list[str]:
    """Pip arguments that install torch: D3_TORCH_SPEC if set, else the CPU build 2.13.0.

    D3_TORCH_SPEC may carry pip options too, e.g.
    ``D3_TORCH_SPEC="torch==2.5.1 --index-url https://download.pytorch.org/whl/cu121"``.
    """
    return shlex.split(os.environ.get("D3_TORCH_SPEC", "torch==2.13.0"))


def install_packages(session: nox.Session, *dists: str) -> None:
    """Installs torch first (so that no dependency pulls another build), then ``dists`` editable."""
    session.install(NO_COMPILE, *torch_spec())
    session.install(NO_COMPILE, *(arg for dist in dists for arg in ("-e", str(PACKAGES / dist))))


def run_tests(session: nox.Session, *dists: str) -> None:
    """Installs ``dists`` and the test tools, then runs the last dist's tests with the posargs."""
    install_packages(session, *dists)
    session.install(NO_COMPILE, *TEST_DEPS)
    session.run("pytest", str(PACKAGES / dists[-1] / "tests"), *session.posargs)


@nox.session(name="test-core")
def test_core(session: nox.Session) -> None:
    """Tests d3-core."""
    run_tests(session, "d3-core")


@nox.session(name="test-deepstarr")
def test_deepstarr(session: nox.Session) -> None:
    """Tests d3-deepstarr against an editable d3-core."""
    run_tests(session, "d3-core", "d3-deepstarr")


@nox.session(name="test-mpra")
def test_mpra(session: nox.Session) -> None:
    """Tests d3-mpra against an editable d3-core."""
    run_tests(session, "d3-core", "d3-mpra")


@nox.session(name="test-promoter")
def test_promoter(session: nox.Session) -> None:
    """Tests d3-promoter against an editable d3-core."""
    run_tests(session, "d3-core", "d3-promoter")


@nox.session
def slow(session: nox.Session) -> None:
    """Runs only the tests marked ``slow`` (long learning checks), package by package.

    ``nox -s slow -- d3-mpra`` limits it to the named packages.
    """
    dists = [arg for arg in session.posargs if arg in ("d3-core", *DATASET_DISTS)]
    rest = [arg for arg in session.posargs if arg not in dists]
    install_packages(session, "d3-core", *DATASET_DISTS)
    session.install(NO_COMPILE, *TEST_DEPS)
    for dist in dists or ("d3-core", *DATASET_DISTS):
        # Exit status 5: no slow test in that package.
        session.run("pytest", str(PACKAGES / dist / "tests"), "-m", "slow", *rest,
                    success_codes=[0, 5])  # fmt: skip


@nox.session
def lint(session: nox.Session) -> None:
    """Checks lint rules and formatting with ruff (configured in the root pyproject.toml)."""
    session.install(NO_COMPILE, RUFF)
    session.run("ruff", "check", *LINT_PATHS)
    session.run("ruff", "format", "--check", *LINT_PATHS)


def _find_wheel(session: nox.Session, dist_dir: Path, module: str) -> Path:
    """The one wheel of ``module`` in ``dist_dir``; fails the session otherwise."""
    wheels = sorted(dist_dir.glob(f"{module}-*.whl"))
    if len(wheels) != 1:
        session.error(f"expected one {module} wheel in {dist_dir}, found {wheels}")
    return wheels[0]


def _check_wheel_in_clean_venv(session: nox.Session, wheels: list[Path], module: str) -> None:
    """Installs torch and only ``wheels`` into a new venv, then imports ``module``, runs d3."""
    venv = Path(session.create_tmp()).resolve() / f"venv-{module}"
    session.run("python", "-m", "venv", "--clear", str(venv))
    bin_dir = venv / ("Scripts" if sys.platform == "win32" else "bin")
    python = str(bin_dir / "python")
    session.run(python, "-m", "pip", "install", "--quiet", *torch_spec(), external=True)
    session.run(python, "-m", "pip", "install", *map(str, wheels), external=True)
    session.run(python, "-c", f"import {module}; print({module}.__version__)", external=True)
    session.run(str(bin_dir / "d3"), "datasets", external=True)


@nox.session
def build(session: nox.Session) -> None:
    """Builds every package's sdist and wheel with hatch; checks each wheel in a clean venv."""
    session.install("hatch")
    dist_dir = Path(session.create_tmp()).resolve() / "dist"
    shutil.rmtree(dist_dir, ignore_errors=True)
    for dist in ("d3-core", *DATASET_DISTS):
        with session.chdir(PACKAGES / dist):
            session.run("hatch", "build", str(dist_dir))
    core_wheel = _find_wheel(session, dist_dir, "d3_core")
    _check_wheel_in_clean_venv(session, [core_wheel], "d3_core")
    for dist in DATASET_DISTS:
        module = dist.replace("-", "_")
        wheel = _find_wheel(session, dist_dir, module)
        # A dataset wheel needs d3-core: the freshly built one, never an index's.
        _check_wheel_in_clean_venv(session, [core_wheel, wheel], module)
    session.log(f"sdists and wheels are in {dist_dir}")


@nox.session
def bench(session: nox.Session) -> None:
    """Runs ``d3 bench`` with the arguments after ``--``; its results go under benchmarks/."""
    install_packages(session, "d3-core")
    session.run("d3", "bench", *session.posargs)


@nox.session(name="bench-vs-d3dna")
def bench_vs_d3dna(session: nox.Session) -> None:
    """d3 beside d3-dna 0.1.3 in one process; args after ``--`` go to benchmarks/vs_d3dna.py."""
    install_packages(session, "d3-core")
    session.install("d3-dna==0.1.3")
    session.run("python", str(ROOT / "benchmarks" / "vs_d3dna.py"), *session.posargs)


@nox.session(name="gpu-check")
def gpu_check(session: nox.Session) -> None:
    """Paper-size Promoter checks on CUDA (``-- --dry-run``: the same code on the CPU, toy sizes).

    Set D3_TORCH_SPEC to a CUDA build of torch, e.g.
    ``D3_TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"``.
    """
    install_packages(session, "d3-core", "d3-promoter")
    session.run("python", "-m", "d3_core.gpu_check", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """Installs d3-core and d3-deepstarr and runs ``d3 demo --dataset deepstarr [posargs]``."""
    install_packages(session, "d3-core", "d3-deepstarr")
    session.run("d3", "demo", "--dataset", "deepstarr", *session.posargs)


@nox.session(name="demo-mpra")
def demo_mpra(session: nox.Session) -> None:
    """Installs d3-core and d3-mpra and runs ``d3 demo --dataset mpra [posargs]``."""
    install_packages(session, "d3-core", "d3-mpra")
    session.run("d3", "demo", "--dataset", "mpra", *session.posargs)


@nox.session(name="demo-promoter")
def demo_promoter(session: nox.Session) -> None:
    """Installs d3-core and d3-promoter and runs ``d3 demo --dataset promoter [posargs]``."""
    install_packages(session, "d3-core", "d3-promoter")
    session.run("d3", "demo", "--dataset", "promoter", *session.posargs)
