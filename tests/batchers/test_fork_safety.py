"""A forked child of a batcher's owner leaves the batcher alone: exit hooks, finalizers, calls."""

from __future__ import annotations

import json

import pytest

from tests.batchers.scenarios import run_python

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="os.fork is POSIX only"),
]

FORK = """
import functools, gc, json, os, sys, warnings
warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads: on purpose here
from rlstructures.batchers import BatcherStateError, LocalBatcher, MultiProcessBatcher
from rlstructures.batchers.testing import CountingAgent, CountingEnv

if __name__ == "__main__":
    env = functools.partial(CountingEnv, n_envs=2, auto_reset=True)
    b = MultiProcessBatcher(CountingAgent, env, n_timesteps=3, seeds=[0, 1])
    b.reset()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: what a user's fork (a data loader, a subprocess helper) does
        os.close(read)
        try:
            b.execute()
            answer = "execute() worked in the child"
        except BatcherStateError as exc:
            answer = str(exc)
        os.write(write, answer.encode())
        os.close(write)
        if sys.argv[1] == "gc":
            del b
            gc.collect()
            os._exit(0)
        sys.exit(0)  # atexit hooks run: multiprocessing's and the finalizers
    os.close(write)
    child_said = os.read(read, 10000).decode()
    _, status = os.waitpid(pid, 0)
    b.execute()
    tr, _ = b.get()
    b.close()
    print(json.dumps({"child": child_said, "status": status, "lengths": tr.lengths.tolist()}))
"""


@pytest.mark.parametrize("how", ["exit", "gc"])
def test_a_forked_child_neither_stops_the_workers_nor_uses_them(how: str) -> None:
    done = run_python(FORK.replace("sys.argv[1]", repr(how)))
    assert done.returncode == 0, done.stderr
    assert "can only join a child process" not in done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["lengths"] == [3, 3, 3, 3]
    assert report["status"] == 0
    assert "created in process" in report["child"], report["child"]


LOCAL_FORK = """
import functools, gc, json, os, sys
from rlstructures.batchers import LocalBatcher
from rlstructures.batchers.testing import CountingAgent, CountingEnv

CLOSED = []


class ClosingEnv(CountingEnv):
    def close(self):
        CLOSED.append(os.getpid())
        with open(sys.argv[1], "a") as f:
            f.write(f"{os.getpid()}\\n")


if __name__ == "__main__":
    env = functools.partial(ClosingEnv, n_envs=2, auto_reset=True)
    b = LocalBatcher(CountingAgent, env, n_timesteps=3, seeds=[0, 1])
    pid = os.fork()
    if pid == 0:
        del b
        gc.collect()
        os._exit(0)
    os.waitpid(pid, 0)
    del b
    gc.collect()
    print(json.dumps({"me": os.getpid(), "closed": CLOSED}))
"""


def test_a_local_batcher_collected_without_close_closes_its_envs_once_in_its_process(
    tmp_path: object,
) -> None:
    import pathlib

    log = pathlib.Path(str(tmp_path)) / "closed.txt"
    done = run_python(LOCAL_FORK.replace("sys.argv[1]", repr(str(log))))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    # the probe env closes too (in this process); then each of the two VecEnvs once
    closed = [int(p) for p in log.read_text().split()]
    assert report["closed"] == closed
    assert closed == [report["me"]] * 3
