"""docs/migrating-from-0.2.md: its python blocks run, in order, as one script; its links hold."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "migrating-from-0.2.md"


def blocks(kind: str) -> list[str]:
    return re.findall(rf"^```{kind}\n(.*?)^```", GUIDE.read_text(encoding="utf-8"),
                      flags=re.MULTILINE | re.DOTALL)


def test_the_guide_runs_as_one_script(tmp_path: Path) -> None:
    """As a user would run it: one file (MultiProcessBatcher's spawned workers import it)."""
    pytest.importorskip("torch")
    code = blocks("python")
    assert len(code) >= 8
    script = tmp_path / "guide.py"
    script.write_text("\n\n".join(code), encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=300, check=False, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_0_2_tutorial_topic_has_a_section() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    for title in ("## Data structures", "## Environments", "## Agents", "## Batchers",
                  "## Recurrent policies", "## A side-by-side agent",
                  "## Every renamed or replaced name", "## What changed in meaning"):
        assert f"\n{title}\n" in text, title


def test_the_renamed_names_of_the_guide_fail_naming_the_replacement() -> None:
    """Each 0.2 name the tables list on our objects raises an error that names it."""
    import numpy as np

    from rlstructures.dicttensor import (
        DictTensor,
        RemovedAttribute,
        RemovedNameError,
        TemporalDictTensor,
        Trajectories,
    )

    dt = DictTensor({"a/x": np.zeros(2)})
    tdt = TemporalDictTensor({"x": np.zeros((2, 3))})
    objects = {"d": dt, "tdt": tdt, "trajectories": Trajectories(dt, tdt)}
    checked = set()
    for line in GUIDE.read_text(encoding="utf-8").splitlines():
        if not line.startswith("| `"):
            continue
        old = line.split(" | ")[0]  # the RLStructures 0.2 column
        for owner, name in re.findall(r"`(d|tdt|trajectories)\.(\w+)", old):
            obj = objects[owner]
            static = inspect.getattr_static(obj, name, None)
            if static is not None and not isinstance(static, RemovedAttribute):
                continue  # kept (n_elems, mask, specs, lengths): the table says what changed
            with pytest.raises(RemovedNameError, match=r"is a name of RLStructures 0\.2"):
                getattr(obj, name)
            checked.add(f"{owner}.{name}")
    assert len(checked) >= 20, sorted(checked)
    for name in ("RL_Agent", "GymEnv", "GymEnvInf", "RL_Agent_CheckDevice", "DeviceEnv",
                 "replay_agent_stateless", "RL_Batcher"):
        with pytest.raises(ImportError, match=r"RLStructures 0\.2"):
            exec(f"from rlstructures.agents import {name}", {})


def test_links_point_to_files() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
        if not target.startswith("http"):
            assert (GUIDE.parent / target).exists(), target
