"""A script that builds a batcher at its top level, without the `__main__` guard.

With the "spawn" and "forkserver" start methods every worker imports the main script
again; the script then fails in the worker before it is ready (here multiprocessing's own
"bootstrapping phase" RuntimeError). The owner's WorkerError says what to change.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(90)

SCRIPT = """
import functools, sys
from rlstructures.batchers import MultiProcessBatcher, WorkerError
from rlstructures.batchers.testing import CountingAgent, CountingEnv

env = functools.partial(CountingEnv, n_envs=2)
try:
    MultiProcessBatcher(CountingAgent, env, n_timesteps=2, seeds=[0], start_method=sys.argv[1])
except WorkerError as error:
    print("WORKER ERROR:", error, flush=True)
"""


@pytest.mark.parametrize("start_method", ["spawn", "forkserver"])
def test_a_script_without_the_main_guard_is_told_to_add_it(
    tmp_path: Path, start_method: str
) -> None:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    proc = subprocess.run(
        [sys.executable, str(script), start_method],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stdout.splitlines() if x.startswith("WORKER ERROR:"))
    assert "exited with code 1 before it was ready" in line
    assert f"the main script {str(script)!r}" in line
    assert f"{start_method!r} start method" in line
    assert 'if __name__ == "__main__":' in line
    assert "bootstrapping phase" in proc.stderr  # the worker's own traceback


def test_a_worker_that_dies_once_ready_gets_no_such_hint(tmp_path: Path) -> None:
    script = tmp_path / "guarded.py"
    script.write_text(
        "from rlstructures.batchers import MultiProcessBatcher, WorkerError\n"
        "from rlstructures.batchers.testing import CountingAgent\n"
        "from tests.batchers.parts import exit_one_env\n"
        "if __name__ == '__main__':\n"
        "    env = exit_one_env\n"
        "    with MultiProcessBatcher(CountingAgent, env, n_timesteps=2, seeds=[0]) as b:\n"
        "        b.reset()\n"
        "        try:\n"
        "            b.execute(); b.get()\n"
        "        except WorkerError as error:\n"
        "            print('WORKER ERROR:', error, flush=True)\n"
    )
    proc = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stdout.splitlines() if x.startswith("WORKER ERROR:"))
    assert line.endswith("exited with code 1"), line
