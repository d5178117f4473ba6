"""Tests for tools/check_layering.py: the real repo, then one small tree per rule."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "tools" / "check_layering.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_layering", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


checker = _load()

EXTRAS = {
    "dicttensor": 'torch = ["torch>=2.2"]\narrow = ["pyarrow>=15"]',
    "agents": 'gym = ["gymnasium>=0.29"]\ntorch = ["torch>=2.2"]',
    "batchers": 'torch = ["torch>=2.2"]\nray = ["ray>=2.9"]',
    "logging": 'tensorboard = ["tensorboard>=2.14"]',
    "algos": "",
}
HARD = {"logging": ["pyarrow>=15"], "algos": ["torch>=2.2", "gymnasium>=0.29", "tqdm>=4.60"]}


def _pyproject(pkg: str, siblings: set[str]) -> str:
    deps = ["numpy>=1.26", *HARD.get(pkg, [])]
    deps += [f"rlstructures-{s}[torch]>=0.1,<0.2" for s in sorted(siblings)]
    listed = ", ".join(f'"{d}"' for d in deps)
    return (f'[project]\nname = "rlstructures-{pkg}"\nversion = "0.1.0"\n'
            f"dependencies = [{listed}]\n\n[project.optional-dependencies]\n{EXTRAS[pkg]}\n")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A clean miniature monorepo: five packages, correct pyprojects, no sources."""
    for pkg, allowed in checker.ALLOWED.items():
        base = tmp_path / "packages" / pkg
        (base / "src" / "rlstructures" / pkg).mkdir(parents=True)
        (base / "pyproject.toml").write_text(_pyproject(pkg, set(allowed)))
        (base / "src" / "rlstructures" / pkg / "py.typed").write_text("")
        (base / "src" / "rlstructures" / pkg / "__init__.py").write_text('"""Package."""\n')
    return tmp_path


def _write(root: Path, pkg: str, name: str, source: str) -> str:
    path = root / "packages" / pkg / "src" / "rlstructures" / pkg / name
    path.write_text(textwrap.dedent(source))
    return path.relative_to(root).as_posix()


def _report(root: Path) -> list[str]:
    return [str(v) for v in checker.check(root)]


def test_real_repo_is_clean() -> None:
    violations = _report(REPO)
    assert violations == [], "\n".join(violations)


def test_cli_exit_codes(tree: Path) -> None:
    ok = subprocess.run([sys.executable, str(SCRIPT), "--root", str(tree)],
                        capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stdout
    rel = _write(tree, "dicttensor", "_bad.py", "import rlstructures.agents\n")
    bad = subprocess.run([sys.executable, str(SCRIPT), "--root", str(tree)],
                         capture_output=True, text=True, check=False)
    assert bad.returncode == 1
    assert f"{rel}:1:" in bad.stdout
    assert "1 layering violation(s)" in bad.stdout


def test_clean_tree_passes(tree: Path) -> None:
    _write(tree, "batchers", "_ok.py", """\
        from __future__ import annotations
        import os
        from typing import TYPE_CHECKING
        import numpy as np
        from rlstructures.agents import Agent
        from rlstructures import dicttensor
        from rlstructures.batchers._local import LocalBatcher
        from . import _sibling
        from ._sibling import helper
        if TYPE_CHECKING:
            import torch
        """)
    assert _report(tree) == []


def test_upward_import_is_reported(tree: Path) -> None:
    rel = _write(tree, "agents", "_env.py", '"""Doc."""\n\nimport rlstructures.batchers\n')
    assert _report(tree) == [
        f"{rel}:3: [layer] imports rlstructures.batchers; agents may import only dicttensor. "
        "Move the shared type down into a lower package or define a Protocol in agents."
    ]


@pytest.mark.parametrize("line", [
    "from rlstructures.logging import ScalarLogger",
    "from rlstructures import logging",
    "import rlstructures.logging as log",
])
def test_sideways_import_is_reported(tree: Path, line: str) -> None:
    rel = _write(tree, "batchers", "_log.py", f"import os\n{line}\n")
    [violation] = _report(tree)
    assert violation.startswith(f"{rel}:2: [layer] imports rlstructures.logging; batchers")


def test_import_inside_function_or_type_checking_still_counts(tree: Path) -> None:
    rel = _write(tree, "dicttensor", "_lazy.py", """\
        from typing import TYPE_CHECKING
        if TYPE_CHECKING:
            from rlstructures.agents import Agent
        def f() -> None:
            import rlstructures.algos
        """)
    report = _report(tree)
    assert [v.split(" [")[0] for v in report] == [f"{rel}:3:", f"{rel}:5:"]
    assert all("dicttensor may import only nothing from rlstructures" in v for v in report)


@pytest.mark.parametrize("line", [
    "from rlstructures.dicttensor._dicttensor import DictTensor",
    "from rlstructures.dicttensor import _dicttensor",
    "import rlstructures.dicttensor._torch",
])
def test_private_module_of_other_package_is_reported(tree: Path, line: str) -> None:
    rel = _write(tree, "agents", "_agent.py", f"{line}\n")
    [violation] = _report(tree)
    assert violation.startswith(f"{rel}:1: [private] imports rlstructures.dicttensor._")
    assert "Import the public name from rlstructures.dicttensor" in violation


def test_module_level_torch_in_normal_module_is_reported(tree: Path) -> None:
    rel = _write(tree, "dicttensor", "_dicttensor.py", """\
        import numpy as np
        try:
            import torch
        except ImportError:
            torch = None
        """)
    [violation] = _report(tree)
    assert violation.startswith(f"{rel}:3: [module-level-import] imports torch at module level")
    assert "Import it inside the function that needs it" in violation


def test_else_of_type_checking_runs_at_import_time(tree: Path) -> None:
    rel = _write(tree, "agents", "_gym.py", """\
        from typing import TYPE_CHECKING
        if TYPE_CHECKING:
            import gymnasium
        else:
            import gymnasium
        """)
    assert [v.split(" ")[0] for v in _report(tree)] == [f"{rel}:5:"]


def test_lazy_optional_import_is_allowed(tree: Path) -> None:
    _write(tree, "dicttensor", "_dicttensor.py", """\
        from typing import TYPE_CHECKING
        if TYPE_CHECKING:
            import pyarrow
        class DictTensor:
            def torch(self) -> None:
                import torch
            def to_arrow(self) -> None:
                import pyarrow as pa
        """)
    assert _report(tree) == []


def test_torch_file_exception(tree: Path) -> None:
    _write(tree, "dicttensor", "_torch.py", "import torch\n")
    _write(tree, "batchers", "_cuda.py", "import torch\n")
    assert _report(tree) == []
    rel = _write(tree, "dicttensor", "_torch.py", "import torch\nimport pyarrow\n")
    assert [v.split(" [")[0] for v in _report(tree)] == [f"{rel}:2:"]


def test_hard_dependencies_may_be_imported_at_module_level(tree: Path) -> None:
    _write(tree, "algos", "ppo.py", "import torch\nimport gymnasium\nimport tqdm\n")
    _write(tree, "logging", "_arrow.py", "import pyarrow as pa\n")
    assert _report(tree) == []


def test_undeclared_import_is_reported_even_lazily(tree: Path) -> None:
    rel = _write(tree, "agents", "_x.py", "def f() -> None:\n    import pandas\n")
    [violation] = _report(tree)
    assert violation.startswith(f"{rel}:2: [undeclared-import] imports pandas, which "
                                "packages/agents/pyproject.toml does not declare")


def test_namespace_init_is_reported(tree: Path) -> None:
    init = tree / "packages" / "agents" / "src" / "rlstructures" / "__init__.py"
    init.write_text("")
    [violation] = _report(tree)
    assert violation.startswith(
        "packages/agents/src/rlstructures/__init__.py:1: [namespace] must not exist")


def test_missing_py_typed_is_reported(tree: Path) -> None:
    (tree / "packages" / "logging" / "src" / "rlstructures" / "logging" / "py.typed").unlink()
    [violation] = _report(tree)
    assert violation.startswith("packages/logging/src/rlstructures/logging/py.typed:1: [py-typed]")


def test_pyproject_siblings_must_match_allowed(tree: Path) -> None:
    pyproject = tree / "packages" / "batchers" / "pyproject.toml"
    pyproject.write_text(_pyproject("batchers", {"dicttensor", "logging"}))
    report = _report(tree)
    assert len(report) == 2
    extra, missing = report
    assert extra.startswith("packages/batchers/pyproject.toml:4: [pyproject-deps] depends on "
                            "rlstructures-logging, but batchers may depend only on")
    assert missing.startswith("packages/batchers/pyproject.toml:4: [pyproject-deps] does not "
                              "list rlstructures-agents")


def test_syntax_error_is_reported(tree: Path) -> None:
    rel = _write(tree, "agents", "_broken.py", "x = 1\ndef (:\n")
    [violation] = _report(tree)
    assert violation.startswith(f"{rel}:2: [syntax]")


def test_invalid_pyproject_is_reported(tree: Path) -> None:
    (tree / "packages" / "algos" / "pyproject.toml").write_text("[project\n")
    [violation] = _report(tree)
    assert violation.startswith("packages/algos/pyproject.toml:1: [pyproject-deps] is not valid")
