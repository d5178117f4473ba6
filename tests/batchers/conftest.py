"""Fixtures of the batcher tests: every test must leave no shared memory and no process."""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Unpack

import pytest

from rlstructures.agents import Agent, VecEnv
from rlstructures.batchers import (
    Batcher,
    BatcherOptions,
    InferenceBatcher,
    LocalBatcher,
    MultiProcessBatcher,
    RayBatcher,
)
from tests.batchers.procs import command_line, live_processes
from tests.batchers.ray_local import RAY_ENV, actor_pids, local_ray, short_tmp

# Ray reads these when it is imported: loopback addresses only, no token, no usage report
os.environ.update(RAY_ENV)


@dataclass(frozen=True)
class BatcherKind:
    """One batcher implementation under the contract suites, called like its class.

    Attributes:
        name: the test id (the class name).
        build: ``build(make_agent, make_env, **kwargs)``, the arguments of
            ``Batcher.__init__``; a class, or a function adding options (an address, ...).
        asynchronous: ``execute()`` returns before the collection ends, so
            ``get(blocking=False)`` can be ``(None, n)``.
        env_processes: the envs step in processes of their own: a SIGKILL there (the env's
            ``kill_at_step``) is a WorkerError; False: they step in the test's process.
        agent_per_worker: an agent copy per worker, seeded ``agent_seeds[w]`` (results of
            a stochastic agent equal REFERENCE's); False: one agent acts for every worker
            (InferenceBatcher: seeded ``agent_seeds[0]``).
        killed: what the WorkerError of a worker killed by SIGKILL says (a regex).
        fixture: a session fixture the batcher needs (a running Ray), set up before
            ``no_leaks`` takes its snapshot.
        agent_suite: test_agent_contract.py (what the agent receives at each step, the
            collector's own checks) runs against it too. False for a batcher that runs the
            collector unchanged elsewhere and costs seconds per construction (Ray actors):
            there the suite would test the same code again for a minute of CI time.
    """

    name: str
    build: Callable[..., Batcher]
    asynchronous: bool = True
    env_processes: bool = True
    agent_per_worker: bool = True
    killed: str = "killed by signal SIGKILL"
    fixture: str | None = None
    agent_suite: bool = True

    @property
    def __name__(self) -> str:  # pytest's id of a parameter with a ``__name__``
        return self.name

    def __call__(
        self,
        make_agent: Callable[[], Agent],
        make_env: Callable[[int], VecEnv],
        **kwargs: Unpack[BatcherOptions],
    ) -> Batcher:
        return self.build(make_agent, make_env, **kwargs)


# THE list every contract test is parametrized over (tests/batchers/test_contract.py,
# test_agent_contract.py, test_fast_path_contract.py, test_output_buffers.py, ...). A new
# batcher is one line here; the first entry is the reference the others must equal.
BATCHERS = [
    BatcherKind("LocalBatcher", LocalBatcher, asynchronous=False, env_processes=False),
    BatcherKind("MultiProcessBatcher", MultiProcessBatcher),
    BatcherKind("InferenceBatcher", InferenceBatcher, agent_per_worker=False),
    # on the session's local Ray (the ray_local fixture); Ray does not say which signal
    # killed an actor's process
    BatcherKind(
        "RayBatcher",
        RayBatcher,
        killed="its Ray actor died",
        fixture="ray_local",
        agent_suite=False,
    ),
]
REFERENCE = BATCHERS[0]
OTHERS = BATCHERS[1:]  # compared with REFERENCE
ASYNCHRONOUS = [k for k in BATCHERS if k.asynchronous]
WITH_ENV_PROCESSES = [k for k in BATCHERS if k.env_processes]
AGENT_PER_WORKER = [k for k in BATCHERS if k.agent_per_worker]
AGENT_SUITE = [k for k in BATCHERS if k.agent_suite]
SHM_PREFIXES = ("rls_", "psm_", "wnsm_", "torch_")


def shm_entries() -> set[str]:
    if not os.path.isdir("/dev/shm"):
        return set()
    return {e for e in os.listdir("/dev/shm") if e.startswith(SHM_PREFIXES)}


def child_pids() -> set[int]:
    """Live child processes of this process (from /proc; zombies and the resource tracker
    that multiprocessing starts once per interpreter excluded)."""
    me = os.getpid()
    out = set()
    for pid, parent in live_processes().items():
        if parent != me:
            continue
        cmdline = command_line(pid)
        if cmdline is None:
            continue
        # multiprocessing's own helpers live as long as the interpreter: not leaks
        if b"resource_tracker" not in cmdline and b"forkserver" not in cmdline:
            out.add(pid)
    return out


@pytest.fixture
def ray_tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A directory for Ray's temp files (``RAY_TMPDIR``), see ``short_tmp``."""
    with short_tmp(tmp_path_factory) as tmp:
        yield tmp


@pytest.fixture(scope="session")
def ray_local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One local Ray for the whole session (loopback only; see tests/batchers/ray_local.py).

    Its temp directory lies in the session's tmp area; at the end of the session no Ray
    process is left and /tmp/ray was not created (checked).
    """
    with short_tmp(tmp_path_factory) as tmp, local_ray(tmp) as ray:
        yield ray


@pytest.fixture(autouse=True)
def no_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that leaves a /dev/shm segment, a child process or a Ray actor behind."""
    callspec = getattr(request.node, "callspec", None)
    for param in callspec.params.values() if callspec is not None else ():
        if isinstance(param, BatcherKind) and param.fixture is not None:
            request.getfixturevalue(param.fixture)  # started before the snapshot
    shm_before = shm_entries()
    children_before = child_pids()
    actors_before = set(actor_pids())
    yield
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        multiprocessing.active_children()  # reaps finished children
        leaked_shm = shm_entries() - shm_before
        leaked_children = child_pids() - children_before
        leaked_actors = set(actor_pids()) - actors_before
        if not leaked_shm and not leaked_children and not leaked_actors:
            return
        time.sleep(0.05)
    pytest.fail(
        f"test leaked shared memory {sorted(leaked_shm)} / processes {sorted(leaked_children)}"
        f" / Ray actors {sorted(leaked_actors)}"
    )
