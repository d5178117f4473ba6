"""Faults of the process that owns a MultiProcessBatcher: Ctrl-C and SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.batchers.conftest import shm_entries

pytestmark = pytest.mark.timeout(90)

SCRIPT = """
import functools, multiprocessing
from rlstructures.batchers import MultiProcessBatcher
from rlstructures.batchers.testing import CountingAgent, CountingEnv

if __name__ == "__main__":
    env = functools.partial(CountingEnv, n_envs=2, auto_reset=True, sleep=0.05)
    b = MultiProcessBatcher(CountingAgent, env, n_timesteps=2000, seeds=[0, 1])
    b.update({"w": __import__("numpy").ones(3)})
    b.reset()
    b.execute()
    workers = multiprocessing.active_children()
    print(" ".join(str(p.pid) for p in workers if p.name.startswith("rlstructures")), flush=True)
    b.get()  # about 100 s: interrupted by the test
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _start(tmp_path: Path) -> tuple[subprocess.Popen[str], list[int]]:
    script = tmp_path / "owner.py"
    script.write_text(SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    pids = [int(p) for p in line.split()]
    assert len(pids) == 2, (line, proc.stderr.read() if proc.stderr else "")
    return proc, pids


def _wait_gone(pids: list[int], seconds: float = 15.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        alive = [p for p in pids if _alive(p)]
        if not alive:
            return []
        time.sleep(0.05)
    return alive


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_owner_interrupted_or_killed_leaves_nothing(tmp_path: Path, sig: signal.Signals) -> None:
    before = shm_entries()
    proc, pids = _start(tmp_path)
    time.sleep(0.3)
    os.kill(proc.pid, sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode != 0
    assert _wait_gone(pids) == [], "worker processes outlived their owner"
    assert shm_entries() - before == set()
    assert "resource_tracker" not in err
    assert "leaked" not in err
    if sig == signal.SIGINT:
        assert "KeyboardInterrupt" in err
