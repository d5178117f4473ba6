"""What agents get and what they must return, alike in both batchers and every env mode.

Env modes: episode (the step() path, envs drop out), auto-reset without step_into (the
step() path), and auto-reset with step_into (the fast path).
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from rlstructures.agents import Agent, replay_agent
from rlstructures.batchers import AgentOutputError, Batcher, WorkerError
from rlstructures.batchers.testing import CountingAgent, CountingEnv
from rlstructures.dicttensor import DictTensor, TemporalDictTensor, Trajectories
from tests.batchers.conftest import AGENT_SUITE, REFERENCE, BatcherKind
from tests.batchers.parts import (
    ENV_MODES,
    ContiguityAgent,
    KeylessAgent,
    PastActionsAgent,
    StateBreakingAgent,
)
from tests.batchers.test_contract import execute_and_get

pytestmark = pytest.mark.timeout(120)
MODES = list(ENV_MODES)


def collect(b: Batcher, slices: int) -> list[Trajectories]:
    """``slices`` collections (a reset when no env is left running)."""
    b.reset()
    out = []
    for _ in range(slices):
        if b.n_running == 0:
            b.reset()
        b.execute()
        tr, _ = b.get()
        out.append(tr)
    return out


# ---------------------------------------------------------------------- new_state checks
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", AGENT_SUITE)
@pytest.mark.parametrize(
    ("how", "match"),
    [
        ("batch", r"new_state has batch_shape \(4,\), expected \(3,\)"),
        ("key", r"new_state lacks key\(s\) 'h' and has unexpected key\(s\) 'g'"),
        ("shape", r"new_state\['h'\] is float32\[3\] per row, expected float32\[2\]"),
        ("dtype", r"new_state\['h'\] is float64\[2\] per row, expected float32\[2\]"),
        ("type", r"new_state must be a DictTensor, got dict"),
    ],
)
def test_a_wrong_new_state_is_caught_at_the_step_it_happens(
    cls: BatcherKind, mode: str, how: str, match: str
) -> None:
    # call 1 is the probe; in each worker call 1 is step 0: call 4 is step 3
    agent = functools.partial(StateBreakingAgent, how, at_call=4)
    with cls(agent, ENV_MODES[mode], n_timesteps=6, seeds=[0]) as b:
        b.reset()
        where = r"(worker 0|the agent \(InferenceBatcher\)), step 3: "
        with pytest.raises(AgentOutputError, match=where + match):
            execute_and_get(b)
        assert b.closed


def test_a_new_state_of_wrong_batch_size_at_the_probe_is_refused() -> None:
    agent = functools.partial(StateBreakingAgent, "batch", at_call=1)
    env = ENV_MODES["step_into"]
    with pytest.raises(AgentOutputError, match=r"probe \(agent call\): new_state has batch_shape"):
        REFERENCE(agent, env, n_timesteps=3, seeds=[0])


# ---------------------------------------------------------------------- keyless states
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", AGENT_SUITE)
def test_a_keyless_state_of_any_batch_shape_is_the_stateless_state(
    cls: BatcherKind, mode: str
) -> None:
    with cls(KeylessAgent, ENV_MODES[mode], n_timesteps=40, seeds=[0, 1]) as b:
        results = collect(b, 3)
    assert all(r.trajectories["action/action"].shape == (6, 40) for r in results)
    assert not results[0].info.select_prefix("agent_state/").keys()


# ---------------------------------------------------------------------- observations
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", AGENT_SUITE)
def test_observations_are_c_contiguous_in_every_mode(cls: BatcherKind, mode: str) -> None:
    pytest.importorskip("torch")
    with cls(ContiguityAgent, ENV_MODES[mode], n_timesteps=30, seeds=[0, 1]) as b:
        results = collect(b, 2)
    for tr in results:
        steps = tr.trajectories
        mask = steps.mask()
        assert steps["action/contiguous"][mask].all()
        frames = steps["observation/frame"].reshape(*steps.batch_shape, -1)
        np.testing.assert_array_equal(steps["action/row_sum"][mask], frames.sum(-1)[mask])


# ---------------------------------------------------------------------- history
class Recorder(PastActionsAgent):
    """Keeps every history it received (copies), in call order."""

    seen: list[TemporalDictTensor]

    def __init__(self) -> None:
        self.seen = []

    def __call__(
        self,
        state: DictTensor,
        observation: DictTensor,
        agent_info: DictTensor,
        history: TemporalDictTensor | None = None,
    ) -> tuple[DictTensor, DictTensor]:
        assert history is not None
        self.seen.append(history.clone() if hasattr(history, "clone") else history)
        return super().__call__(state, observation, agent_info, history)


@pytest.mark.parametrize("mode", MODES)
def test_history_holds_the_earlier_observations_and_actions_as_replay_rebuilds_them(
    mode: str,
) -> None:
    from rlstructures.batchers import LocalBatcher

    with LocalBatcher(Recorder, ENV_MODES[mode], n_timesteps=12, seeds=[0]) as b:
        b.reset()
        b.execute()
        tr, _ = b.get()
        agent = b._collectors[0].agent  # the acting copy (LocalBatcher keeps it here)
    assert isinstance(agent, Recorder)
    seen = agent.seen
    steps = tr.trajectories
    for t, history in enumerate(seen):
        expected = Agent.history_at(tr, t)
        running = np.flatnonzero(steps.lengths > t)
        assert set(history.keys()) == set(expected.keys())
        assert {k.split("/")[0] for k in history.keys()} == {"observation", "action"}
        for key in expected.keys():
            np.testing.assert_array_equal(history[key], expected[key][running], err_msg=key)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", AGENT_SUITE)
def test_replayed_outputs_equal_acting_outputs_for_an_agent_over_its_past_actions(
    cls: BatcherKind, mode: str
) -> None:
    with cls(PastActionsAgent, ENV_MODES[mode], n_timesteps=25, seeds=[0, 7]) as b:
        results = collect(b, 2)
    for tr in results:
        replayed = replay_agent(PastActionsAgent(), tr)
        acted = tr.trajectories.select_prefix("action/")
        mask = tr.trajectories.mask()
        assert int(acted["t"][mask].max()) > 5
        for key in ("action", "score", "seen", "t"):  # bit for bit
            np.testing.assert_array_equal(replayed[key][mask], acted[key][mask], err_msg=key)


# ---------------------------------------------------------------------- construction errors
@pytest.mark.parametrize("cls", AGENT_SUITE)
def test_an_empty_agent_info_example_says_to_pass_none(cls: BatcherKind) -> None:
    env = functools.partial(CountingEnv, n_envs=2)
    with pytest.raises(TypeError, match=r"agent_info=None"):
        cls(CountingAgent, env, n_timesteps=2, seeds=[0], agent_info=DictTensor({}))
    with pytest.raises(TypeError, match=r"env_info=None"):
        cls(CountingAgent, env, n_timesteps=2, seeds=[0], env_info=DictTensor({}))


def create_env(n_envs: int, env_id: str = "CartPole-v1", seed: int | None = None) -> object:
    """A factory whose seed is not its first parameter (the classic mistake)."""
    from rlstructures.agents import GymVecEnv

    return GymVecEnv(env_id, n_envs, seed)  # type: ignore[arg-type]  # None on purpose


@pytest.mark.parametrize("cls", AGENT_SUITE)
def test_a_seed_in_the_wrong_parameter_says_how_make_env_is_called(cls: BatcherKind) -> None:
    make_env = functools.partial(create_env, 4)  # make_env(0) -> create_env(4, 0): seed None
    with pytest.raises(TypeError) as info:
        cls(CountingAgent, make_env, n_timesteps=2, seeds=[0])  # type: ignore[arg-type]  # on purpose
    notes = "\n".join(getattr(info.value, "__notes__", []))
    if not hasattr(info.value, "add_note"):
        pytest.skip("exception notes need Python >= 3.11")
    assert "make_env(seed)" in notes
    assert "only positional argument" in notes


def missing_assets_env(seed: int) -> object:
    raise FileNotFoundError("assets/level1.txt")


def test_other_errors_of_make_env_get_no_advice_on_partial() -> None:
    from rlstructures.batchers import LocalBatcher

    with pytest.raises(FileNotFoundError) as info:
        LocalBatcher(CountingAgent, missing_assets_env, n_timesteps=2, seeds=[3])  # type: ignore[arg-type]  # on purpose
    notes = getattr(info.value, "__notes__", [])
    if not hasattr(info.value, "add_note"):
        pytest.skip("exception notes need Python >= 3.11")
    assert "raised by make_env(3)" in notes
    assert "partial" not in "\n".join(notes)


def test_worker_error_for_a_bad_new_state_keeps_the_worker_index() -> None:
    from rlstructures.batchers import MultiProcessBatcher

    agent = functools.partial(StateBreakingAgent, "dtype", at_call=3)
    with MultiProcessBatcher(agent, ENV_MODES["step_into"], n_timesteps=4, seeds=[0, 1]) as b:
        b.reset()
        with pytest.raises((AgentOutputError, WorkerError), match=r"worker [01], step \d"):
            execute_and_get(b)
