"""Importing rlstructures.dicttensor needs numpy only; a missing extra names its pip command."""

from __future__ import annotations

import ast
import importlib.metadata
import subprocess
import sys
import textwrap
from pathlib import Path

import rlstructures.dicttensor as dicttensor


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_import_and_numpy_work_import_neither_torch_nor_pyarrow() -> None:
    result = run_python(
        """
        import sys
        import numpy as np
        from rlstructures.dicttensor import DictTensor, TemporalDictTensor, Trajectories
        dt = DictTensor({"x": np.zeros((4, 2))})
        tdt = TemporalDictTensor({"x": np.zeros((4, 3))}, [1, 2, 3, 0])
        DictTensor.cat([dt, dt[1:]]); dt.clone().where(np.ones(4, bool), dt); dt.specs()
        tdt.mask(); tdt.temporal_slice(1, 2); TemporalDictTensor.cat([tdt, tdt]).shorten()
        Trajectories(dt, tdt)[1:]
        print(sorted(m for m in ("torch", "pyarrow") if m in sys.modules))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_a_missing_torch_names_the_extra() -> None:
    result = run_python(
        """
        import sys
        sys.modules["torch"] = None  # as if torch were not installed
        import numpy as np
        from rlstructures.dicttensor import DictTensor, MissingDependencyError, Spec
        dt = DictTensor({"x": np.zeros(2)})
        for call in (dt.torch, lambda: dt.to("cpu"), dt.pin_memory,
                     lambda: DictTensor.zeros({"x": Spec((), "float32")}, 2, "torch")):
            try:
                call()
            except MissingDependencyError as exc:
                assert isinstance(exc, ImportError)
                print(exc)
        """
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 4
    for line in lines:
        assert "needs PyTorch, which is not installed" in line
        assert "pip install 'rlstructures-dicttensor[torch]'" in line
    assert "DictTensor.torch()" in lines[0]


def test_a_missing_pyarrow_names_the_extra() -> None:
    result = run_python(
        """
        import sys
        sys.modules["pyarrow"] = None  # as if pyarrow were not installed
        import numpy as np
        from rlstructures.dicttensor import DictTensor, MissingDependencyError
        from rlstructures.dicttensor import TemporalDictTensor
        for call in (DictTensor({"x": np.zeros(2)}).to_arrow,
                     TemporalDictTensor({"x": np.zeros((1, 2))}).to_arrow,
                     lambda: DictTensor.from_arrow(None),
                     lambda: TemporalDictTensor.from_arrow(None)):
            try:
                call()
            except MissingDependencyError as exc:
                print(exc)
        """
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 4
    for line in lines:
        assert "pip install 'rlstructures-dicttensor[arrow]'" in line


def test_public_api_and_version() -> None:
    assert dicttensor.__version__ == importlib.metadata.version("rlstructures-dicttensor")
    for name in dicttensor.__all__:
        assert hasattr(dicttensor, name), name
    assert dicttensor.DictTensor.__module__.startswith("rlstructures.dicttensor")


#: The modules of rlstructures.dicttensor, in import order: each may import (at module level,
#: in a function or for the type checker) only the modules before it. A one-way chain: the
#: low modules work on leaves and batch shapes, the classes wrap their results.
CHAIN = ["errors", "_spec", "_torch", "_backend", "_checks", "_combine", "_arrow", "_renamed",
         "_dicttensor", "_temporal", "_trajectories", "__init__"]


def _imported(path: Path) -> set[str]:
    """The rlstructures.dicttensor modules a source file imports, wherever it does."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[:2] == ["rlstructures", "dicttensor"] and len(parts) == 3:
                found.add(parts[2])
    return found


def test_the_modules_import_each_other_in_one_direction() -> None:
    package = Path(dicttensor.__file__).parent
    assert sorted(CHAIN) == sorted(p.stem for p in package.glob("*.py"))
    for i, name in enumerate(CHAIN):
        later = _imported(package / f"{name}.py") & set(CHAIN[i:])
        assert not later, f"{name}.py imports {sorted(later)}, which come after it"
