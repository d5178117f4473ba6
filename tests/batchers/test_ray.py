"""RayBatcher beyond the contract suite (which runs it too): actors, Ray, faults, options.

Every test here runs on the session's local Ray (the ``ray_local`` fixture: loopback only),
except the two that must not: the import error (no Ray needed) and the subprocess tests of
tests/batchers/test_ray_processes.py.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import threading
import time
from typing import Any

import numpy as np
import pytest

from rlstructures.batchers import (
    BatcherStateError,
    BatcherTimeoutError,
    LocalBatcher,
    RayBatcher,
    WorkerError,
)
from rlstructures.batchers.testing import CountingAgent, CountingEnv
from tests.batchers.parts import RaisingEnv
from tests.batchers.ray_local import LOOPBACK, actor_pids

pytestmark = pytest.mark.timeout(90)

ENV = functools.partial(CountingEnv, n_envs=2, auto_reset=True)


def test_one_actor_per_seed_on_loopback(ray_local: Any) -> None:
    with RayBatcher(
        CountingAgent, ENV, n_timesteps=3, seeds=[0, 5, 9], actor_options={"num_cpus": 0.5}
    ) as b:
        locations = b.locations
        assert len(locations) == 3
        assert len({loc.pid for loc in locations}) == 3  # one process per seed
        assert {loc.node_ip for loc in locations} == {LOOPBACK}
        assert {loc.node_id for loc in locations} == {n["NodeID"] for n in ray_local.nodes()}
        assert {loc.pid for loc in locations} <= set(actor_pids())
        b.reset()
        b.execute()
        tr, n = b.get()
    assert tr.trajectories.batch_shape == (6, 3)
    assert n == 6
    assert ray_local.is_initialized()  # joined the caller's Ray: left running


def test_a_killed_actor_process_is_a_worker_error(ray_local: Any) -> None:
    """An actor killed from outside while it collects: the test's timeout catches a hang."""
    env = functools.partial(CountingEnv, n_envs=2, auto_reset=True, sleep=0.05)
    b = RayBatcher(CountingAgent, env, n_timesteps=200, seeds=[0, 5])
    b.reset()
    b.execute()
    os.kill(b.locations[1].pid, signal.SIGKILL)
    with pytest.raises(
        WorkerError, match=r"worker 1 \(seed 5, pid \d+ on node 127.0.0.1\)"
    ) as info:
        b.get()
    assert "its Ray actor died" in str(info.value)
    assert info.value.worker == 1
    assert b.closed


def test_update_puts_the_weights_in_the_object_store_once(
    ray_local: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    puts: list[Any] = []
    real_put = ray_local.put

    def counting_put(value: Any, **kw: Any) -> Any:
        puts.append(value)
        return real_put(value, **kw)

    with RayBatcher(
        CountingAgent, ENV, n_timesteps=2, seeds=[0, 5, 9], actor_options={"num_cpus": 0.5}
    ) as b:
        monkeypatch.setattr(ray_local, "put", counting_put)
        b.update({"w": np.array([2.5], np.float32)})
        assert len(puts) == 1  # one copy in the store for the three actors
        b.reset()
        b.execute()
        tr, _ = b.get()
    assert (tr.trajectories["action/weight"] == 2.5).all()


def test_get_times_out_and_stays_usable(ray_local: Any) -> None:
    env = functools.partial(CountingEnv, n_envs=2, auto_reset=True, sleep=0.02)
    with RayBatcher(CountingAgent, env, n_timesteps=30, seeds=[0]) as b:
        reference = LocalBatcher(CountingAgent, env, n_timesteps=30, seeds=[0])
        b.reset()
        b.execute()
        with pytest.raises(BatcherTimeoutError, match="call get\\(\\) again"):
            b.get(timeout=0.01)
        tr, _ = b.get()
        with reference:
            reference.reset()
            reference.execute()
            expected, _ = reference.get()
    np.testing.assert_array_equal(
        tr.trajectories["observation/frame"], expected.trajectories["observation/frame"]
    )


def test_close_from_another_thread_interrupts_get(ray_local: Any) -> None:
    env = functools.partial(CountingEnv, n_envs=2, auto_reset=True, sleep=0.05)
    b = RayBatcher(CountingAgent, env, n_timesteps=400, seeds=[0])
    b.reset()
    b.execute()
    closer = threading.Timer(0.3, b.close)
    closer.start()
    try:
        with pytest.raises(BatcherStateError, match="interrupted"):
            b.get()
    finally:
        closer.join()
    assert b.closed


def test_actors_that_cannot_be_placed_are_a_timeout(ray_local: Any) -> None:
    with pytest.raises(BatcherTimeoutError, match=r"num_cpus': 64.*available") as info:
        RayBatcher(
            CountingAgent,
            ENV,
            n_timesteps=2,
            seeds=[0],
            actor_options={"num_cpus": 64},
            start_timeout=0.5,
        )
    assert "lower the resources" in str(info.value)


def test_actor_options_per_seed(ray_local: Any) -> None:
    options = [{"num_cpus": 0.25}, {"num_cpus": 0.5}]
    with RayBatcher(CountingAgent, ENV, n_timesteps=2, seeds=[0, 5], actor_options=options) as b:
        b.reset()
        b.execute()
        b.get()
    with pytest.raises(ValueError, match="one mapping per seed \\(2\\)"):
        RayBatcher(CountingAgent, ENV, n_timesteps=2, seeds=[0, 5], actor_options=options[:1])
    with pytest.raises(TypeError, match="actor_options must be None, a mapping"):
        RayBatcher(CountingAgent, ENV, n_timesteps=2, seeds=[0], actor_options=3)  # type: ignore[arg-type]


def test_another_address_than_the_connection_is_refused(ray_local: Any) -> None:
    with pytest.raises(ValueError, match=r"connected to the Ray cluster at 127\.0\.0\.1:"):
        RayBatcher(CountingAgent, ENV, n_timesteps=2, seeds=[0], address="127.0.0.1:1")
    with pytest.raises(TypeError, match="address must be None or a str"):
        RayBatcher(CountingAgent, ENV, n_timesteps=2, seeds=[0], address=6379)  # type: ignore[arg-type]
    current = str(ray_local.get_runtime_context().gcs_address)
    with RayBatcher(CountingAgent, ENV, n_timesteps=2, seeds=[0], address=current) as b:
        b.reset()
    assert ray_local.is_initialized()


def test_missing_ray_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'rlstructures-batchers\[ray\]'"):
        RayBatcher(CountingAgent, ENV, n_timesteps=2, seeds=[0])


def test_actors_are_gone_soon_after_close(ray_local: Any) -> None:
    b = RayBatcher(CountingAgent, ENV, n_timesteps=2, seeds=[0, 5])
    pids = {loc.pid for loc in b.locations}
    b.close()
    b.close()  # idempotent
    deadline = time.monotonic() + 10
    while pids & set(actor_pids()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pids & set(actor_pids())


@pytest.mark.parametrize("exception", ["SystemExit", "KeyboardInterrupt"])
def test_an_env_raising_a_base_exception_is_reported_by_name(
    ray_local: Any, exception: str
) -> None:
    """``sys.exit()`` or a KeyboardInterrupt in an env, as in the other batchers (they were
    "its Ray actor died (its process was killed or crashed ...)" and Ray's
    TaskCancelledError, without the env's traceback)."""
    env = functools.partial(RaisingEnv, exception=exception)
    with RayBatcher(CountingAgent, env, n_timesteps=3, seeds=[0]) as b:
        b.reset()
        b.execute()
        with pytest.raises(
            WorkerError, match=rf"worker 0 \(seed 0\) raised {exception}: from the env"
        ) as info:
            b.get()
    assert ", in step" in (info.value.remote_traceback or "")  # the env's own frame


def test_start_timeout_takes_none_for_no_limit_and_refuses_nan(ray_local: Any) -> None:
    """Like get(timeout=...): None is no limit (was a TypeError from float(None)); NaN,
    which never expires, and negative values are a ValueError."""
    with RayBatcher(CountingAgent, ENV, n_timesteps=2, seeds=[0], start_timeout=None) as b:
        b.reset()
    for bad in (float("nan"), -1.0):
        with pytest.raises(ValueError, match="start_timeout must be None"):
            RayBatcher(CountingAgent, ENV, n_timesteps=2, seeds=[0], start_timeout=bad)
    with pytest.raises(TypeError, match="start_timeout must be None or a number"):
        RayBatcher(CountingAgent, ENV, n_timesteps=2, seeds=[0], start_timeout="60")  # type: ignore[arg-type]


def test_an_unpicklable_make_env_is_a_type_error_naming_it(ray_local: Any) -> None:
    """Ray's own message showed the (make_agent, make_env) tuple without saying which one
    failed; lambdas and local functions are fine (cloudpickle)."""
    lock = threading.Lock()

    def make_env(seed: int) -> CountingEnv:
        with lock:  # a lock cannot be pickled, even by cloudpickle
            return CountingEnv(seed, 2, auto_reset=True)

    with pytest.raises(TypeError, match=r"make_env .*cannot be pickled.*_thread.lock"):
        RayBatcher(CountingAgent, make_env, n_timesteps=2, seeds=[0])
    with RayBatcher(
        CountingAgent, lambda seed: CountingEnv(seed, 2, auto_reset=True), n_timesteps=2, seeds=[0]
    ) as b:
        b.reset()
