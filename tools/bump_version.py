"""Bump the version of one rlstructures package (SemVer, one version per package).

Usage: ``python tools/bump_version.py <package> {major,minor,patch} [--root DIR]
[--date YYYY-MM-DD] [--fix-ranges]``, where package is dicttensor, agents, batchers, logging,
algos or ``meta`` (the root pyproject, distribution ``rlstructures``).

It rewrites ``version = "x.y.z"`` in the package's pyproject (the only copy of the version),
turns ``## Unreleased`` in its CHANGELOG.md into ``## Unreleased`` + ``## [x.y.z] - date``,
prints the tag to create (``<package>-vX.Y.Z``; ``rlstructures-vX.Y.Z`` for meta) and lists
every ``rlstructures-<package>`` requirement in the other pyprojects whose range no longer
admits the new version. ``--fix-ranges`` rewrites those to ``>=X.Y,<next-breaking`` (``<0.Y+1``
while the major version is 0, ``<X+1`` after). Nothing is written when any check fails.
"""

from __future__ import annotations

import argparse
import datetime as dt
import operator
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

PACKAGES: Final = ("dicttensor", "agents", "batchers", "logging", "algos")
PARTS: Final = ("major", "minor", "patch")
Version = tuple[int, int, int]

_VERSION_LINE: Final = re.compile(r'^(version\s*=\s*")([^"]*)(")', re.MULTILINE)
_UNRELEASED: Final = re.compile(r"^## \[?Unreleased\]?[ \t]*$", re.MULTILINE | re.IGNORECASE)
_CLAUSE: Final = re.compile(r"(>=|<=|==|!=|~=|>|<)\s*(\d+(?:\.\d+)*)")
_OPS: Final[dict[str, Callable[[Version, Version], bool]]] = {
    ">=": operator.ge, "<=": operator.le, "==": operator.eq,
    "!=": operator.ne, ">": operator.gt, "<": operator.lt,
}


class BumpError(Exception):
    """A bump that cannot be done; the message says why and what to do."""


@dataclass(frozen=True)
class Dependent:
    """One ``rlstructures-<package>`` requirement string found in a pyproject."""

    path: Path
    line: int
    start: int  # offsets of the specifier inside the pyproject text
    end: int
    requirement: str
    specifier: str


def parse_version(text: str, where: str) -> Version:
    """Parse ``X.Y.Z``; raise BumpError for anything else (pre-releases included)."""
    match = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", text)
    if match is None:
        raise BumpError(f"{where}: version {text!r} is not of the form X.Y.Z (e.g. \"0.3.1\"). "
                        "Fix it by hand first; this tool only bumps plain SemVer versions.")
    return int(match[1]), int(match[2]), int(match[3])


def bumped(version: Version, part: str) -> Version:
    """Return ``version`` with ``part`` (major, minor or patch) incremented."""
    major, minor, patch = version
    if part == "major":
        return major + 1, 0, 0
    if part == "minor":
        return major, minor + 1, 0
    if part == "patch":
        return major, minor, patch + 1
    raise BumpError(f"part {part!r} is not one of {', '.join(PARTS)}.")


def fmt(version: Version) -> str:
    """Format a version as ``X.Y.Z``."""
    return ".".join(map(str, version))


def compatible_range(version: Version) -> str:
    """The range a dependent should use: ``>=X.Y`` up to the next breaking release."""
    major, minor, _ = version
    upper = f"0.{minor + 1}" if major == 0 else f"{major + 1}"
    return f">={major}.{minor},<{upper}"


def admits(specifier: str, version: Version) -> bool | None:
    """Whether a PEP 440 specifier like ``>=0.1,<0.2`` admits ``version`` (None: unreadable)."""
    for clause in filter(None, (c.strip() for c in specifier.split(","))):
        match = _CLAUSE.fullmatch(clause)
        if match is None:
            return None
        op, parts = match[1], [int(p) for p in match[2].split(".")]
        padded = [*parts, 0, 0]
        bound: Version = (padded[0], padded[1], padded[2])
        if op == "~=":  # ~=X.Y: >=X.Y and same X; ~=X.Y.Z: >=X.Y.Z and same X.Y
            prefix = tuple(parts[:-1])
            if len(parts) < 2 or version < bound or version[:len(prefix)] != prefix:
                return False
        elif not _OPS[op](version, bound):
            return False
    return True


def find_dependents(pyproject: Path, dist: str) -> list[Dependent]:
    """Every quoted requirement on ``dist`` in a pyproject (dependencies and extras)."""
    text = pyproject.read_text(encoding="utf-8")
    pattern = re.compile(rf'"({re.escape(dist)}(?![\w.-])(?:\[[^\]]*\])?)\s*([^";]*)')
    return [
        Dependent(pyproject, text.count("\n", 0, m.start()) + 1, m.start(2), m.end(2),
                  m[0].lstrip('"'), m[2].strip())
        for m in pattern.finditer(text)
    ]


def _paths(root: Path, package: str) -> tuple[Path, Path]:
    if package == "meta":
        return root / "pyproject.toml", root / "CHANGELOG.md"
    if package not in PACKAGES:
        raise BumpError(f"unknown package {package!r}; expected one of "
                        f"{', '.join(PACKAGES)} or meta (the root pyproject).")
    return root / "packages" / package / "pyproject.toml", root / "packages" / package / \
        "CHANGELOG.md"


def bump(root: Path, package: str, part: str, date: dt.date, fix_ranges: bool = False) -> str:
    """Do the bump, print what changed, and return the tag to create."""
    pyproject, changelog = _paths(root, package)
    for needed in (pyproject, changelog):
        if not needed.is_file():
            raise BumpError(f"{needed} does not exist. Every released package keeps a "
                            "pyproject.toml and a CHANGELOG.md with a `## Unreleased` heading.")
    text = pyproject.read_text(encoding="utf-8")
    project = re.search(r"^\[project\][ \t]*$(.*?)(?=^\[|\Z)", text, re.MULTILINE | re.DOTALL)
    lines = list(_VERSION_LINE.finditer(text, *project.span(1))) if project else []
    if len(lines) != 1:
        raise BumpError(f"{pyproject}: expected exactly one `version = \"X.Y.Z\"` line in "
                        f"[project], found {len(lines)}. The version must be static there.")
    old = parse_version(lines[0][2], str(pyproject))
    new = bumped(old, part)
    log = changelog.read_text(encoding="utf-8")
    heading = _UNRELEASED.search(log)
    if heading is None:
        raise BumpError(f"{changelog}: no `## Unreleased` heading. Add one on top, with the "
                        "changes of this release under it, then run this again.")

    # --- all checks passed: write ---
    pyproject.write_text(text[:lines[0].start(2)] + fmt(new) + text[lines[0].end(2):],
                         encoding="utf-8")
    release = f"## Unreleased\n\n## [{fmt(new)}] - {date.isoformat()}"
    changelog.write_text(log[:heading.start()] + release + log[heading.end():], encoding="utf-8")
    print(f"{pyproject.relative_to(root)}: {fmt(old)} -> {fmt(new)}")
    print(f"{changelog.relative_to(root)}: released the Unreleased section as {fmt(new)}")
    if package != "meta":
        report_dependents(root, f"rlstructures-{package}", new, fix_ranges)
    tag = f"{'rlstructures' if package == 'meta' else package}-v{fmt(new)}"
    print(f"tag: {tag}")
    return tag


def report_dependents(root: Path, dist: str, new: Version, fix_ranges: bool) -> None:
    """List (and with ``fix_ranges`` rewrite) requirements on ``dist`` that exclude ``new``."""
    candidates = [root / "pyproject.toml", *sorted((root / "packages").glob("*/pyproject.toml"))]
    wanted = compatible_range(new)
    for path in candidates:
        if not path.is_file():
            continue
        stale = []
        for dep in find_dependents(path, dist):
            verdict = admits(dep.specifier, new)
            where = f"{path.relative_to(root)}:{dep.line}"
            if verdict is None:
                print(f"{where}: cannot read the range of \"{dep.requirement}\"; check by hand.")
            elif not verdict:
                stale.append(dep)
                action = "rewritten to" if fix_ranges else "rerun with --fix-ranges to write"
                print(f"{where}: \"{dep.requirement}\" does not admit {fmt(new)}; "
                      f"{action} \"{wanted}\"")
        if fix_ranges and stale:
            text = path.read_text(encoding="utf-8")
            for dep in reversed(stale):  # from the end, so earlier offsets stay valid
                text = text[:dep.start] + wanted + text[dep.end:]
            path.write_text(text, encoding="utf-8")


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, got {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("package", help=f"one of {', '.join(PACKAGES)}, or meta")
    parser.add_argument("part", choices=PARTS)
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent,
                        help="monorepo root (default: the parent of tools/)")
    parser.add_argument("--date", type=_date, default=dt.date.today(),
                        help="release date for the CHANGELOG heading (default: today)")
    parser.add_argument("--fix-ranges", action="store_true",
                        help="rewrite sibling ranges that exclude the new version")
    args = parser.parse_args(argv)
    try:
        bump(args.root, args.package, args.part, args.date, args.fix_ranges)
    except BumpError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
