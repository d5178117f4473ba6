"""Cases found by trying the batchers as a new user: each was a bug or an unclear error."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from rlstructures.agents import Agent
from rlstructures.batchers import MultiProcessBatcher
from rlstructures.batchers.testing import CountingAgent, CountingEnv
from rlstructures.dicttensor import DictTensor, TemporalDictTensor
from tests.batchers.conftest import BATCHERS, BatcherKind

pytestmark = pytest.mark.timeout(60)
ENV = functools.partial(CountingEnv, n_envs=2)


def test_forkserver_start_method_works() -> None:
    results = []
    for method in ("spawn", "forkserver"):
        with MultiProcessBatcher(
            CountingAgent, ENV, n_timesteps=3, seeds=[0, 1], start_method=method
        ) as b:
            b.reset()
            b.execute()
            results.append(b.get()[0])
    assert results[0] is not None
    assert results[0].equal(results[1])


class HistoryAgent(Agent):
    """Acts on the sum of the frames seen so far in the slice."""

    def require_history(self) -> bool:
        return True

    def __call__(
        self,
        state: DictTensor,
        observation: DictTensor,
        agent_info: DictTensor,
        history: TemporalDictTensor | None = None,
    ) -> tuple[DictTensor, DictTensor]:
        assert history is not None
        seen = {f"observation/{k}" for k in observation.keys()}
        if history.keys() != seen:  # the probe step (outputs not known yet) has only these
            seen |= {"action/action", "action/t"}
        assert set(history.keys()) == seen
        past = history["observation/frame"][..., 0].sum(1).astype(np.int64)
        steps = np.full(len(observation), history.max_length, np.int64)
        return DictTensor({"action": past % 2, "t": steps}), state


@pytest.mark.parametrize("cls", BATCHERS)
def test_history_agent_sees_the_observation_and_action_keys_in_collection(
    cls: BatcherKind,
) -> None:
    with cls(HistoryAgent, ENV, n_timesteps=3, seeds=[0]) as b:
        b.reset()
        b.execute()
        tr, _ = b.get()
    np.testing.assert_array_equal(tr.trajectories["action/t"], [[0, 1, 2], [0, 1, 2]])


@pytest.mark.parametrize("cls", BATCHERS)
def test_steps_past_the_lengths_are_zeros(cls: BatcherKind) -> None:
    with cls(CountingAgent, ENV, n_timesteps=2, seeds=[0, 5]) as b:
        b.reset()
        b.execute()
        b.get()
        b.execute()  # episodes of 3 steps end at t=0: rows keep the first slice's data
        tr, _ = b.get()
    steps = tr.trajectories
    padding = ~steps.mask()
    assert padding.any()
    for key in steps.keys():
        assert not steps[key][padding].any(), key


@pytest.mark.parametrize("cls", BATCHERS)
def test_constructor_info_must_be_one_example_row(cls: BatcherKind) -> None:
    rows = DictTensor({"scale": np.arange(4, dtype=np.float32)})
    with pytest.raises(TypeError, match=r"one example row .* batch_shape \(1,\)"):
        cls(CountingAgent, ENV, n_timesteps=2, seeds=[0, 1], agent_info=rows)


def test_unpicklable_factories_are_named() -> None:
    with pytest.raises(TypeError, match="must be picklable"):
        MultiProcessBatcher(lambda: CountingAgent(), ENV, n_timesteps=2, seeds=[0])


@pytest.mark.parametrize("cls", BATCHERS)
def test_bfloat16_weights_reach_the_agents(cls: BatcherKind) -> None:
    torch = pytest.importorskip("torch")
    with cls(CountingAgent, ENV, n_timesteps=2, seeds=[0]) as b:
        b.reset()
        b.update({"w": torch.tensor([1.5], dtype=torch.bfloat16), "step": 3})
        b.execute()
        tr, _ = b.get()
    assert (tr.trajectories["action/weight"] == 1.5).all()


@pytest.mark.parametrize("cls", BATCHERS)
@pytest.mark.parametrize("device", ["gpu", "cuda:0"])
def test_bad_device_is_refused_at_construction(cls: BatcherKind, device: str) -> None:
    torch = pytest.importorskip("torch")
    if device == "cuda:0" and torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(ValueError, match="device="):
        cls(CountingAgent, ENV, n_timesteps=2, seeds=[0], device=device)


@pytest.mark.parametrize("cls", BATCHERS)
def test_cpu_device_spellings_return_numpy(cls: BatcherKind) -> None:
    torch = pytest.importorskip("torch")
    for device in ("cpu:0", torch.device("cpu")):
        with cls(CountingAgent, ENV, n_timesteps=2, seeds=[0], device=device) as b:
            b.reset()
            b.execute()
            tr, _ = b.get()
        assert tr.trajectories.backend == "numpy"


@pytest.mark.parametrize("cls", BATCHERS)
def test_argument_errors(cls: BatcherKind) -> None:
    with pytest.raises(TypeError, match="one seed per worker"):
        cls(CountingAgent, ENV, n_timesteps=2, seeds=5)  # type: ignore[arg-type]  # on purpose
    with cls(CountingAgent, ENV, n_timesteps=2, seeds=[0]) as b:
        b.reset()
        b.execute()
        with pytest.raises(ValueError, match="timeout must be None"):
            b.get(timeout=-1)
        b.get()


def test_timeout_names_the_busy_workers() -> None:
    slow = functools.partial(CountingEnv, n_envs=2, auto_reset=True, sleep=0.2)
    with MultiProcessBatcher(CountingAgent, slow, n_timesteps=20, seeds=[0, 1]) as b:
        b.reset()
        b.execute()
        with pytest.raises(TimeoutError, match=r"workers \[0, 1\] did not answer within 0.05 s"):
            b.get(timeout=0.05)
