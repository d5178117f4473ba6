"""Fixtures of the batcher tests: every test must leave no shared memory and no process."""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Unpack

import pytest

from rlstructures.agents import Agent, VecEnv
from rlstructures.batchers import (
    Batcher,
    BatcherOptions,
    InferenceBatcher,
    LocalBatcher,
    MultiProcessBatcher,
)


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
    """

    name: str
    build: Callable[..., Batcher]
    asynchronous: bool = True
    env_processes: bool = True
    agent_per_worker: bool = True

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
]
REFERENCE = BATCHERS[0]
OTHERS = BATCHERS[1:]  # compared with REFERENCE
ASYNCHRONOUS = [k for k in BATCHERS if k.asynchronous]
WITH_ENV_PROCESSES = [k for k in BATCHERS if k.env_processes]
AGENT_PER_WORKER = [k for k in BATCHERS if k.agent_per_worker]
SHM_PREFIXES = ("rls_", "psm_", "wnsm_", "torch_")


def shm_entries() -> set[str]:
    if not os.path.isdir("/dev/shm"):
        return set()
    return {e for e in os.listdir("/dev/shm") if e.startswith(SHM_PREFIXES)}


def child_pids() -> set[int]:
    """Live child processes of this process (from /proc; zombies and the resource tracker
    that multiprocessing starts once per interpreter excluded)."""
    me = str(os.getpid())
    out = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] != me or fields[0] == "Z":
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        # multiprocessing's own helpers live as long as the interpreter: not leaks
        if b"resource_tracker" not in cmdline and b"forkserver" not in cmdline:
            out.add(int(entry))
    return out


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Fail a test that leaves a /dev/shm segment or a child process behind."""
    shm_before = shm_entries()
    children_before = child_pids()
    yield
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        multiprocessing.active_children()  # reaps finished children
        leaked_shm = shm_entries() - shm_before
        leaked_children = child_pids() - children_before
        if not leaked_shm and not leaked_children:
            return
        time.sleep(0.05)
    pytest.fail(
        f"test leaked shared memory {sorted(leaked_shm)} / processes {sorted(leaked_children)}"
    )
