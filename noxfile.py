"""Nox sessions: one test suite per package, lint, wheel builds, releases, benchmarks, demos."""

from __future__ import annotations

import dataclasses
import datetime
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import nox
from packaging.requirements import Requirement
from packaging.version import InvalidVersion, Version

nox.needs_version = ">=2024.3.2"
# Plain venv + pip: pip reads this machine's pip configuration (local torch wheel, caps); uv
# does not, and an unpinned torch resolves to a multi-GB CUDA build.
nox.options.default_venv_backend = "venv"
nox.options.sessions = [
    "test-core",
    "test-deepstarr",
    "test-mpra",
    "test-promoter",
    "test-lentimpra",
    "test-release",
    "lint",
]

ROOT = Path(__file__).resolve().parent
PACKAGES = ROOT / "packages"
# Each dataset package and the dataset name its plugin registers.
DATASETS = {
    "d3-deepstarr": "deepstarr",
    "d3-mpra": "mpra",
    "d3-promoter": "promoter",
    "d3-lentimpra": "lentimpra",
}
DATASET_DISTS = tuple(DATASETS)
# scipy serves d3-core's tests as a reference implementation; neither is a package dependency.
TEST_DEPS = ("pytest", "scipy")
# One ruff for everyone: a new ruff release adds rules, which would fail lint on unchanged code.
RUFF = "ruff==0.17.6"
# No .pyc files at install time: pip would byte-compile every module of torch (about 14 s a
# session here); Python compiles only what a session imports, once.
NO_COMPILE = "--no-compile"
LINT_PATHS = ("packages", "benchmarks", "scripts", "tests", "noxfile.py", "conftest.py")


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


@nox.session(name="test-lentimpra")
def test_lentimpra(session: nox.Session) -> None:
    """Tests d3-lentimpra against an editable d3-core."""
    run_tests(session, "d3-core", "d3-lentimpra")


@nox.session(name="test-release")
def test_release(session: nox.Session) -> None:
    """Tests the release and lowest-core checks of this noxfile (tests/test_release.py)."""
    session.install(NO_COMPILE, "nox", "pytest")
    session.run("pytest", str(ROOT / "tests"), *session.posargs)


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


def _module(dist: str) -> str:
    """The import name of ``dist``: d3-mpra -> d3_mpra."""
    return dist.replace("-", "_")


def _hatch_build(session: nox.Session, dist: str, out_dir: Path) -> None:
    """Builds ``dist``'s sdist and wheel with hatch into ``out_dir`` (hatch must be installed)."""
    with session.chdir(PACKAGES / dist):
        session.run("hatch", "build", str(out_dir))


def _find_wheel(session: nox.Session, dist_dir: Path, module: str) -> Path:
    """The one wheel of ``module`` in ``dist_dir``; fails the session otherwise."""
    wheels = sorted(dist_dir.glob(f"{module}-*.whl"))
    if len(wheels) != 1:
        session.error(f"expected one {module} wheel in {dist_dir}, found {wheels}")
    return wheels[0]


def _check_wheel_in_clean_venv(
    session: nox.Session, wheels: list[Path], module: str, *, version: str | None = None,
    dataset: str | None = None,
) -> Path:  # fmt: skip
    """Installs torch and only ``wheels`` into a new venv, then imports ``module``, runs d3.

    With ``version``, the installed ``module.__version__`` must equal it; with ``dataset``,
    ``d3 datasets`` must list it. Runs outside the source tree. Returns the venv's bin dir.
    """
    tmp = Path(session.create_tmp()).resolve()
    venv = tmp / f"venv-{module}"
    session.run("python", "-m", "venv", "--clear", str(venv))
    bin_dir = venv / ("Scripts" if sys.platform == "win32" else "bin")
    python = str(bin_dir / "python")
    session.run(python, "-m", "pip", "install", "--quiet", *torch_spec(), external=True)
    session.run(python, "-m", "pip", "install", *map(str, wheels), external=True)
    with session.chdir(tmp):
        printed = session.run(python, "-c", f"import {module}; print({module}.__version__)",
                              external=True, silent=True)  # fmt: skip
        installed = printed.strip().splitlines()[-1] if printed.strip() else ""
        session.log(f"installed {module}.__version__ = {installed}")
        if version is not None and installed != version:
            session.error(f"the installed {module} says __version__ {installed!r}, the "
                          f"source says {version!r}: rebuild from a clean dist folder")  # fmt: skip
        listing = session.run(str(bin_dir / "d3"), "datasets", external=True, silent=True)
        session.log("d3 datasets:\n" + listing.rstrip())
    if dataset is not None and dataset not in listing.split():
        session.error(f"d3 datasets does not list {dataset!r} from the installed wheels: check "
                      f"the d3.datasets entry point in packages/*/pyproject.toml")  # fmt: skip
    return bin_dir


@nox.session
def build(session: nox.Session) -> None:
    """Builds every package's sdist and wheel with hatch; checks each wheel in a clean venv."""
    session.install("hatch")
    dist_dir = Path(session.create_tmp()).resolve() / "dist"
    shutil.rmtree(dist_dir, ignore_errors=True)
    for dist in ("d3-core", *DATASET_DISTS):
        _hatch_build(session, dist, dist_dir)
    core_wheel = _find_wheel(session, dist_dir, "d3_core")
    _check_wheel_in_clean_venv(session, [core_wheel], "d3_core")
    for dist in DATASET_DISTS:
        module = _module(dist)
        wheel = _find_wheel(session, dist_dir, module)
        # A dataset wheel needs d3-core: the freshly built one, never an index's.
        _check_wheel_in_clean_venv(session, [core_wheel, wheel], module, dataset=DATASETS[dist])
    session.log(f"sdists and wheels are in {dist_dir}")


def _source_version(session: nox.Session, dist: str) -> str:
    """``dist``'s version as hatch reads it: ``__version__`` in [tool.hatch.version] path."""
    project = PACKAGES / dist
    path = (
        project
        / nox.project.load_toml(project / "pyproject.toml")["tool"]["hatch"]["version"]["path"]
    )
    # hatchling's default pattern for a version file.
    found = re.search(r"(?im)^(__version__|VERSION) *= *(['\"])v?(?P<version>.+?)\2",
                      path.read_text(encoding="utf-8"))  # fmt: skip
    if found is None:
        session.error(f'no __version__ = "X.Y.Z" line in {path}: add one')
    return found["version"]


RELEASES = "releases.toml"
"""The ledger of releases, at the repository root: one ``[[release]]`` table (dist, version,
commit, date) per released version. Tags ``<dist>-v<version>`` name the same commits where a
clone has them, but a clone of the branch alone has no tags: the ledger travels with the code."""


@dataclasses.dataclass(frozen=True)
class Release:
    """One released version of a package and the git revision it was built from."""

    version: Version
    rev: str
    """A commit id (from the ledger) or a tag name: what ``git archive`` takes."""
    source: str
    """Where it is recorded, for messages: ``releases.toml: commit 1a2b3c4`` or ``tag <name>``."""


def _ledger() -> list[dict[str, str]]:
    """The ``[[release]]`` tables of releases.toml (none when the file is absent)."""
    path = ROOT / RELEASES
    if not path.is_file():
        return []
    return nox.project.load_toml(path).get("release", [])


def _releases(dist: str) -> dict[Version, Release]:
    """The released versions of ``dist``: the ledger's entries, then tags for any it lacks."""
    found: dict[Version, Release] = {}
    for entry in _ledger():
        if entry.get("dist") == dist:
            version = Version(entry["version"])
            found[version] = Release(version, entry["commit"],
                                     f"{RELEASES}: commit {entry['commit'][:10]}")  # fmt: skip
    names = subprocess.run(["git", "tag", "--list", f"{dist}-v*"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.split()  # fmt: skip
    for name in names:
        try:
            version = Version(name.removeprefix(f"{dist}-v"))
        except InvalidVersion:
            continue  # e.g. d3-core-vnext: not a release tag
        found.setdefault(version, Release(version, name, f"tag {name}"))
    return found


def _check_version_bumped(session: nox.Session, dist: str, version: str) -> None:
    """``version`` must be above ``dist``'s newest release; none yet is a first release."""
    init = f"packages/{dist}/src/{_module(dist)}/__init__.py"
    releases = _releases(dist)
    if not releases:
        session.log(f"{dist} has no release in {RELEASES} (nor a {dist}-v* tag) yet: {version} "
                    f"is its first release")  # fmt: skip
        return
    newest = releases[max(releases)]
    if Version(version) in releases:
        session.error(f"{dist} {version} is already released ({releases[Version(version)].source}): "
                      f"bump __version__ in {init} above {newest.version} and add its CHANGELOG "
                      f"entry")  # fmt: skip
    if Version(version) <= newest.version:
        session.error(f"{dist} {version} is not above its newest release {newest.version} "
                      f"({newest.source}): bump __version__ in {init} above {newest.version} and "
                      f"add its CHANGELOG entry")  # fmt: skip
    session.log(f"{dist} {version} is above its newest release {newest.version} ({newest.source})")


def _changelog_sections(text: str) -> list[tuple[str, str]]:
    """The ``## `` headings of a changelog and the text under each, in order."""
    parts = re.split(r"(?m)^## +(.*?)\s*$", text)
    return list(zip(parts[1::2], parts[2::2], strict=True))


def _check_changelog(session: nox.Session, dist: str, version: str) -> None:
    """CHANGELOG.md must hold a released ``## <version>`` entry and nothing under Unreleased."""
    path = f"packages/{dist}/CHANGELOG.md"
    sections = _changelog_sections((ROOT / path).read_text(encoding="utf-8"))
    for heading, body in sections:
        if heading.strip("[]").lower() == "unreleased" and body.strip():
            session.error(f"{path} still has entries under '## Unreleased': move them under "
                          f"'## {version}' (they are part of this build)")  # fmt: skip
    entry = [(h, b) for h, b in sections if re.match(rf"\[?{re.escape(version)}\b(?![.\w])", h)]
    if not entry:
        session.error(f"{path} has no '## {version}' entry: add one with this release's "
                      f"changes (move them from '## Unreleased')")  # fmt: skip
    heading, body = entry[0]
    if "unreleased" in heading.lower():
        session.error(f"{path} still marks '## {heading}' as Unreleased: write "
                      f"'## {version} - <date>' instead")  # fmt: skip
    if not body.strip():
        session.error(f"{path}'s '## {heading}' entry is empty: list this release's changes")
    session.log(f"{path} has the entry '## {heading}'")


def _release_dist(session: nox.Session) -> str:
    """The one package named after ``--``; fails the session otherwise."""
    known = ("d3-core", *DATASET_DISTS)
    if len(session.posargs) != 1 or session.posargs[0] not in known:
        session.error(f"name one package to release, e.g. nox -s release -- d3-mpra; "
                      f"got {list(session.posargs)}, known: {', '.join(known)}")  # fmt: skip
    dist = session.posargs[0]
    if not (PACKAGES / dist / "pyproject.toml").is_file():
        session.error(f"{dist} is not in this tree (no packages/{dist}/pyproject.toml)")
    return dist


@nox.session
def release(session: nox.Session) -> None:
    """Checks one package is ready to release and builds it: ``nox -s release -- d3-mpra``.

    Version above the newest release (releases.toml, or a ``<dist>-v*`` tag), a released
    CHANGELOG entry, sdist and wheel in
    dist/<dist>/ passing ``twine check``, and the wheel alone in a clean venv (with a d3-core
    wheel built from this tree) importing at that version, listed by ``d3 datasets`` and running
    the dataset's demo. d3-core has no dataset of its own: its release runs the DeepSTARR demo
    with a d3-deepstarr wheel built from this tree. When ``packages/<dist>`` is committed, records
    the release and its commit in releases.toml; tags and uploads nothing, and prints the commands
    that do. See RELEASING.md.
    """
    dist = _release_dist(session)
    version = _source_version(session, dist)
    _check_version_bumped(session, dist, version)
    _check_changelog(session, dist, version)
    commit = _built_commit(session, dist)
    session.install("hatch", "twine")
    out = ROOT / "dist" / dist
    shutil.rmtree(out, ignore_errors=True)
    _hatch_build(session, dist, out)
    session.run("twine", "check", "--strict", *map(str, sorted(out.iterdir())))
    helpers = Path(session.create_tmp()).resolve() / "release-helpers"
    shutil.rmtree(helpers, ignore_errors=True)
    # Dataset wheels need d3-core, and d3-core's demo needs a dataset: built here, never an index's.
    helper = "d3-deepstarr" if dist == "d3-core" else "d3-core"
    _hatch_build(session, helper, helpers)
    wheels = [
        _find_wheel(session, out, _module(dist)),
        _find_wheel(session, helpers, _module(helper)),
    ]
    dataset = DATASETS.get(dist, "deepstarr")
    bin_dir = _check_wheel_in_clean_venv(session, wheels, _module(dist), version=version,
                                         dataset=dataset)  # fmt: skip
    demo_dir = Path(session.create_tmp()).resolve() / f"demo-{dataset}"
    with session.chdir(Path(session.create_tmp()).resolve()):
        session.run(str(bin_dir / "d3"), "demo", "--dataset", dataset, "--no-progress",
                    "--out", str(demo_dir), "--force", external=True)  # fmt: skip
    _log_release_steps(session, dist, version, out, commit)


def _built_commit(session: nox.Session, dist: str) -> str | None:
    """The commit ``packages/<dist>`` is built from, or None (with a warning) when it has
    uncommitted changes, so that no release is recorded for files no commit holds."""
    dirty = subprocess.run(["git", "status", "--porcelain", "--", f"packages/{dist}"], cwd=ROOT,
                           check=True, capture_output=True, text=True).stdout  # fmt: skip
    if dirty.strip():
        session.warn(f"packages/{dist} has uncommitted changes: this build is a rehearsal and "
                     f"will not be recorded in {RELEASES}; commit them and run it again")  # fmt: skip
        return None
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout.strip()  # fmt: skip


def _record_release(dist: str, version: str, commit: str, today: datetime.date) -> Path:
    """Appends ``dist`` ``version`` built from ``commit`` to releases.toml; returns its path."""
    path = ROOT / RELEASES
    text = path.read_text(encoding="utf-8") if path.is_file() else (
        "# The released versions of d3's packages and the commit each was built from, written by\n"
        "# `nox -s release -- <dist>` once the release is built and checked (RELEASING.md). Tags\n"
        "# `<dist>-v<version>` name the same commits; this file is the record a clone always has.\n"
    )  # fmt: skip
    entry = (f'\n[[release]]\ndist = "{dist}"\nversion = "{version}"\ncommit = "{commit}"\n'
             f'date = "{today.isoformat()}"\n')  # fmt: skip
    path.write_text(text.rstrip("\n") + "\n" + entry, encoding="utf-8")
    return path


def _log_release_steps(
    session: nox.Session, dist: str, version: str, out: Path, commit: str | None
) -> None:
    """Records the release (when built from a commit), logs the artifacts and what to run next."""
    artifacts = "\n".join(f"  {path}" for path in sorted(out.iterdir()))
    if commit is None:
        session.log(f"{dist} {version} built from uncommitted files (not recorded). "
                    f"Artifacts:\n{artifacts}")  # fmt: skip
        return
    ledger = _record_release(dist, version, commit, datetime.date.today())
    session.log(f"{dist} {version} is ready, built from commit {commit[:10]} and recorded in "
                f"{ledger}. Artifacts:\n{artifacts}\nCommit the record, tag and publish it:\n"
                f"  git add {RELEASES} && git commit -m 'Release {dist} {version}'\n"
                f"  git tag -a {dist}-v{version} -m '{dist} {version}' {commit[:10]}\n"
                f"  git push origin HEAD {dist}-v{version}\n"
                f"  twine upload {out}/*")  # fmt: skip


def _lowest_core(session: nox.Session, dist: str) -> Version:
    """The lower bound of ``dist``'s d3-core requirement (``d3-core>=0.6,<0.7`` -> 0.6)."""
    pyproject = PACKAGES / dist / "pyproject.toml"
    for line in nox.project.load_toml(pyproject)["project"]["dependencies"]:
        requirement = Requirement(line)
        if requirement.name == "d3-core":
            bounds = [Version(s.version) for s in requirement.specifier if s.operator == ">="]
            if len(bounds) == 1:
                return bounds[0]
            session.error(f"{pyproject}: d3-core requirement {line!r} has no single '>=' bound: "
                          f"declare a range such as 'd3-core>=0.6,<0.7'")  # fmt: skip
    session.error(f"{pyproject} does not depend on d3-core: add 'd3-core>=X.Y,<X.Y+1'")


def _core_source_at(session: nox.Session, lowest: Version, tmp: Path) -> Path:
    """packages/d3-core as released at ``lowest`` (0.6 -> d3-core 0.6.0), extracted in ``tmp``."""
    releases = _releases("d3-core")
    if lowest not in releases:
        known = ", ".join(str(v) for v in sorted(releases)) or "none"
        session.error(f"d3-core {lowest} was never released: no entry in {RELEASES} (nor a tag "
                      f"d3-core-v{lowest}) in this clone; released: {known}. Raise the lower bound "
                      f"to a released d3-core, or release this one first (RELEASING.md)")  # fmt: skip
    release = releases[lowest]
    source = tmp / f"d3-core-{release.version}"
    shutil.rmtree(source, ignore_errors=True)
    source.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", release.rev, "packages/d3-core"], cwd=ROOT,
                             capture_output=True)  # fmt: skip
    if archive.returncode != 0:
        session.error(f"d3-core {release.version} ({release.source}) is not in this clone: "
                      f"{archive.stderr.decode().strip()}; fetch the full history "
                      f"(git fetch --unshallow --tags)")  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive.stdout, check=True)
    session.log(f"d3-core>={lowest}: building d3-core {release.version} ({release.source}) from "
                f"{source}")  # fmt: skip
    return source / "packages" / "d3-core"


@nox.session(name="test-lowest-core")
def test_lowest_core(session: nox.Session) -> None:
    """Tests dataset packages against the lowest d3-core their range allows, built from its tag.

    ``nox -s test-lowest-core -- d3-mpra`` for one package (default: every dataset package);
    arguments after the package names go to pytest.
    """
    dists = [arg for arg in session.posargs if arg in DATASET_DISTS]
    rest = [arg for arg in session.posargs if arg not in dists]
    tmp = Path(session.create_tmp()).resolve()
    session.install(NO_COMPILE, *torch_spec())
    session.install(NO_COMPILE, *TEST_DEPS)
    failed = []
    for dist in dists or DATASET_DISTS:
        lowest = _lowest_core(session, dist)
        # Not editable: the installed files are the tag's, as a user's d3-core would be.
        session.install(NO_COMPILE, str(_core_source_at(session, lowest, tmp)))
        session.install(NO_COMPILE, "-e", str(PACKAGES / dist))
        with session.chdir(tmp):
            installed = session.run("python", "-c", "import d3_core; print(d3_core.__version__)",
                                    silent=True).strip().splitlines()[-1]  # fmt: skip
        if Version(installed) != lowest:
            session.error(f"expected d3-core {lowest} installed for {dist}, found {installed}")
        session.log(f"testing {dist} against d3-core {installed}")
        try:
            session.run("pytest", str(PACKAGES / dist / "tests"), *rest)
        except nox.command.CommandFailed:
            failed.append(f"{dist} (d3-core {installed})")
    if failed:
        session.error(f"tests fail against their lowest d3-core: {', '.join(failed)}; raise "
                      f"the lower bound to the d3-core release they need (see RELEASING.md)")  # fmt: skip


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


@nox.session(name="demo-lentimpra")
def demo_lentimpra(session: nox.Session) -> None:
    """Installs d3-core and d3-lentimpra and runs ``d3 demo --dataset lentimpra [posargs]``."""
    install_packages(session, "d3-core", "d3-lentimpra")
    session.run("d3", "demo", "--dataset", "lentimpra", *session.posargs)
