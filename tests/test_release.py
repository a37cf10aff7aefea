"""The release checks of noxfile.py: version bump against the ledger (releases.toml) and tags,
CHANGELOG entry, release records, lowest d3-core."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_noxfile():
    spec = importlib.util.spec_from_file_location("d3_noxfile", ROOT / "noxfile.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


noxfile = _load_noxfile()


class SessionError(Exception):
    """What FakeSession.error raises (nox's own aborts the session)."""


class FakeSession:
    """The part of nox.Session the checks use: posargs, log, warn and error."""

    def __init__(self, *posargs: str) -> None:
        self.posargs = list(posargs)
        self.logs: list[str] = []

    def log(self, message: str) -> None:
        self.logs.append(message)

    warn = log

    def error(self, message: str) -> None:
        raise SessionError(message)


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A git repository with packages/d3-toy (0.2.0) and packages/d3-core, as ROOT."""
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    toy = tmp_path / "packages" / "d3-toy"
    (toy / "src" / "d3_toy").mkdir(parents=True)
    (toy / "pyproject.toml").write_text(
        '[project]\nname = "d3-toy"\ndependencies = ["d3-core>=0.6,<0.7", "h5py>=3.8"]\n'
        '[tool.hatch.version]\npath = "src/d3_toy/__init__.py"\n'
    )
    (toy / "src" / "d3_toy" / "__init__.py").write_text('"""Toy."""\n\n__version__ = "0.2.0"\n')
    (toy / "CHANGELOG.md").write_text("# Changelog\n")
    core = tmp_path / "packages" / "d3-core"
    core.mkdir()
    (core / "README.md").write_text("core\n")
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "start"], check=True)
    monkeypatch.setattr(noxfile, "ROOT", tmp_path)
    monkeypatch.setattr(noxfile, "PACKAGES", tmp_path / "packages")

    def tag(name: str) -> None:
        subprocess.run([*git, "tag", "-a", name, "-m", name], check=True)

    return tmp_path, tag


def _head(root: Path) -> str:
    return subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()  # fmt: skip


def _record(root: Path, dist: str, version: str, commit: str | None = None) -> None:
    """A ledger entry as a person or the release session writes it."""
    with (root / "releases.toml").open("a") as ledger:
        ledger.write(f'[[release]]\ndist = "{dist}"\nversion = "{version}"\n'
                     f'commit = "{commit or _head(root)}"\ndate = "2026-12-05"\n\n')  # fmt: skip


def test_the_version_is_read_from_the_hatch_version_path(repo):
    assert noxfile._source_version(FakeSession(), "d3-toy") == "0.2.0"


def test_a_package_without_releases_passes_as_a_first_release(repo):
    _record(repo[0], "d3-other", "0.5.0")
    session = FakeSession()
    noxfile._check_version_bumped(session, "d3-toy", "0.2.0")
    assert "0.2.0 is its first release" in session.logs[-1]


def test_a_version_above_the_newest_recorded_release_passes(repo):
    root, _ = repo
    _record(root, "d3-toy", "0.1.0")
    _record(root, "d3-toy", "0.1.10")
    session = FakeSession()
    noxfile._check_version_bumped(session, "d3-toy", "0.2.0")
    assert (
        f"above its newest release 0.1.10 (releases.toml: commit {_head(root)[:10]})"
        in (session.logs[-1])
    )


def test_a_recorded_version_is_refused_even_without_its_tag(repo):
    root, _ = repo
    _record(root, "d3-toy", "0.2.0")
    with pytest.raises(SessionError, match=r"d3-toy 0\.2\.0 is already released \(releases\.toml: "
                       r"commit [0-9a-f]{10}\): bump __version__"):  # fmt: skip
        noxfile._check_version_bumped(FakeSession(), "d3-toy", "0.2.0")


def test_a_version_above_the_newest_tag_passes(repo):
    _, tag = repo
    tag("d3-toy-v0.1.0")
    tag("d3-toy-v0.1.10")
    tag("d3-toy-vnext")
    session = FakeSession()
    noxfile._check_version_bumped(session, "d3-toy", "0.2.0")
    assert "above its newest release 0.1.10 (tag d3-toy-v0.1.10)" in session.logs[-1]


def test_a_tagged_version_is_refused_naming_the_file_to_bump(repo):
    _, tag = repo
    tag("d3-toy-v0.2.0")
    with pytest.raises(SessionError, match=r"d3-toy 0\.2\.0 is already released \(tag "
                       r"d3-toy-v0\.2\.0\): bump __version__ in packages/d3-toy/src/d3_toy/"
                       r"__init__\.py above 0\.2\.0"):  # fmt: skip
        noxfile._check_version_bumped(FakeSession(), "d3-toy", "0.2.0")


def test_a_version_below_the_newest_tag_is_refused(repo):
    _, tag = repo
    tag("d3-toy-v0.10.0")
    with pytest.raises(SessionError, match=r"0\.2\.0 is not above its newest release 0\.10\.0 "
                       r"\(tag d3-toy-v0\.10\.0\)"):  # fmt: skip
        noxfile._check_version_bumped(FakeSession(), "d3-toy", "0.2.0")


def _changelog(repo, text: str) -> None:
    (repo[0] / "packages" / "d3-toy" / "CHANGELOG.md").write_text("# Changelog\n\n" + text)


@pytest.mark.parametrize(
    "heading", ["## 0.2.0 - 2026-12-04", "## [0.2.0] - 2026-12-04", "## 0.2.0"]
)
def test_a_released_changelog_entry_passes(repo, heading):
    _changelog(repo, f"## Unreleased\n\n{heading}\n\n- Fixed a thing.\n\n## 0.1.0\n\n- First.\n")
    session = FakeSession()
    noxfile._check_changelog(session, "d3-toy", "0.2.0")
    assert session.logs[-1].endswith(f"has the entry '{heading}'")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("## 0.1.0\n\n- First.\n", r"has no '## 0\.2\.0' entry: add one"),
        ("## 0.2.0.1\n\n- Not this one.\n", r"has no '## 0\.2\.0' entry"),
        (
            "## 0.2.0 - Unreleased\n\n- A thing.\n",
            r"still marks '## 0\.2\.0 - Unreleased' as "
            r"Unreleased: write '## 0\.2\.0 - <date>'",
        ),
        ("## 0.2.0\n\n## 0.1.0\n\n- First.\n", r"'## 0\.2\.0' entry is empty"),
        (
            "## Unreleased\n\n- Pending.\n\n## 0.2.0\n\n- A thing.\n",
            r"still has entries under '## Unreleased': move them under '## 0\.2\.0'",
        ),
    ],
)
def test_a_changelog_not_ready_for_the_version_is_refused(repo, text, message):
    _changelog(repo, text)
    with pytest.raises(SessionError, match=message):
        noxfile._check_changelog(FakeSession(), "d3-toy", "0.2.0")


@pytest.mark.parametrize("posargs", [(), ("d3-nope",), ("d3-core", "d3-mpra")])
def test_release_needs_one_known_package(posargs):
    with pytest.raises(SessionError, match=r"name one package to release, e\.g\. nox -s "
                       r"release -- d3-mpra; got .*known: d3-core, d3-deepstarr"):  # fmt: skip
        noxfile._release_dist(FakeSession(*posargs))


def test_release_of_a_package_missing_from_the_tree_is_refused(repo):
    with pytest.raises(SessionError, match=r"d3-mpra is not in this tree"):
        noxfile._release_dist(FakeSession("d3-mpra"))


def test_the_lowest_core_is_the_lower_bound_of_the_range(repo):
    assert str(noxfile._lowest_core(FakeSession(), "d3-toy")) == "0.6"


def test_a_range_without_a_lower_bound_is_refused(repo):
    pyproject = repo[0] / "packages" / "d3-toy" / "pyproject.toml"
    pyproject.write_text('[project]\nname = "d3-toy"\ndependencies = ["d3-core<0.7"]\n')
    with pytest.raises(SessionError, match=r"has no single '>=' bound"):
        noxfile._lowest_core(FakeSession(), "d3-toy")


def test_the_lowest_core_is_extracted_from_its_tag(repo, tmp_path_factory):
    _, tag = repo
    tag("d3-core-v0.6.0")
    out = tmp_path_factory.mktemp("lowest")
    source = noxfile._core_source_at(FakeSession(), noxfile.Version("0.6"), out)
    assert source == out / "d3-core-0.6.0" / "packages" / "d3-core"
    assert (source / "README.md").read_text() == "core\n"


def test_the_lowest_core_is_extracted_from_its_recorded_commit_not_the_tree(repo, tmp_path_factory):
    root, _ = repo
    _record(root, "d3-core", "0.6.0")
    (root / "packages" / "d3-core" / "README.md").write_text("changed after the release\n")
    out = tmp_path_factory.mktemp("lowest")
    source = noxfile._core_source_at(FakeSession(), noxfile.Version("0.6"), out)
    assert (source / "README.md").read_text() == "core\n"


def test_a_never_released_core_is_refused_naming_what_was(repo, tmp_path_factory):
    _record(repo[0], "d3-core", "0.5.0")
    with pytest.raises(SessionError, match=r"d3-core 0\.6 was never released: no entry in "
                       r"releases\.toml \(nor a tag d3-core-v0\.6\) in this clone; released: "
                       r"0\.5\.0\. Raise the lower bound"):  # fmt: skip
        noxfile._core_source_at(FakeSession(), noxfile.Version("0.6"), tmp_path_factory.mktemp("x"))


def test_a_recorded_commit_missing_from_the_clone_is_refused_naming_the_fetch(
    repo, tmp_path_factory
):
    _record(repo[0], "d3-core", "0.6.0", commit="0" * 40)
    with pytest.raises(SessionError, match=r"d3-core 0\.6\.0 \(releases\.toml: commit 0{10}\) is "
                       r"not in this clone: .*git fetch --unshallow"):  # fmt: skip
        noxfile._core_source_at(FakeSession(), noxfile.Version("0.6"), tmp_path_factory.mktemp("x"))


def test_a_committed_release_is_recorded_with_its_commit(repo, tmp_path):
    root, _ = repo
    commit = noxfile._built_commit(FakeSession(), "d3-toy")
    assert commit == _head(root)
    out = tmp_path / "out"
    out.mkdir()
    (out / "d3_toy-0.2.0-py3-none-any.whl").write_bytes(b"")
    session = FakeSession()
    noxfile._log_release_steps(session, "d3-toy", "0.2.0", out, commit)
    assert f"git tag -a d3-toy-v0.2.0 -m 'd3-toy 0.2.0' {commit[:10]}" in session.logs[-1]
    releases = noxfile._releases("d3-toy")
    assert (
        list(releases) == [noxfile.Version("0.2.0")]
        and releases[noxfile.Version("0.2.0")].rev == commit
    )
    with pytest.raises(SessionError, match=r"already released \(releases\.toml"):
        noxfile._check_version_bumped(FakeSession(), "d3-toy", "0.2.0")


def test_a_build_of_uncommitted_files_is_not_recorded(repo, tmp_path):
    root, _ = repo
    (root / "packages" / "d3-toy" / "CHANGELOG.md").write_text("# Changelog\n\n## 0.2.0\n")
    session = FakeSession()
    assert noxfile._built_commit(session, "d3-toy") is None
    assert "uncommitted changes" in session.logs[-1]
    out = tmp_path / "out"
    out.mkdir()
    noxfile._log_release_steps(session, "d3-toy", "0.2.0", out, None)
    assert not (root / "releases.toml").exists()


def test_the_repository_ledger_records_commits_that_set_each_version():
    """Every entry of this repository's releases.toml names a commit of this clone whose
    packages/<dist> says that version, and the dataset packages' lowest d3-core is released."""
    root = noxfile.ROOT
    entries = noxfile._ledger()
    assert entries, "releases.toml records no release"
    for entry in entries:
        init = f"packages/{entry['dist']}/src/{noxfile._module(entry['dist'])}/__init__.py"
        shown = subprocess.run(["git", "-C", str(root), "show", f"{entry['commit']}:{init}"],
                               capture_output=True, text=True)  # fmt: skip
        if shown.returncode != 0 and (root / ".git" / "shallow").exists():
            pytest.skip("a shallow clone may lack the recorded commits")
        assert shown.returncode == 0, (entry, shown.stderr)
        assert f'__version__ = "{entry["version"]}"' in shown.stdout, entry
    released_cores = {e["version"] for e in entries if e["dist"] == "d3-core"}
    for dist in noxfile.DATASET_DISTS:
        lowest = noxfile._lowest_core(FakeSession(), dist)
        assert any(noxfile.Version(v) == lowest for v in released_cores), (dist, lowest)
