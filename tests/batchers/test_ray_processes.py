"""RayBatcher on a two-node cluster, and on a Ray it starts itself: each in a subprocess.

A driver process joins one Ray cluster only, and this one holds the session's local Ray
(the ``ray_local`` fixture, if another test started it): the scenarios of
tests/batchers/ray_scripts.py run in their own interpreter, with Ray's temp directory in
this test's tmp_path, and must leave no process behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.batchers.ray_local import RAY_ENV, wait_until_gone

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[2]


def _run(name: str, tmp: Path) -> str:
    env = {**os.environ, **RAY_ENV, "RAY_TMPDIR": str(tmp)}
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.run(
        [sys.executable, "-m", "tests.batchers.ray_scripts", name],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
    )
    left = wait_until_gone(str(tmp).encode())
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout}\n{proc.stderr[-6000:]}"
    assert not left, f"Ray processes {left} still run after {name}"
    assert os.listdir(tmp) == ["ray"], os.listdir(tmp)  # everything Ray wrote is in there
    return proc.stdout


def test_two_nodes_one_actor_on_each_and_a_lost_node(ray_tmp: Path) -> None:
    out = _run("two_nodes", ray_tmp)
    assert "lost node reported after" in out


def test_a_ray_it_starts_is_shut_down_by_the_last_batcher(ray_tmp: Path) -> None:
    _run("own_local_ray", ray_tmp)
