"""Check the package layering of the rlstructures monorepo (DESIGN.md section 1).

Usage: ``python tools/check_layering.py [--root DIR]``. Exits 0 when clean, 1 with one line per
violation otherwise. Standard library only, so it runs before anything is installed.

Rules, for every ``packages/<p>``:

* ``layer``: ``rlstructures.X`` may be imported from ``p`` only if X is p or in ``ALLOWED[p]``
  (anywhere: in functions and under ``TYPE_CHECKING`` too).
* ``private``: never import another package's private module or name (``rlstructures.X._y``).
* ``module-level-import``: a third-party import at module level must be a hard dependency
  (``[project].dependencies``); torch is also allowed at the top of ``_torch.py``/``_cuda.py``.
* ``undeclared-import``: a lazy import (in a function or ``if TYPE_CHECKING:``) must be stdlib,
  a hard dependency or a declared extra.
* ``pyproject-deps``: the ``rlstructures-*`` hard dependencies must equal ``ALLOWED[p]``.
* ``namespace``/``py-typed``: no ``src/rlstructures/__init__.py`` (PEP 420) and a
  ``src/rlstructures/<p>/py.typed`` (PEP 561).
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import tomllib

ALLOWED: Final[dict[str, frozenset[str]]] = {
    "dicttensor": frozenset(),
    "agents": frozenset({"dicttensor"}),
    "logging": frozenset({"dicttensor"}),
    "batchers": frozenset({"agents", "dicttensor"}),
    "algos": frozenset({"dicttensor", "agents", "batchers", "logging"}),
}
# Distribution name -> import name, where they differ from the `name.replace("-", "_")` default.
DIST_TO_IMPORT: Final[dict[str, str]] = {"pyyaml": "yaml", "pillow": "PIL"}
TORCH_FILES: Final = frozenset({"_torch.py", "_cuda.py"})
_REQ_NAME: Final = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_ImportNode = ast.Import | ast.ImportFrom


@dataclass(frozen=True)
class Violation:
    """One broken rule, located at ``path:line`` (``path`` relative to the checked root)."""

    path: str
    line: int
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: [{self.rule}] {self.message}"


@dataclass(frozen=True)
class Deps:
    """Import names a package declares, read from its pyproject."""

    hard: frozenset[str]
    optional: frozenset[str]
    siblings: frozenset[str]  # short names of the rlstructures-* hard dependencies


def _dist_name(requirement: str) -> str:
    match = _REQ_NAME.match(requirement)
    return re.sub(r"[-_.]+", "-", match.group(1)).lower() if match else ""


def _import_name(dist: str) -> str:
    if dist.startswith("rlstructures-"):
        return "rlstructures"
    return DIST_TO_IMPORT.get(dist, dist.replace("-", "_"))


def read_deps(pyproject: Path) -> Deps:
    """Read the hard, optional and sibling dependencies of one package's pyproject."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
    hard = [_dist_name(r) for r in project.get("dependencies", [])]
    extras = project.get("optional-dependencies", {})
    optional = [_dist_name(r) for reqs in extras.values() for r in reqs]
    return Deps(
        hard=frozenset(_import_name(d) for d in hard),
        optional=frozenset(_import_name(d) for d in optional),
        siblings=frozenset(d.removeprefix("rlstructures-") for d in hard
                           if d.startswith("rlstructures-")),
    )


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def iter_imports(node: ast.AST, lazy: bool = False) -> Iterator[tuple[_ImportNode, bool]]:
    """Yield every absolute import under ``node`` and whether it runs lazily (not at import)."""
    if isinstance(node, ast.Import) or (isinstance(node, ast.ImportFrom) and node.level == 0):
        yield node, lazy  # relative imports stay inside the package: always fine
    elif isinstance(node, ast.If) and _is_type_checking(node.test):
        for child in node.body:
            yield from iter_imports(child, True)
        for child in node.orelse:  # the `else:` of `if TYPE_CHECKING:` runs at import time
            yield from iter_imports(child, lazy)
    else:
        inner = lazy or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        for sub in ast.iter_child_nodes(node):
            yield from iter_imports(sub, inner)


def _imported_modules(node: _ImportNode) -> list[str]:
    """Dotted names an import loads; for ``from rlstructures[.x] import y``, ``...y`` too."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    module = node.module or ""  # only None for relative imports, which are never yielded
    if module.split(".")[0] != "rlstructures":
        return [module]
    return [f"{module}.{a.name}" for a in node.names if a.name != "*"] or [module]


def _check_rlstructures(pkg: str, name: str) -> tuple[str, str] | None:
    parts = name.split(".")
    if len(parts) < 2 or parts[1] == pkg:
        return None
    other = parts[1]
    if other not in ALLOWED:
        return "layer", f"imports {name}, which is not an rlstructures package ({sorted(ALLOWED)})."
    if other not in ALLOWED[pkg]:
        may = ", ".join(sorted(ALLOWED[pkg])) or "nothing from rlstructures"
        return "layer", (
            f"imports rlstructures.{other}; {pkg} may import only {may}. Move the shared type "
            f"down into a lower package or define a Protocol in {pkg}.")
    if len(parts) > 2 and parts[2].startswith("_") and not parts[2].startswith("__"):
        return "private", (
            f"imports {name}, a private part of rlstructures.{other}. Import the public name "
            f"from rlstructures.{other} instead, or ask for it to be exported in its __init__.")
    return None


def _check_third_party(top: str, lazy: bool, path: Path, pkg: str,
                       deps: Deps) -> tuple[str, str] | None:
    if top in sys.stdlib_module_names or top in deps.hard:
        return None
    if top not in deps.optional:
        return "undeclared-import", (
            f"imports {top}, which packages/{pkg}/pyproject.toml does not declare. Add it to "
            "[project].dependencies (or to an extra and import it lazily), or remove the import.")
    if lazy or (top == "torch" and path.name in TORCH_FILES):
        return None
    return "module-level-import", (
        f"imports {top} at module level, but {top} is an optional extra of {pkg}, so "
        f"`import rlstructures.{pkg}` would fail without it. Import it inside the function "
        "that needs it (under `if TYPE_CHECKING:` for annotations), or move the code into a "
        "_torch.py/_cuda.py module.")


def check_file(path: Path, rel: str, pkg: str, deps: Deps) -> list[Violation]:
    """Check the imports of one source file of package ``pkg``."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
    except SyntaxError as err:
        return [Violation(rel, err.lineno or 1, "syntax", f"cannot be parsed: {err.msg}.")]
    found: list[Violation] = []
    for node, lazy in iter_imports(tree):
        for name in _imported_modules(node):
            top = name.split(".")[0]
            if top == "rlstructures":
                problem = _check_rlstructures(pkg, name)
            else:
                problem = _check_third_party(top, lazy, path, pkg, deps)
            violation = None if problem is None else Violation(rel, node.lineno, *problem)
            if violation is not None and violation not in found:  # `from x import a, b`: once
                found.append(violation)
    return found


def _line_of(text: str, needle: str) -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    return 1


def check_package(root: Path, pkg: str) -> list[Violation]:
    """Check one ``packages/<pkg>`` folder: pyproject, namespace layout and every source file."""
    base = root / "packages" / pkg
    pyproject = base / "pyproject.toml"
    rel_py = pyproject.relative_to(root).as_posix()
    if not pyproject.is_file():
        return [Violation(rel_py, 1, "pyproject-deps", "is missing; every package needs one.")]
    try:
        deps = read_deps(pyproject)
    except tomllib.TOMLDecodeError as err:
        return [Violation(rel_py, 1, "pyproject-deps", f"is not valid TOML ({err}). Fix it.")]
    text = pyproject.read_text(encoding="utf-8")
    found: list[Violation] = []
    for extra in sorted(deps.siblings - ALLOWED[pkg]):
        found.append(Violation(rel_py, _line_of(text, f"rlstructures-{extra}"), "pyproject-deps", (
            f"depends on rlstructures-{extra}, but {pkg} may depend only on "
            f"{sorted(ALLOWED[pkg])}. Remove it, or change ALLOWED in tools/check_layering.py "
            "and DESIGN.md section 1 together.")))
    for missing in sorted(ALLOWED[pkg] - deps.siblings):
        found.append(Violation(rel_py, _line_of(text, "dependencies"), "pyproject-deps", (
            f"does not list rlstructures-{missing} in [project].dependencies, but {pkg} is "
            f"layered on it (ALLOWED). Add \"rlstructures-{missing}>=X.Y,<X.Y+1\".")))
    namespace = base / "src" / "rlstructures"
    for stray in ("__init__.py", "py.typed"):
        if (namespace / stray).exists():
            found.append(Violation((namespace / stray).relative_to(root).as_posix(), 1,
                                   "namespace", f"must not exist: rlstructures is a PEP 420 "
                                   f"namespace shared by all packages. Delete it (py.typed "
                                   f"belongs in src/rlstructures/{pkg}/)."))
    typed = namespace / pkg / "py.typed"
    if not typed.is_file():
        found.append(Violation(typed.relative_to(root).as_posix(), 1, "py-typed",
                               "is missing (PEP 561). Create the empty marker file."))
    for source in sorted(namespace.rglob("*.py")):
        found += check_file(source, source.relative_to(root).as_posix(), pkg, deps)
    return found


def check(root: Path) -> list[Violation]:
    """Check every package under ``root/packages``; return the violations found."""
    found: list[Violation] = []
    present = {p.name for p in (root / "packages").iterdir() if p.is_dir()} if (
        root / "packages").is_dir() else set()
    for unknown in sorted(present - ALLOWED.keys()):
        found.append(Violation(f"packages/{unknown}", 1, "layer", (
            "is not in ALLOWED. Add it to ALLOWED in tools/check_layering.py and to the table "
            "in DESIGN.md section 1.")))
    for pkg in sorted(ALLOWED):
        if pkg not in present:
            found.append(Violation(f"packages/{pkg}", 1, "layer",
                                   "is in ALLOWED but does not exist. Create it or remove it."))
        else:
            found += check_package(root, pkg)
    return found


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent,
                        help="monorepo root (default: the parent of tools/)")
    args = parser.parse_args(argv)
    violations = check(args.root)
    for violation in violations:
        print(violation)
    if violations:
        print(f"{len(violations)} layering violation(s); see DESIGN.md section 1.")
        return 1
    print(f"layering OK: {len(ALLOWED)} packages checked.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
