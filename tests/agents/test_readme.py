"""The examples of packages/agents/README.md run, in order, as a new user would run them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "packages" / "agents" / "README.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


def test_readme_examples_run() -> None:
    pytest.importorskip("torch")
    blocks = python_blocks(README.read_text(encoding="utf-8"))
    assert len(blocks) >= 8
    namespace: dict[str, object] = {"__name__": "readme"}
    for i, block in enumerate(blocks):
        try:
            exec(compile(block, f"README.md block {i}", "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"README block {i} failed:\n{block}") from exc


def test_readme_lists_every_public_name() -> None:
    import rlstructures.agents
    from rlstructures.agents import errors

    text = README.read_text(encoding="utf-8")
    for name in [*rlstructures.agents.__all__, *errors.__all__]:
        if name != "__version__":
            assert f"`{name}" in text, name
    assert "BENCH_TABLE" not in text, "run tools/bench/agents.py and paste its table"
