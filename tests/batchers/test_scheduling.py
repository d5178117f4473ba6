"""MultiProcessBatcher's workers run under SCHED_BATCH on Linux unless told otherwise."""

from __future__ import annotations

import functools
import multiprocessing as mp
import os

import pytest

from rlstructures.batchers import MultiProcessBatcher
from rlstructures.batchers.testing import CountingAgent, CountingEnv

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(
        not hasattr(os, "SCHED_BATCH") or not hasattr(os, "sched_getscheduler"),
        reason="scheduling policies are a Linux feature",
    ),
]
ENV = functools.partial(CountingEnv, n_envs=2)


def _worker_policies() -> list[int]:
    workers = [p for p in mp.active_children() if p.name.startswith("rlstructures-worker")]
    assert workers, "no worker process found"
    return [os.sched_getscheduler(p.pid) for p in workers if p.pid is not None]


@pytest.mark.parametrize(
    ("batch_scheduling", "policy"),
    [(True, "SCHED_BATCH"), (False, "SCHED_OTHER")],
)
def test_worker_policy(batch_scheduling: bool, policy: str) -> None:
    with MultiProcessBatcher(
        CountingAgent, ENV, n_timesteps=3, seeds=[0, 1], batch_scheduling=batch_scheduling
    ) as b:
        assert _worker_policies() == [getattr(os, policy)] * 2
        b.reset()
        b.execute()
        trajectories, _ = b.get()
        assert trajectories.lengths.tolist() == [3] * 4


def test_the_owner_keeps_its_policy() -> None:
    before = os.sched_getscheduler(0)
    with MultiProcessBatcher(CountingAgent, ENV, n_timesteps=2, seeds=[0]) as b:
        b.reset()
        b.execute()
        b.get()
    assert os.sched_getscheduler(0) == before
