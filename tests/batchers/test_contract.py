"""The contract every batcher honours, run against each implementation.

Every test is parametrized over ``BATCHERS`` (tests/batchers/conftest.py: one line per
batcher) or a subset of it named there (``OTHERS``, ``ASYNCHRONOUS``, ``WITH_ENV_PROCESSES``).
"""

from __future__ import annotations

import functools
import time
from typing import Any

import numpy as np
import pytest

from rlstructures.batchers import (
    AgentOutputError,
    Batcher,
    BatcherStateError,
    WorkerError,
)
from rlstructures.batchers.testing import CountingAgent, CountingEnv
from rlstructures.dicttensor import DictTensor, Trajectories
from tests.batchers.conftest import (
    AGENT_PER_WORKER,
    ASYNCHRONOUS,
    BATCHERS,
    OTHERS,
    REFERENCE,
    WITH_ENV_PROCESSES,
    BatcherKind,
)

pytestmark = pytest.mark.timeout(60)


def make(cls: Any, env: Any = None, agent: Any = CountingAgent, **kw: Any) -> Batcher:
    env = env or functools.partial(CountingEnv, n_envs=3)
    kw.setdefault("n_timesteps", 4)
    kw.setdefault("seeds", [0, 5])
    batcher: Batcher = cls(agent, env, **kw)
    return batcher


def execute_and_get(b: Batcher) -> Trajectories:
    """One collection: errors surface from execute() (local) or get() (processes)."""
    b.execute()
    return b.get()[0]


def collect_all(b: Batcher, **reset: Any) -> list[Trajectories]:
    b.reset(**reset)
    out = []
    n = b.n_envs
    while n:
        b.execute()
        tr, n = b.get()
        out.append(tr)
    return out


@pytest.mark.parametrize("cls", BATCHERS)
def test_shapes_keys_and_order(cls: BatcherKind) -> None:
    with make(cls, store_agent_state=True) as b:
        assert b.n_envs == 6
        b.reset()
        b.execute()
        tr, n = b.get()
    steps = tr.trajectories
    assert steps.batch_shape == (6, 4)
    assert {
        "observation/frame",
        "action/action",
        "_observation/frame",
        "agent_state/count",
        "_agent_state/count",
    } <= set(steps.keys())
    assert set(tr.info.keys()) == {"agent_state/count"}
    # rows ordered by worker then env: env k of seed s starts at s + k
    np.testing.assert_array_equal(steps["observation/frame"][:, 0, 0], [0, 1, 2, 5, 6, 7])
    assert steps.lengths.dtype == np.int64
    assert n == int((steps["_observation/done"][np.arange(6), steps.lengths - 1] == 0).sum())


@pytest.mark.parametrize("cls", OTHERS)
@pytest.mark.parametrize("auto_reset", [False, True])
@pytest.mark.parametrize("store", [False, True])
def test_identical_to_the_reference(cls: BatcherKind, auto_reset: bool, store: bool) -> None:
    env = functools.partial(CountingEnv, n_envs=3, auto_reset=auto_reset)
    runs = []
    for kind in (REFERENCE, cls):
        with make(kind, env, store_agent_state=store, n_timesteps=5) as b:
            runs.append(collect_all(b) if not auto_reset else _three(b))
    assert len(runs[0]) == len(runs[1])
    for a, c in zip(*runs, strict=True):
        assert a.equal(c)


def _three(b: Batcher) -> list[Trajectories]:
    b.reset()
    out = []
    for _ in range(3):
        b.execute()
        tr, n = b.get()
        assert n == b.n_envs
        out.append(tr)
    return out


def test_agent_seeds_make_stochastic_agents_reproducible() -> None:
    agent = functools.partial(CountingAgent, stochastic=True)
    runs = []
    for cls in [*AGENT_PER_WORKER, REFERENCE]:
        with make(cls, agent=agent, agent_seeds=[1, 2]) as b:
            runs.append(collect_all(b))
    for other in runs[1:]:
        for a, c in zip(runs[0], other, strict=True):
            assert a.equal(c)
    with make(REFERENCE, agent=agent, agent_seeds=[3, 4]) as b:
        different = collect_all(b)
    assert not all(a.equal(c) for a, c in zip(runs[0], different, strict=False))


@pytest.mark.parametrize("cls", BATCHERS)
def test_next_observation_layout(cls: BatcherKind) -> None:
    env = functools.partial(CountingEnv, n_envs=3, auto_reset=True)
    with make(cls, env, n_timesteps=7) as b:
        b.reset()
        b.execute()
        tr, _ = b.get()
    s = tr.trajectories
    nxt, cur = s["_observation/frame"][:, :-1], s["observation/frame"][:, 1:]
    done = s["_observation/done"][:, :-1]
    np.testing.assert_array_equal(nxt[~done], cur[~done])
    # after an episode end the next step starts a fresh episode
    assert s["observation/initial_state"][:, 1:][done].all()
    assert not s["observation/initial_state"][:, 1:][~done].any()
    # reward and last_action of the next observation come from the action taken
    np.testing.assert_array_equal(s["_observation/last_action"], s["action/action"])


@pytest.mark.parametrize("cls", BATCHERS)
def test_episode_mode_drops_ended_envs(cls: BatcherKind) -> None:
    with make(cls) as b:
        parts = collect_all(b)
        with pytest.raises(BatcherStateError, match="reset"):
            b.execute()
        total = sum(p.lengths for p in parts)
        # CountingEnv episode lengths: 3 + (seed + k) % 5
        np.testing.assert_array_equal(total, [3, 4, 5, 3 + 0, 3 + 1, 3 + 2])
        assert b.n_running == 0
        b.reset()  # starts again
        b.execute()
        tr, _ = b.get()
        assert tr.lengths.tolist() == [3, 4, 4, 3, 4, 4]


@pytest.mark.parametrize("cls", BATCHERS)
def test_continues_from_previous_execute(cls: BatcherKind) -> None:
    env = functools.partial(CountingEnv, n_envs=2, episode_length=100)
    with make(cls, env, n_timesteps=3) as b:
        b.reset()
        b.execute()
        first, _ = b.get()
        b.execute()
        second, _ = b.get()
    np.testing.assert_array_equal(
        first.trajectories["_observation/frame"][:, -1],
        second.trajectories["observation/frame"][:, 0],
    )
    # the agent state carried over: info holds the state at the start of the slice
    np.testing.assert_array_equal(second.info["agent_state/count"], [3, 3, 3, 3])


@pytest.mark.parametrize("cls", BATCHERS)
def test_agent_info_and_env_info_rows(cls: BatcherKind) -> None:
    example_ai = DictTensor({"scale": np.ones(1, np.float32)})
    example_ei = DictTensor({"offset": np.zeros(1, np.float32)})
    with make(cls, agent_info=example_ai, env_info=example_ei) as b:
        ai = DictTensor({"scale": np.arange(6, dtype=np.float32)})
        ei = DictTensor({"offset": np.full(6, 100, np.float32)})
        b.reset(agent_info=ai, env_info=ei)
        b.execute()
        tr, _ = b.get()
        np.testing.assert_array_equal(tr.info["agent_info/scale"], np.arange(6))
        np.testing.assert_array_equal(tr.info["env_info/offset"], np.full(6, 100))
        assert (tr.trajectories["observation/frame"][:, 0, 0] >= 100).all()
        s = tr.trajectories
        np.testing.assert_array_equal(
            s["action/scaled"][:, 0], np.arange(6) * s["action/action"][:, 0]
        )
        b.execute(agent_info=DictTensor({"scale": np.full(6, 2, np.float32)}))
        tr, _ = b.get()
        np.testing.assert_array_equal(tr.info["agent_info/scale"], np.full(6, 2))
        with pytest.raises(ValueError, match=r"batch_shape \(2,\), expected \(6,\)"):
            b.reset(agent_info=DictTensor({"scale": np.ones(2, np.float32)}))
        with pytest.raises(ValueError, match="specs"):
            b.reset(agent_info=DictTensor({"scale": np.ones(6, np.float64)}))


@pytest.mark.parametrize("cls", BATCHERS)
def test_update_reaches_every_agent(cls: BatcherKind) -> None:
    torch = pytest.importorskip("torch")
    with make(cls, functools.partial(CountingEnv, n_envs=2, auto_reset=True)) as b:
        b.reset()
        b.update({"w": np.array([3.5], np.float32)})
        b.execute()
        tr, _ = b.get()
        assert (tr.trajectories["action/weight"] == 3.5).all()
        b.execute()
        b.update({"w": torch.tensor([-1.0])})  # while collecting: applies from the next execute
        tr, _ = b.get()
        assert (tr.trajectories["action/weight"] == 3.5).all()
        b.execute()
        tr, _ = b.get()
        assert (tr.trajectories["action/weight"] == -1.0).all()
        b.update({"w": torch.tensor([[7.0, 0.0]]), "extra": "not an array"})  # new layout
        b.execute()
        tr, _ = b.get()
        assert (tr.trajectories["action/weight"] == 7.0).all()


@pytest.mark.parametrize("cls", BATCHERS)
def test_get_returns_data_the_caller_owns(cls: BatcherKind) -> None:
    env = functools.partial(CountingEnv, n_envs=2, auto_reset=True)
    with make(cls, env) as b:
        b.reset()
        b.execute()
        first, _ = b.get()
        kept = first.trajectories["observation/frame"].copy()
        execute_and_get(b)
        np.testing.assert_array_equal(first.trajectories["observation/frame"], kept)
        first.trajectories["observation/frame"][:] = -1  # writable, and ours


@pytest.mark.parametrize("cls", ASYNCHRONOUS)
def test_get_non_blocking_while_collecting(cls: BatcherKind) -> None:
    env = functools.partial(CountingEnv, n_envs=2, auto_reset=True, sleep=0.02)
    with make(cls, env, n_timesteps=10) as b:
        b.reset()
        b.execute()
        tr, n = b.get(blocking=False)
        assert tr is None
        assert n == b.n_envs
        work = 0
        while tr is None:
            work += 1  # the learner computes meanwhile
            time.sleep(0.01)
            tr, n = b.get(blocking=False)
        assert work > 0
        assert tr.lengths.tolist() == [10] * 4


@pytest.mark.parametrize("cls", BATCHERS)
def test_call_order_errors(cls: BatcherKind) -> None:
    b = make(cls)
    with pytest.raises(BatcherStateError, match="reset"):
        b.execute()
    b.reset()
    with pytest.raises(BatcherStateError, match="execute"):
        b.get()
    b.execute()
    with pytest.raises(BatcherStateError, match="get"):
        b.execute()
    with pytest.raises(BatcherStateError, match="get"):
        b.reset()
    b.get()
    b.close()
    b.close()  # idempotent
    assert b.closed
    with pytest.raises(BatcherStateError, match="closed"):
        b.reset()


@pytest.mark.parametrize("cls", BATCHERS)
def test_env_exception_is_worker_error(cls: BatcherKind) -> None:
    env = functools.partial(CountingEnv, n_envs=2, fail_at_step=2, fail_seed=5)
    b = make(cls, env)
    b.reset()
    with pytest.raises(WorkerError, match=r"worker 1 \(seed 5\) raised InjectedFault") as info:
        execute_and_get(b)
    assert "Traceback" in str(info.value)
    assert "testing.py" in info.value.remote_traceback
    assert info.value.worker == 1
    assert b.closed
    b.close()


@pytest.mark.parametrize("cls", BATCHERS)
def test_agent_exception_is_worker_error(cls: BatcherKind) -> None:
    agent = functools.partial(CountingAgent, fail_at_call=3)
    b = make(cls, agent=agent)
    b.reset()
    with pytest.raises(
        WorkerError,
        match=r"(worker \d \(seed \d\)|the agent) raised InjectedFault: CountingAgent fails at "
        r"call 3",
    ):
        execute_and_get(b)
    assert b.closed


@pytest.mark.parametrize("cls", WITH_ENV_PROCESSES)
def test_killed_worker_is_worker_error(cls: BatcherKind) -> None:
    """Within seconds: the test's timeout (no timing assertion) catches a hang."""
    env = functools.partial(CountingEnv, n_envs=2, kill_at_step=2, fail_seed=5)
    b = make(cls, env)
    b.reset()
    with pytest.raises(WorkerError, match=r"worker 1 .* killed by signal SIGKILL") as info:
        execute_and_get(b)
    assert info.value.worker == 1
    assert b.closed
    b.close()


@pytest.mark.parametrize("cls", BATCHERS)
@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ("no_action", "lacks key\\(s\\) 'action'"),
        ("batch", r"batch_shape \(5,\), expected \(6,\)|batch_shape \(2,\), expected \(3,\)"),
        ("dtype", r"action\['weight'\] is float64\[\] per row, expected float32\[\]"),
        ("shape", r"action\['weight'\] is float32\[2\] per row, expected float32\[\]"),
        ("not_dicttensor", "action must be a DictTensor, got dict"),
    ],
)
def test_bad_agent_output(cls: BatcherKind, bad: str, match: str) -> None:
    agent = functools.partial(CountingAgent, bad_output=bad, bad_at_call=2)
    b = make(cls, agent=agent)
    b.reset()
    with pytest.raises(AgentOutputError, match=match):
        execute_and_get(b)
    assert b.closed


@pytest.mark.parametrize("cls", BATCHERS)
def test_bad_output_at_probe_step(cls: BatcherKind) -> None:
    agent = functools.partial(CountingAgent, bad_output="no_action", bad_at_call=0)
    with pytest.raises(AgentOutputError, match="lacks the key 'action'"):
        make(cls, agent=agent)


@pytest.mark.parametrize("cls", BATCHERS)
def test_bad_constructor_arguments(cls: BatcherKind) -> None:
    with pytest.raises(ValueError, match="n_timesteps must be a positive int"):
        make(cls, n_timesteps=0)
    with pytest.raises(ValueError, match="at least one seed"):
        make(cls, seeds=[])
    with pytest.raises(ValueError, match="one agent seed per worker"):
        make(cls, agent_seeds=[1])
    with pytest.raises(TypeError, match="make_env\\(seed\\) must return a VecEnv"):
        make(cls, env=lambda seed: object())


@pytest.mark.parametrize("cls", BATCHERS)
def test_garbage_collection_releases_everything(cls: BatcherKind) -> None:
    b = make(cls)
    b.reset()
    b.execute()
    del b  # no close(): the finalizer stops the workers (checked by the no_leaks fixture)
    import gc

    gc.collect()


@pytest.mark.parametrize("cls", BATCHERS)
def test_worker_start_failure_is_reported(cls: BatcherKind) -> None:
    calls = functools.partial(CountingEnv, n_envs=2, fail_at_step=1)
    # the probe (in this process) does not step, so the failure shows up in the workers
    b = make(cls, calls)
    b.reset()
    with pytest.raises(WorkerError, match=r"worker \d \(seed \d\) raised InjectedFault"):
        execute_and_get(b)
