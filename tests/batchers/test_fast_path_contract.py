"""What the step_into fast path must survive: envs breaking the protocol, aliasing agents,
callers changing their arrays, loops holding several results, Ctrl-C."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytest

from rlstructures.agents import Agent, EnvIds, GymVecEnv
from rlstructures.batchers import LocalBatcher, WorkerError
from rlstructures.dicttensor import DictTensor, TemporalDictTensor
from tests.batchers.conftest import BATCHERS, BatcherKind
from tests.batchers.test_step_into_path import (
    SEEDS,
    LeanAgent,
    PrevFrameViewAgent,
    StepOnly,
    assert_same_runs,
    collect,
    make_plain,
    make_step_only,
)

pytestmark = pytest.mark.timeout(120)


# ---------------------------------------------------------------------- envs breaking step_into
class Rebinds(StepOnly):
    """A naive step_into: puts its own arrays in ``out`` instead of writing into them."""

    @property
    def auto_reset(self) -> bool:
        return True

    def step_into(self, action: DictTensor, out: Any, final: Any) -> EnvIds:
        (_, ids), (cont, _) = self._env.step(action)
        for k, v in cont.items():
            out[k] = v
        return ids[:0]


def make_rebinds(seed: int) -> Rebinds:
    return Rebinds(make_plain(seed))


class ReturnsIds(StepOnly):
    """A correct step_into, except that it returns ``ids(ended)`` for its ended ids."""

    def __init__(self, env: GymVecEnv, ids: Any) -> None:
        super().__init__(env)
        self.ids = ids
        self.scratch = np.zeros(env.n_envs, np.int64)

    @property
    def auto_reset(self) -> bool:
        return True

    def step_into(self, action: DictTensor, out: Any, final: Any) -> EnvIds:
        ended = self._env.step_into(action, out, final)
        result: EnvIds = self.ids(self, ended)
        return result


def reused_array(env: ReturnsIds, ended: EnvIds) -> EnvIds:
    """The right ids, in an array the env overwrites at its next step."""
    env.scratch[:] = -1
    env.scratch[: len(ended)] = ended
    return env.scratch[: len(ended)]


def make_returning(seed: int, ids: Any) -> ReturnsIds:
    return ReturnsIds(make_plain(seed), ids)


def none_ids(env: ReturnsIds, ended: EnvIds) -> Any:
    return None


def float_ids(env: ReturnsIds, ended: EnvIds) -> Any:
    return ended.astype(np.float64)


def out_of_range_ids(env: ReturnsIds, ended: EnvIds) -> Any:
    return ended + 100


def negative_ids(env: ReturnsIds, ended: EnvIds) -> Any:
    return ended - 100


def test_an_env_that_rebinds_out_is_a_clear_type_error() -> None:
    with LocalBatcher(LeanAgent, make_rebinds, n_timesteps=5, seeds=SEEDS) as b:
        b.reset()
        with pytest.raises(WorkerError, match="does not support item assignment"):
            b.execute()


def test_ids_in_an_array_the_env_reuses_are_copied() -> None:
    expected = collect(LocalBatcher, LeanAgent, make_step_only, 50)
    got = collect(LocalBatcher, LeanAgent, functools.partial(make_returning, ids=reused_array), 50)
    assert_same_runs(got, expected)


def collect_once(b: Any) -> None:
    b.execute()
    b.get()


@pytest.mark.parametrize("ids", [none_ids, float_ids, out_of_range_ids, negative_ids])
@pytest.mark.parametrize("cls", BATCHERS)
def test_bad_ended_ids_name_step_into(cls: BatcherKind, ids: Any) -> None:
    with cls(LeanAgent, functools.partial(make_returning, ids=ids), n_timesteps=60,
             seeds=SEEDS) as b:
        b.reset()
        with pytest.raises(WorkerError, match=r"env.step_into returned .* 1-D int array"):
            collect_once(b)
        assert b.closed


# ---------------------------------------------------------------------- aliasing states
class PrevFrameTorchViewAgent(PrevFrameViewAgent):
    """Keeps ``torch.from_numpy(observation["frame"])`` (a view) as its state."""

    def __call__(
        self,
        state: DictTensor,
        observation: DictTensor,
        agent_info: DictTensor,
        history: TemporalDictTensor | None = None,
    ) -> tuple[DictTensor, DictTensor]:
        import torch

        out, _ = super().__call__(state.numpy(), observation, agent_info, history)
        return out, DictTensor({"prev": torch.from_numpy(observation["frame"])})


@pytest.mark.parametrize("store", [False, True])
@pytest.mark.parametrize("agent", ["numpy", "torch"])
def test_a_state_viewing_the_observation_keeps_its_values(agent: str, store: bool) -> None:
    if agent == "torch":
        pytest.importorskip("torch")
    make_agent = PrevFrameViewAgent if agent == "numpy" else PrevFrameTorchViewAgent
    for t in (1, 2):
        expected = collect(
            LocalBatcher, make_agent, make_step_only, t, n_slices=4, store_agent_state=store
        )
        got = collect(LocalBatcher, make_agent, make_plain, t, n_slices=4, store_agent_state=store)
        assert_same_runs(got, expected)


# ---------------------------------------------------------------------- agent_info rows
class SeesInfo(Agent):
    """Returns the agent_info ``k`` it was given as part of its action."""

    def __call__(
        self,
        state: DictTensor,
        observation: DictTensor,
        agent_info: DictTensor,
        history: TemporalDictTensor | None = None,
    ) -> tuple[DictTensor, DictTensor]:
        n = len(observation)
        return DictTensor({"action": np.zeros(n, np.int64), "k": agent_info["k"].copy()}), state


@pytest.mark.parametrize("cls", BATCHERS)
def test_agent_info_rows_are_copied_from_the_caller(cls: BatcherKind) -> None:
    example = DictTensor({"k": np.zeros(1, np.int64)})
    with cls(SeesInfo, make_plain, n_timesteps=3, seeds=SEEDS, agent_info=example) as b:
        rows = np.arange(b.n_envs, dtype=np.int64)
        b.reset(agent_info=DictTensor({"k": rows}))
        rows[:] = 99  # the caller reuses its array
        b.execute()
        first, _ = b.get()
        b.execute()  # no rows: keep the last ones
        second, _ = b.get()
    for tr in (first, second):
        seen = tr.trajectories["action/k"]
        assert (seen == np.arange(len(seen))[:, None]).all()
        assert (tr.info["agent_info/k"] == np.arange(len(seen))).all()


# ---------------------------------------------------------------------- output buffers
@pytest.mark.parametrize("cls", BATCHERS)
def test_a_loop_holding_the_previous_results_recycles_its_buffers(cls: BatcherKind) -> None:
    """The usual training loop: the previous result (and something made from the one before)
    are alive while the next collection is launched."""
    with cls(LeanAgent, make_plain, n_timesteps=5, seeds=SEEDS) as b:
        b.reset()
        previous: Any = None
        derived: Any = None
        buffers = set()
        for _ in range(12):
            b.execute()
            trajectories, _ = b.get()
            derived = previous.trajectories["observation/frame"][:, 1:] if previous else None
            previous = trajectories
            buffers.add(id(b._pool.outputs[-1]))
        assert derived is not None
        assert len(buffers) <= 3


# ---------------------------------------------------------------------- Ctrl-C
class Interrupts(LeanAgent):
    """Raises KeyboardInterrupt at its 4th call (as Ctrl-C would)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def __call__(
        self,
        state: DictTensor,
        observation: DictTensor,
        agent_info: DictTensor,
        history: TemporalDictTensor | None = None,
    ) -> tuple[DictTensor, DictTensor]:
        self.calls += 1
        if self.calls == 4:
            raise KeyboardInterrupt
        return super().__call__(state, observation, agent_info, history)


def test_ctrl_c_in_local_execute_closes_the_batcher() -> None:
    with LocalBatcher(Interrupts, make_plain, n_timesteps=10, seeds=SEEDS) as b:
        b.reset()  # the probe step was call 1 of the probe agent, not of these
        with pytest.raises(KeyboardInterrupt):
            b.execute()
        assert b.closed
