"""InferenceBatcher beyond the shared contract: one agent in the owner, semaphores, faults."""

from __future__ import annotations

import functools
import gc
import itertools
import os
import signal
import threading
import time
from typing import Any

import numpy as np
import pytest

from rlstructures.agents import GymVecEnv
from rlstructures.batchers import (
    BatcherStateError,
    BatcherTimeoutError,
    InferenceBatcher,
    LocalBatcher,
    WorkerError,
)
from rlstructures.batchers._exchange import ExchangeLayout
from rlstructures.batchers._layout import Specs
from rlstructures.batchers._shm import Segment
from rlstructures.batchers._stepper import Stepper
from rlstructures.batchers._wakeup import Semaphores, wait_bounded
from rlstructures.batchers.testing import CountingAgent, CountingEnv
from rlstructures.dicttensor import DictTensor, Spec, Trajectories
from tests.agents.helpers import AttentionAgent

pytestmark = pytest.mark.timeout(60)


def cartpole(seed: int, auto_reset: bool) -> GymVecEnv:
    return GymVecEnv("CartPole-v1", 3, seed, auto_reset=auto_reset)


def slices(b: Any, n: int) -> list[Trajectories]:
    b.reset()
    out = []
    for _ in range(n):
        b.execute()
        tr, running = b.get()
        out.append(tr)
        if not running:
            break
    return out


@pytest.mark.parametrize("auto_reset", [False, True])
@pytest.mark.parametrize("store", [False, True])
def test_history_agent_on_gym_identical_to_local(auto_reset: bool, store: bool) -> None:
    env = functools.partial(cartpole, auto_reset=auto_reset)
    runs = []
    for cls in (LocalBatcher, InferenceBatcher):
        with cls(AttentionAgent, env, n_timesteps=7, seeds=[1, 2, 3], store_agent_state=store) as b:
            runs.append(slices(b, 4))
    assert len(runs[0]) == len(runs[1])
    for a, c in zip(*runs, strict=True):
        assert a.equal(c)


def test_update_is_immediate_and_deferred_during_a_collection() -> None:
    env = functools.partial(CountingEnv, n_envs=2, auto_reset=True, sleep=0.01)
    with InferenceBatcher(CountingAgent, env, n_timesteps=5, seeds=[0, 1]) as b:
        b.reset()
        b.update({"w": np.float32(2.0)})  # idle: applied at once
        b.execute()
        b.update({"w": np.float32(3.0)})  # during the collection: from the next execute()
        first, _ = b.get()
        b.execute()
        second, _ = b.get()
    assert np.all(first.trajectories["action/weight"] == 2.0)
    assert np.all(second.trajectories["action/weight"] == 3.0)


def test_update_copies_arrays_changed_in_place_later() -> None:
    env = functools.partial(CountingEnv, n_envs=2, auto_reset=True, sleep=0.01)
    with InferenceBatcher(CountingAgent, env, n_timesteps=5, seeds=[0]) as b:
        b.reset()
        b.execute()
        w = np.array([4.0], np.float32)
        b.update({"w": w})
        w[:] = 9.0  # an optimizer step after update(): not what was sent
        b.get()
        b.execute()
        tr, _ = b.get()
    assert np.all(tr.trajectories["action/weight"] == 4.0)


def test_get_non_blocking_and_timeout() -> None:
    env = functools.partial(CountingEnv, n_envs=2, auto_reset=True, sleep=0.03)
    with InferenceBatcher(CountingAgent, env, n_timesteps=10, seeds=[0, 5]) as b:
        b.reset()
        b.execute()
        tr, n = b.get(blocking=False)
        assert tr is None
        assert n == 4
        with pytest.raises(BatcherTimeoutError, match=r"did not end within 0\.05 s"):
            b.get(timeout=0.05)
        polls = 0
        while tr is None:
            polls += 1
            time.sleep(0.01)
            tr, n = b.get(blocking=False)
        assert polls > 0
        assert tr.lengths.tolist() == [10] * 4


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_killed_worker_mid_slice_is_worker_error_within_seconds(signum: int) -> None:
    # the slice would take ~100 s: a WorkerError, not a timeout, within 60 s is the death seen
    env = functools.partial(CountingEnv, n_envs=2, auto_reset=True, sleep=0.1)
    b = InferenceBatcher(CountingAgent, env, n_timesteps=1000, seeds=[0, 5])
    b.reset()
    b.execute()
    time.sleep(0.1)
    os.kill(b._workers[1].process.pid, signum)
    with pytest.raises(WorkerError, match=r"worker 1 \(seed 5, pid \d+\) was killed by signal"):
        b.get(timeout=60)
    assert b.closed


def test_killed_worker_flagged_by_the_test_env() -> None:
    env = functools.partial(CountingEnv, n_envs=2, kill_at_step=2, fail_seed=5)
    b = InferenceBatcher(CountingAgent, env, n_timesteps=4, seeds=[0, 5])
    b.reset()
    b.execute()
    with pytest.raises(WorkerError, match=r"worker 1 .* killed by signal SIGKILL"):
        b.get()


def test_stopped_worker_is_a_timeout_then_resumes() -> None:
    env = functools.partial(CountingEnv, n_envs=2, auto_reset=True, sleep=0.005)
    with InferenceBatcher(CountingAgent, env, n_timesteps=40, seeds=[0, 5]) as b:
        b.reset()
        pid = b._workers[0].process.pid
        os.kill(pid, signal.SIGSTOP)
        try:
            b.execute()
            with pytest.raises(BatcherTimeoutError, match="waits for worker 0"):
                b.get(timeout=0.5)
        finally:
            os.kill(pid, signal.SIGCONT)
        tr, _ = b.get(timeout=30)
        assert tr.lengths.tolist() == [40] * 4


def test_close_from_another_thread_interrupts_get() -> None:
    env = functools.partial(CountingEnv, n_envs=2, auto_reset=True, sleep=0.05)
    b = InferenceBatcher(CountingAgent, env, n_timesteps=1000, seeds=[0])
    b.reset()
    b.execute()
    timer = threading.Timer(0.3, b.close)
    timer.start()
    with pytest.raises(BatcherStateError, match="interrupted"):  # the slice would take ~50 s
        b.get()
    timer.join()
    assert b.closed


def test_spin_waits_give_the_same_trajectories() -> None:
    env = functools.partial(CountingEnv, n_envs=3, auto_reset=True)
    runs = []
    for spin in (False, True):
        with InferenceBatcher(CountingAgent, env, n_timesteps=6, seeds=[0, 5], spin=spin) as b:
            runs.append(slices(b, 2))
    for a, c in zip(*runs, strict=True):
        assert a.equal(c)


def test_garbage_collection_mid_collection_releases_everything() -> None:
    env = functools.partial(CountingEnv, n_envs=2, auto_reset=True, sleep=0.01)
    b = InferenceBatcher(CountingAgent, env, n_timesteps=20, seeds=[0, 5])
    b.reset()
    b.execute()
    b.get()
    b.execute()
    del b  # the stepping thread holds it until the slice ends; the no_leaks fixture checks
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(
        t.name == "rlstructures-inference-stepper" for t in threading.enumerate()
    ):
        gc.collect()
        time.sleep(0.05)
    assert not any(t.name == "rlstructures-inference-stepper" for t in threading.enumerate())


def test_workers_do_not_see_cuda() -> None:
    env = functools.partial(CountingEnv, n_envs=1)
    os.environ.pop("CUDA_VISIBLE_DEVICES", None)
    with InferenceBatcher(CountingAgent, env, n_timesteps=2, seeds=[0]) as b:
        pid = b._workers[0].process.pid
        with open(f"/proc/{pid}/environ", "rb") as f:
            environ = f.read().split(b"\0")
    assert b"CUDA_VISIBLE_DEVICES=" in environ
    assert "CUDA_VISIBLE_DEVICES" not in os.environ  # the owner's environment is untouched


def test_unpicklable_factories_are_a_type_error() -> None:
    with pytest.raises(TypeError, match="must be picklable"):
        InferenceBatcher(CountingAgent, lambda seed: CountingEnv(seed), n_timesteps=2, seeds=[0])


# ---------------------------------------------------------------------- the parts


def test_exchange_layout_rows_do_not_overlap() -> None:
    specs = Specs(
        observation={"frame": Spec((3,), np.dtype(np.float32))},
        action={"action": Spec((), np.dtype(np.int64))},
        state={},
        agent_info={},
        env_info={},
    )
    layout = ExchangeLayout.build(specs, n_workers=3, n_envs_per_worker=2, n_slots=5)
    assert layout.done > layout.go
    ends = sorted((e.offset, e.offset + e.nbytes) for e in layout.entries)
    assert ends[0][0] >= layout.done + 3 * 64
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(ends))
    assert all(e.offset % 64 == 0 for e in layout.entries)
    views = layout.views(bytearray(layout.size))
    assert views["obs:frame"].shape == (5, 6, 3)
    assert layout.of(views, "action")["action"].shape == (6,)


def _sem_child(fd: int, size: int) -> None:  # pragma: no cover - runs in a child
    seg = Segment.attach(fd, size)
    sems = Semaphores(seg.buffer, 0, 2, init=False)
    for _ in range(100):
        while not sems.wait(0, 0.1):
            pass
        sems.post(1)


def test_semaphores_between_processes_and_bounded_waits() -> None:
    import multiprocessing as mp

    seg = Segment.create(4096, what="test", fix="none")
    try:
        sems = Semaphores(seg.buffer, 0, 2, init=True)
        assert not sems.wait(1, 0.01)  # nothing posted: the wait expires
        ctx = mp.get_context("fork")  # the child inherits the mapping by fd number
        fd = seg.fileno()
        child = ctx.Process(target=_sem_child, args=(os.dup(fd), seg.size))
        child.start()
        for _ in range(100):
            sems.post(0)
            assert wait_bounded(sems, 1, lambda: None, deadline=time.monotonic() + 10)
        child.join(10)
        assert child.exitcode == 0
        calls = []

        def check() -> None:
            calls.append(1)
            if len(calls) == 3:
                raise RuntimeError("the other side is gone")

        with pytest.raises(RuntimeError, match="gone"):
            wait_bounded(sems, 1, check)  # checked every 0.1 s, so never a hang
        assert not wait_bounded(sems, 1, lambda: None, deadline=time.monotonic() + 0.05)
        assert not wait_bounded(sems, 1, lambda: None, deadline=time.monotonic() + 0.05, spin=True)
    finally:
        seg.close()


def test_stepper_runs_jobs_and_hands_back_errors() -> None:
    stepper: Stepper[int] = Stepper("test-stepper")
    try:
        stepper.submit(lambda: 7)
        assert stepper.wait(5)
        assert stepper.result() == 7

        def slow() -> int:
            time.sleep(0.2)
            return 1

        stepper.submit(slow)
        with pytest.raises(RuntimeError, match="busy"):
            stepper.submit(lambda: 2)
        assert stepper.wait(5)
        assert stepper.result() == 1

        def fail() -> int:
            raise KeyError("job")

        stepper.submit(fail)
        stepper.wait(5)
        with pytest.raises(KeyError, match="job"):
            stepper.result()
    finally:
        assert stepper.close(5)


def test_one_agent_sees_every_workers_rows_at_once() -> None:
    env = functools.partial(CountingEnv, n_envs=3, auto_reset=True)
    with InferenceBatcher(_sizes_agent, env, n_timesteps=4, seeds=[0, 5, 9]) as b:
        slices(b, 1)
        sizes = b._owner.agent.sizes  # type: ignore[union-attr]
    assert sizes == [9] * 4  # one call per step for the 3 workers' 3 envs


class _SizesAgent(CountingAgent):
    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[int] = []

    def __call__(self, state: Any, observation: DictTensor, *args: Any) -> Any:
        self.sizes.append(len(observation))
        return super().__call__(state, observation, *args)


def _sizes_agent() -> _SizesAgent:
    return _SizesAgent()
