"""Tests for tools/bump_version.py on a minimal copy of the monorepo in tmp_path."""

from __future__ import annotations

import datetime as dt
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "tools" / "bump_version.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bump_version", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


bumper = _load()
DATE = dt.date(2026, 5, 17)

ROOT_PYPROJECT = """\
[project]
name = "rlstructures"
version = "0.1.0"
dependencies = [
    "rlstructures-dicttensor[torch,arrow]>=0.1,<0.2",
    "rlstructures-agents>=0.1,<0.2",
]

[tool.uv.sources]
rlstructures-dicttensor = { workspace = true }
"""
DICTTENSOR = """\
[project]
name = "rlstructures-dicttensor"
version = "0.1.3"
dependencies = ["numpy>=1.26"]

[tool.something]
version = "9.9.9"
"""
AGENTS = """\
[project]
name = "rlstructures-agents"
version = "1.4.2"
dependencies = ["numpy>=1.26", "rlstructures-dicttensor>=0.1,<0.2"]

[project.optional-dependencies]
torch = ["torch>=2.2", "rlstructures-dicttensor[torch] >=0.1, <0.2"]
other = ["rlstructures-dicttensorx>=0.1,<0.2"]
"""
BATCHERS = """\
[project]
name = "rlstructures-batchers"
version = "0.1.0"
dependencies = ["rlstructures-dicttensor>=0.1", "rlstructures-agents~=1.4"]
"""
CHANGELOG = """\
# Changelog

## Unreleased

### Added
- Something new.

## [0.1.0] - 2026-01-01
- First release.
"""


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text(ROOT_PYPROJECT)
    (tmp_path / "CHANGELOG.md").write_text(CHANGELOG)
    for pkg, text in (("dicttensor", DICTTENSOR), ("agents", AGENTS), ("batchers", BATCHERS)):
        (tmp_path / "packages" / pkg).mkdir(parents=True)
        (tmp_path / "packages" / pkg / "pyproject.toml").write_text(text)
        (tmp_path / "packages" / pkg / "CHANGELOG.md").write_text(CHANGELOG)
    return tmp_path


def _read(root: Path, pkg: str, name: str = "pyproject.toml") -> str:
    return (root / "packages" / pkg / name).read_text()


def test_patch_bump(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tag = bumper.bump(tree, "dicttensor", "patch", DATE)
    assert tag == "dicttensor-v0.1.4"
    text = _read(tree, "dicttensor")
    assert 'version = "0.1.4"' in text
    assert 'version = "9.9.9"' in text  # only [project] is touched
    log = _read(tree, "dicttensor", "CHANGELOG.md")
    assert "## Unreleased\n\n## [0.1.4] - 2026-05-17\n\n### Added\n- Something new." in log
    assert log.count("## Unreleased") == 1
    out = capsys.readouterr().out
    assert "tag: dicttensor-v0.1.4" in out
    assert "does not admit" not in out  # 0.1.4 still fits every >=0.1,<0.2


def test_minor_bump_lists_dependents_without_touching_them(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = {p: _read(tree, p) for p in ("agents", "batchers")}
    bumper.bump(tree, "dicttensor", "minor", DATE)
    assert 'version = "0.2.0"' in _read(tree, "dicttensor")
    out = capsys.readouterr().out
    stale = [line for line in out.splitlines() if "does not admit 0.2.0" in line]
    assert [line.split(": ")[0] for line in stale] == [
        "pyproject.toml:5", "packages/agents/pyproject.toml:4", "packages/agents/pyproject.toml:7",
    ]
    assert 'rerun with --fix-ranges to write ">=0.2,<0.3"' in stale[0]
    assert "batchers" not in out  # ">=0.1" has no upper bound
    assert "dicttensorx" not in out  # another distribution, not a dependent
    assert {p: _read(tree, p) for p in ("agents", "batchers")} == before


def test_fix_ranges_rewrites_stale_ranges(tree: Path) -> None:
    bumper.bump(tree, "dicttensor", "minor", DATE, fix_ranges=True)
    agents = _read(tree, "agents")
    assert '"rlstructures-dicttensor>=0.2,<0.3"' in agents
    assert '"rlstructures-dicttensor[torch] >=0.2,<0.3"' in agents
    assert '"rlstructures-dicttensorx>=0.1,<0.2"' in agents
    root = (tree / "pyproject.toml").read_text()
    assert '"rlstructures-dicttensor[torch,arrow]>=0.2,<0.3"' in root
    assert "rlstructures-dicttensor = { workspace = true }" in root
    assert '"rlstructures-dicttensor>=0.1"' in _read(tree, "batchers")


def test_major_bump_above_one(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert bumper.bump(tree, "agents", "major", DATE, fix_ranges=True) == "agents-v2.0.0"
    out = capsys.readouterr().out
    assert 'packages/batchers/pyproject.toml:4: "rlstructures-agents~=1.4" does not admit' in out
    assert '"rlstructures-agents>=2.0,<3"' in _read(tree, "batchers")
    assert '"rlstructures-agents>=2.0,<3"' in (tree / "pyproject.toml").read_text()


def test_meta_bump(tree: Path) -> None:
    assert bumper.bump(tree, "meta", "minor", DATE) == "rlstructures-v0.2.0"
    assert 'version = "0.2.0"' in (tree / "pyproject.toml").read_text()
    assert "## [0.2.0] - 2026-05-17" in (tree / "CHANGELOG.md").read_text()


@pytest.mark.parametrize(("spec", "expected"), [
    (">=0.1,<0.2", False), (">=0.2", True), ("", True), ("~=0.2", True), ("~=0.1.0", False),
    ("==0.2.0", True), ("!=0.2.0", False), (">0.2", False), ("<=0.2", True), ("==0.2.*", None),
])
def test_admits(spec: str, expected: bool | None) -> None:
    assert bumper.admits(spec, (0, 2, 0)) is expected


def test_compatible_range() -> None:
    assert bumper.compatible_range((0, 3, 1)) == ">=0.3,<0.4"
    assert bumper.compatible_range((2, 1, 0)) == ">=2.1,<3"


def test_unknown_package(tree: Path) -> None:
    with pytest.raises(bumper.BumpError, match="unknown package 'dicttensr'; expected one of"):
        bumper.bump(tree, "dicttensr", "patch", DATE)


def test_malformed_version_writes_nothing(tree: Path) -> None:
    path = tree / "packages" / "dicttensor" / "pyproject.toml"
    path.write_text(DICTTENSOR.replace('"0.1.3"', '"0.1"'))
    with pytest.raises(bumper.BumpError, match=r"version '0.1' is not of the form X.Y.Z"):
        bumper.bump(tree, "dicttensor", "patch", DATE)
    assert _read(tree, "dicttensor", "CHANGELOG.md") == CHANGELOG


def test_missing_unreleased_heading_writes_nothing(tree: Path) -> None:
    (tree / "packages" / "agents" / "CHANGELOG.md").write_text("# Changelog\n")
    with pytest.raises(bumper.BumpError, match="no `## Unreleased` heading"):
        bumper.bump(tree, "agents", "patch", DATE)
    assert 'version = "1.4.2"' in _read(tree, "agents")


def test_cli(tree: Path) -> None:
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "agents", "minor", "--root", str(tree),
         "--date", "2026-02-03"],
        capture_output=True, text=True, check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "tag: agents-v1.5.0" in run.stdout
    assert "## [1.5.0] - 2026-02-03" in _read(tree, "agents", "CHANGELOG.md")
    bad = subprocess.run([sys.executable, str(SCRIPT), "nope", "patch", "--root", str(tree)],
                         capture_output=True, text=True, check=False)
    assert bad.returncode == 2
    assert "error: unknown package 'nope'" in bad.stderr


def test_cli_rejects_bad_date(tree: Path) -> None:
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "agents", "patch", "--root", str(tree),
         "--date", "2026-13-01"],
        capture_output=True, text=True, check=False,
    )
    assert run.returncode == 2
    assert "expected a date as YYYY-MM-DD, got '2026-13-01'" in run.stderr
    assert 'version = "1.4.2"' in _read(tree, "agents")
