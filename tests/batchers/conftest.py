"""Fixtures of the batcher tests: every test must leave no shared memory and no process."""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Iterator

import pytest

from rlstructures.batchers import InferenceBatcher, LocalBatcher, MultiProcessBatcher

BATCHERS = [LocalBatcher, MultiProcessBatcher, InferenceBatcher]
# batchers with an agent copy per worker (seeded by agent_seeds[w]); InferenceBatcher has one
ONE_AGENT_PER_WORKER = [LocalBatcher, MultiProcessBatcher]
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
