"""GymVectorVecEnv: a gymnasium VectorEnv as a VecEnv, against GymVecEnv over the same envs."""

from __future__ import annotations

import functools
import pickle
import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import numpy.typing as npt
import pytest
import torch
from gymnasium import spaces
from gymnasium.vector import AsyncVectorEnv, AutoresetMode
from gymnasium.wrappers.vector import NormalizeObservation, RecordEpisodeStatistics
from hypothesis import given, settings
from hypothesis import strategies as st

from rlstructures.agents import GymVecEnv, GymVectorVecEnv, VecEnv
from rlstructures.agents.errors import (
    ActionError,
    EnvError,
    EnvInfoError,
    EnvStateError,
    ObservationError,
    UnsupportedSpaceError,
)
from rlstructures.dicttensor import DictTensor
from tests.agents.vector_helpers import (
    ACTION_KINDS,
    RESTARTS,
    ActionKind,
    WalkEnv,
    frame_of,
    make_walk,
    per_env_walk,
    policy,
    sync_walk,
    vector_walk,
)

Transition = tuple[dict[str, Any], Any, dict[str, Any]]


def act(obs: DictTensor, kind: ActionKind) -> DictTensor:
    action = policy(frame_of(obs), kind)
    if kind == "box":
        action = action.astype(np.float32)
    return DictTensor({"action": action}, batch_shape=(len(obs),))


def row(obs: DictTensor, j: int) -> dict[str, Any]:
    return {k: v[j].tolist() for k, v in obs.items()}


def transitions(env: VecEnv, kind: ActionKind, steps: int) -> list[list[Transition]]:
    """Run ``env`` with the deterministic policy; per env, its (obs, action, next_obs) list."""
    per_env: list[list[Transition]] = [[] for _ in range(env.n_envs)]
    obs, ids = env.reset()
    for _ in range(steps):
        if not len(ids):
            break
        action = act(obs, kind)
        (nxt, nxt_ids), (cont, cont_ids) = env.step(action)
        assert nxt_ids.tolist() == ids.tolist()
        for j, k in enumerate(ids.tolist()):
            per_env[k].append((row(obs, j), action["action"][j].tolist(), row(nxt, j)))
        obs, ids = cont, cont_ids
    return per_env


@settings(max_examples=30)
@given(
    restart=st.sampled_from(sorted(RESTARTS)),
    auto_reset=st.booleans(),
    action_kind=st.sampled_from(ACTION_KINDS),
    dict_obs=st.booleans(),
    info=st.booleans(),
    n_envs=st.integers(1, 4),
    seed=st.integers(0, 10_000),
)
def test_step_matches_gym_vec_env(
    restart: str,
    auto_reset: bool,
    action_kind: ActionKind,
    dict_obs: bool,
    info: bool,
    n_envs: int,
    seed: int,
) -> None:
    kw: dict[str, Any] = {"n_envs": n_envs, "auto_reset": auto_reset, "dict_obs": dict_obs}
    kw["action_kind"] = action_kind
    kw["info_keys"] = ("t",) if info else ()
    with (
        vector_walk(seed, restart=restart, **kw) as mine,
        per_env_walk(seed, **kw) as ref,
    ):
        ours, theirs = transitions(mine, action_kind, 30), transitions(ref, action_kind, 30)
    sits_out = auto_reset and restart == "next_step+reset_steps"
    for k in range(n_envs):
        if sits_out:  # one step per reset spent out of the ids: fewer transitions, same ones
            assert 0 < len(ours[k]) <= len(theirs[k])
            assert ours[k] == theirs[k][: len(ours[k])]
        else:
            assert ours[k] == theirs[k]
    if auto_reset:
        assert any(t[2]["done"] for per in ours for t in per)  # across episode ends


@pytest.mark.parametrize("restart", sorted(RESTARTS))
def test_step_into_agrees_with_step(restart: str) -> None:
    """``out`` with the ended rows from ``final`` is step's next observation."""
    env_a = vector_walk(5, n_envs=3, restart=restart, auto_reset=True)
    env_b = vector_walk(5, n_envs=3, restart=restart, auto_reset=True)
    obs, _ = env_a.reset()
    env_b.reset()
    out, final = obs.clone().to_dict(), obs.clone().to_dict()
    reset_steps = 0
    for _ in range(25):
        action = act(DictTensor(out), "discrete")
        ended = env_a.step_into(action, out, final)
        skipped = env_a.reset_step_ids
        reset_steps += len(skipped)
        assert out["initial_state"][skipped].all()
        assert not out["reward"][skipped].any()
        assert final["done"][ended].all()
        assert out["initial_state"][ended].all()
        if restart == "next_step+reset_steps":
            continue  # step() makes those envs sit out instead: checked above
        (nxt, _), (cont, ids) = env_b.step(action)
        expected = {k: v.copy() for k, v in out.items()}
        for k in expected:
            expected[k][ended] = final[k][ended]
        assert DictTensor(expected).equal(nxt)
        assert DictTensor(out).equal(cont)
        assert ids.tolist() == [0, 1, 2]
    assert (reset_steps > 0) == (restart == "next_step+reset_steps")
    env_a.close()
    env_b.close()


def test_reset_step_placeholder_then_fresh_start() -> None:
    """NEXT_STEP without partial resets: the ended env's row holds its final frame first."""
    env = vector_walk(1, n_envs=2, restart="next_step+reset_steps", auto_reset=True)
    obs, _ = env.reset()
    out, final = obs.clone().to_dict(), obs.clone().to_dict()
    for _ in range(20):
        ended = env.step_into(act(DictTensor(out), "discrete"), out, final)
        if len(ended):
            break
    k = int(ended[0])
    np.testing.assert_array_equal(out["frame"][k], final["frame"][k])  # the placeholder
    assert out["initial_state"][k]
    assert not out["done"][k]
    env.step_into(act(DictTensor(out), "discrete"), out, final)
    assert k in env.reset_step_ids.tolist()
    assert out["initial_state"][k]
    assert out["reward"][k] == 0
    assert np.abs(out["frame"][k]).max() <= 1.0  # a fresh start: uniform(-1, 1)
    env.close()


def test_vector_entry_point_cartpole_and_pickled_factory() -> None:
    make = functools.partial(GymVectorVecEnv.from_id, "CartPole-v1", 16, auto_reset=True)
    make = pickle.loads(pickle.dumps(make))
    with make(0) as env:
        assert env.n_envs == 16
        assert env.autoreset_mode is AutoresetMode.NEXT_STEP
        assert "restart=reset_step" in repr(env)
        obs, _ = env.reset()
        out, final = obs.clone().to_dict(), obs.clone().to_dict()
        ends = 0
        for _ in range(40):
            ends += len(env.step_into(DictTensor({"action": np.ones(16, np.int64)}), out, final))
        assert ends >= 16  # always pushing right: every pole falls within 40 steps
        assert (np.abs(final["frame"][:, 2]) > 0.2).all()  # the final, fallen poles


@pytest.mark.parametrize("auto_reset", [True, False])
def test_async_vector_env(auto_reset: bool) -> None:
    fns = [functools.partial(make_walk, "multidiscrete", True)] * 2
    with (
        GymVectorVecEnv(lambda: AsyncVectorEnv(fns), 3, auto_reset) as mine,
        per_env_walk(
            3, n_envs=2, auto_reset=auto_reset, action_kind="multidiscrete", dict_obs=True
        ) as ref,
    ):
        ours = transitions(mine, "multidiscrete", 12)
        assert ours == transitions(ref, "multidiscrete", 12)
    assert list(ours[0][0][0])[:2] == ["pos", "t"]


def test_vector_wrappers_record_statistics_and_normalize() -> None:
    def make() -> Any:
        venv = RecordEpisodeStatistics(sync_walk(3, AutoresetMode.NEXT_STEP))
        return NormalizeObservation(venv)

    with GymVectorVecEnv(make, 0, auto_reset=True, info_keys=("episode/l",)) as env:
        assert env.vector_env.num_envs == 3
        assert "restart=reset_step" in repr(env)  # both wrappers mishandle partial resets
        obs, _ = env.reset()
        assert obs["frame"].dtype == np.float32
        out, final = obs.clone().to_dict(), obs.clone().to_dict()
        ended, lengths = 0, np.zeros(3, np.int64)
        for _ in range(30):
            lengths += 1
            done = env.step_into(act(DictTensor(out), "discrete"), out, final)
            lengths[env.reset_step_ids] = 0  # a reset step is no step of an episode
            np.testing.assert_array_equal(final["info/episode/l"][done], lengths[done])
            ended += len(done)
        assert ended > 0
        assert env.vector_env.env.episode_count == ended  # the statistics saw every end
        assert np.isfinite(out["frame"]).all()


def test_record_episode_statistics_over_sync_gets_no_partial_resets() -> None:
    """Its statistics would restart for every sub-env at one (gymnasium 1.4)."""

    def make() -> Any:
        return RecordEpisodeStatistics(gym.make_vec("CartPole-v1", 4, vectorization_mode="sync"))

    with GymVectorVecEnv(make, 0, auto_reset=True, info_keys={"episode/l": "int64"}) as env:
        assert "restart=reset_step" in repr(env)
        obs, _ = env.reset()
        out, final = obs.clone().to_dict(), obs.clone().to_dict()
        for _ in range(40):
            ended = env.step_into(DictTensor({"action": np.ones(4, np.int64)}), out, final)
            assert (final["info/episode/l"][ended] >= 7).all()  # pushing right: >= 7 steps
    with pytest.raises(EnvError, match="RecordEpisodeStatistics restarts the statistics"):
        GymVectorVecEnv(make, 0, partial_reset="reset_mask")


def test_torch_actions_and_box_bounds() -> None:
    with vector_walk(0, n_envs=2, restart="same_step", auto_reset=True, action_kind="box") as env:
        env.reset()
        env.step(DictTensor({"action": torch.zeros(2, 2)}))
        with pytest.raises(ActionError, match="outside the box action space"):
            env.step(DictTensor({"action": np.full((2, 2), 3.0, np.float32)}))


# ---------------------------------------------------------------------- env_info, partial resets
class OptionsVectorEnv(gym.vector.VectorEnv[Any, Any, Any]):
    """Records the options of every reset; episodes of ``length`` steps; any autoreset mode."""

    def __init__(
        self,
        num_envs: int = 3,
        mode: AutoresetMode = AutoresetMode.DISABLED,
        length: int = 2,
        obs_rows: int | None = None,
        reward_shape: Any = None,
    ) -> None:
        self.num_envs = num_envs
        self.metadata = {"autoreset_mode": mode}
        self.single_observation_space = spaces.Box(-100, 100, (1,), np.float32)
        self.single_action_space = spaces.Discrete(2)
        self.length, self.obs_rows, self.reward_shape = length, obs_rows, reward_shape
        self.resets: list[dict[str, Any] | None] = []
        self.t = np.zeros(num_envs, np.int64)

    def _obs(self) -> npt.NDArray[np.float32]:
        rows = self.num_envs if self.obs_rows is None else self.obs_rows
        return self.t[:rows, None].astype(np.float32)

    def reset(self, *, seed: Any = None, options: dict[str, Any] | None = None) -> Any:
        self.resets.append(None if options is None else dict(options))
        mask = (options or {}).get("reset_mask")
        self.t[mask if mask is not None else slice(None)] = 0
        return self._obs(), {}

    def step(self, actions: Any) -> Any:
        self.t += 1
        done = self.t >= self.length
        reward = np.ones(self.reward_shape or self.num_envs)
        return self._obs(), reward, done, np.zeros(self.num_envs, np.bool_), {}


def test_env_info_goes_to_reset_options_and_partial_resets() -> None:
    venv = OptionsVectorEnv()
    with GymVectorVecEnv(venv, 0, auto_reset=True) as env:
        task = np.array([4, 5, 6])
        env.reset(DictTensor({"task": task}))
        for _ in range(2):
            (nxt, _), (cont, _) = env.step(DictTensor({"action": np.zeros(3, np.int64)}))
        assert nxt["done"].all()
        assert nxt["frame"][:, 0].tolist() == [2, 2, 2]
        assert cont["initial_state"].all()
        assert cont["frame"][:, 0].tolist() == [0, 0, 0]
        first, partial = venv.resets
        assert first is not None
        assert first["task"].tolist() == [4, 5, 6]
        assert partial is not None
        assert partial["reset_mask"].tolist() == [True] * 3
        assert partial["task"].tolist() == [4, 5, 6]
        with pytest.raises(EnvInfoError, match=r"expected \(3,\)"):
            env.reset(DictTensor({"task": task[:2]}))


def test_episode_mode_disabled_restarts_ended_envs_out_of_sight() -> None:
    venv = OptionsVectorEnv(mode=AutoresetMode.DISABLED, length=1)
    with GymVectorVecEnv(venv, 0) as env:
        env.reset()
        (nxt, _), (cont, cont_ids) = env.step(DictTensor({"action": np.zeros(3, np.int64)}))
        assert nxt["done"].all()
        assert len(cont) == 0
        assert cont_ids.tolist() == []
        assert len(venv.resets) == 2  # the partial reset, before any further step
        with pytest.raises(EnvStateError, match="no env is running"):
            env.step(DictTensor({"action": np.zeros(0, np.int64)}))


# ---------------------------------------------------------------------- bad input
def test_num_envs_other_than_expected() -> None:
    with pytest.raises(EnvError, match=r"num_envs=3, but n_envs=4 was expected"):
        GymVectorVecEnv(OptionsVectorEnv(), 0, n_envs=4)
    env = GymVectorVecEnv(OptionsVectorEnv(), 0)  # None: whatever it has
    assert env.n_envs == 3
    env.reset()
    with pytest.raises(ActionError, match=r"expected \(3,\)"):
        env.step(DictTensor({"action": np.zeros(4, np.int64)}))
    with pytest.raises(ActionError, match="batch_shape"):
        env.step(
            DictTensor({"action": np.zeros(2, np.int64)}, batch_shape=(2,))
            | DictTensor({"x": np.zeros(2)})
        )


def test_autoreset_mode_missing_unknown_or_given() -> None:
    venv = OptionsVectorEnv()
    venv.metadata = {}
    with pytest.raises(EnvError, match=r"no 'autoreset_mode'.*autoreset_mode=AutoresetMode"):
        GymVectorVecEnv(venv, 0)
    venv.metadata = {"autoreset_mode": "EveryOtherStep"}
    with pytest.raises(EnvError, match=r"'EveryOtherStep'.*NEXT_STEP, SAME_STEP or DISABLED"):
        GymVectorVecEnv(venv, 0)
    env = GymVectorVecEnv(venv, 0, autoreset_mode="SameStep")
    assert env.autoreset_mode is AutoresetMode.SAME_STEP
    with pytest.raises(EnvError, match="'sometimes'"):
        GymVectorVecEnv(venv, 0, autoreset_mode="sometimes")


def test_same_step_without_final_obs_is_an_error() -> None:
    venv = OptionsVectorEnv(mode=AutoresetMode.SAME_STEP, length=1)
    with GymVectorVecEnv(venv, 0, auto_reset=True) as env:
        env.reset()
        with pytest.raises(ObservationError, match="no 'final_obs'"):
            env.step(DictTensor({"action": np.zeros(3, np.int64)}))


def test_partial_reset_choices() -> None:
    with pytest.raises(ValueError, match="partial_reset must be one of"):
        GymVectorVecEnv(OptionsVectorEnv(), 0, partial_reset="sometimes")  # type: ignore[arg-type]  # on purpose
    with pytest.raises(EnvError, match="would never restart"):
        GymVectorVecEnv(OptionsVectorEnv(), 0, partial_reset="none")
    custom = OptionsVectorEnv(mode=AutoresetMode.NEXT_STEP)
    assert "restart=reset_step" in repr(GymVectorVecEnv(custom, 0))
    assert "restart=partial" in repr(GymVectorVecEnv(custom, 0, partial_reset="reset_mask"))


def test_unmappable_spaces() -> None:
    venv = OptionsVectorEnv()
    venv.single_observation_space = spaces.Text(5)
    with pytest.raises(UnsupportedSpaceError, match="Text"):
        GymVectorVecEnv(venv, 0)
    venv = OptionsVectorEnv()
    venv.single_action_space = spaces.Dict({"a": spaces.Discrete(2)})
    with pytest.raises(UnsupportedSpaceError, match="Dict"):
        GymVectorVecEnv(venv, 0)


def test_what_is_not_a_vector_env() -> None:
    with pytest.raises(EnvError, match=r"from_id\('CartPole-v1'"):
        GymVectorVecEnv("CartPole-v1", 0)
    with pytest.raises(EnvError, match=r"a single env, not a gymnasium VectorEnv.*GymVecEnv"):
        GymVectorVecEnv(lambda: WalkEnv(), 0)
    with pytest.raises(EnvError, match="no arguments"):
        GymVectorVecEnv(lambda seed: sync_walk(2, AutoresetMode.NEXT_STEP), 0)
    with pytest.raises(EnvError, match="lacks"):
        GymVectorVecEnv(42, 0)
    with pytest.raises(TypeError, match="seed must be an int"):
        GymVectorVecEnv(OptionsVectorEnv(), 0.5)  # type: ignore[arg-type]  # on purpose
    with pytest.raises(ValueError, match="vectorization_mode must be one of"):
        GymVectorVecEnv.from_id("CartPole-v1", 2, 0, vectorization_mode="threads")


def test_vector_env_breaking_the_api() -> None:
    with GymVectorVecEnv(OptionsVectorEnv(obs_rows=2), 0) as env:
        with pytest.raises(ObservationError, match=r"shape \(2, 1\), expected \(3, 1\)"):
            env.reset()
    with GymVectorVecEnv(OptionsVectorEnv(reward_shape=2), 0) as env:
        env.reset()
        with pytest.raises(ObservationError, match=r"rewards of shape \(2,\), expected \(3,\)"):
            env.step(DictTensor({"action": np.zeros(3, np.int64)}))



class UncastableVectorEnv(OptionsVectorEnv):
    """Steps return strings as observations, or a dict among the rewards."""

    def __init__(self, what: str) -> None:
        super().__init__(mode=AutoresetMode.NEXT_STEP)
        self.what = what

    def step(self, actions: Any) -> Any:
        obs, reward, term, trunc, info = super().step(actions)
        if self.what == "frame":
            obs = np.full(obs.shape, "up")
        else:
            reward = np.array([{"r": 1}, 1.0, 1.0], dtype=object)
        return obs, reward, term, trunc, info


@pytest.mark.parametrize("what", ["frame", "reward"])
@pytest.mark.parametrize("method", ["step", "step_into"])
def test_values_numpy_cannot_cast_name_the_key(what: str, method: str) -> None:
    with GymVectorVecEnv(UncastableVectorEnv(what), 0, auto_reset=True) as env:
        obs, _ = env.reset()
        action = DictTensor({"action": np.zeros(3, np.int64)})
        match = rf"returned at {method}\(\) '{what}' values of dtype \S+ that do not convert"
        out, final = obs.clone().to_dict(), obs.clone().to_dict()
        call = functools.partial(env.step, action) if method == "step" else functools.partial(
            env.step_into, action, out, final
        )
        with pytest.raises(ObservationError, match=match):
            call()

def test_states() -> None:
    env = GymVectorVecEnv(OptionsVectorEnv(), 0)
    with pytest.raises(EnvStateError, match="before reset"):
        env.step(DictTensor({"action": np.zeros(3, np.int64)}))
    env.reset()
    obs = env.reset()[0].to_dict()
    with pytest.raises(EnvStateError, match="episode mode"):
        env.step_into(DictTensor({"action": np.zeros(3, np.int64)}), obs, obs)
    env.close()
    env.close()
    with pytest.raises(EnvStateError, match="closed"):
        env.reset()
    auto = GymVectorVecEnv(OptionsVectorEnv(), 0, auto_reset=True)
    obs = auto.reset()[0].to_dict()
    with pytest.raises(KeyError, match="`final` lacks the observation key 'reward'"):
        auto.step_into(DictTensor({"action": np.zeros(3, np.int64)}), obs, {"frame": obs["frame"]})
    auto.close()


@pytest.mark.filterwarnings("ignore:.*precision lowered:UserWarning")
def test_envpool_pool_uses_env_id_partial_resets() -> None:
    envpool = pytest.importorskip("envpool")
    pool = envpool.make("CartPole-v1", env_type="gymnasium", num_envs=4, seed=0)
    with GymVectorVecEnv(pool, 0, auto_reset=True, n_envs=4) as env, warnings.catch_warnings():
        warnings.simplefilter("error")  # no reset(seed=...) warning: EnvPool seeds at make
        assert "restart=partial" in repr(env)
        obs, _ = env.reset()
        out, final = obs.clone().to_dict(), obs.clone().to_dict()
        ends = 0
        for _ in range(30):
            ended = env.step_into(DictTensor({"action": np.ones(4, np.int64)}), out, final)
            ends += len(ended)
            assert out["initial_state"][ended].all()
            assert not len(env.reset_step_ids)
        assert ends >= 4


def test_normalize_observation_refuses_partial_resets() -> None:
    """gymnasium's NormalizeObservation (NEXT_STEP only): reset steps, not partial resets."""

    def make(mode: AutoresetMode) -> Any:
        return NormalizeObservation(sync_walk(2, mode))

    env = GymVectorVecEnv(functools.partial(make, AutoresetMode.NEXT_STEP), 0)
    assert "restart=reset_step" in repr(env)
    with pytest.raises(
        EnvError, match=r"NormalizeObservation refuses partial resets\. Use partial_reset='auto'"
    ):
        GymVectorVecEnv(
            functools.partial(make, AutoresetMode.NEXT_STEP), 0, partial_reset="reset_mask"
        )


def statistics_over_sync(mode: AutoresetMode) -> Any:
    return RecordEpisodeStatistics(
        gym.make_vec("CartPole-v1", 3, vectorization_mode="sync",
                     vector_kwargs={"autoreset_mode": mode})
    )


def episode_lengths(env: VecEnv, steps: int) -> tuple[list[tuple[int, int]], int]:
    """Always pushing right: ``(env, info/episode/l)`` of each final observation, in order,
    and the sum of ``info/episode/l`` over the observations that are not final."""
    ends: list[tuple[int, int]] = []
    elsewhere = 0
    obs, ids = env.reset()
    for _ in range(steps):
        if not len(ids):
            break
        (nxt, nxt_ids), (obs, ids) = env.step(DictTensor({"action": np.ones(len(ids), np.int64)}))
        done = nxt["done"]
        ends += zip(nxt_ids[done].tolist(), nxt["info/episode/l"][done].tolist(), strict=True)
        elsewhere += int(nxt["info/episode/l"][~done].sum() + obs["info/episode/l"].sum())
    return ends, elsewhere


@pytest.mark.parametrize("auto_reset", [True, False])
def test_record_episode_statistics_same_step_on_the_final_observations(auto_reset: bool) -> None:
    """Over a SAME_STEP env the wrapper puts the ended episodes' statistics in the step's
    info, not in final_info: they belong to the final observations, as with GymVecEnv."""
    info_keys = {"episode/l": "int64"}

    def per_env() -> Any:
        return gym.wrappers.RecordEpisodeStatistics(gym.make("CartPole-v1"))

    with GymVecEnv(per_env, 3, 0, auto_reset, info_keys=info_keys) as ref:
        expected = episode_lengths(ref, 40)
    make = functools.partial(statistics_over_sync, AutoresetMode.SAME_STEP)
    with GymVectorVecEnv(make, 0, auto_reset, info_keys=info_keys) as env:
        assert "restart=same_step" in repr(env)
        assert episode_lengths(env, 40) == expected
    assert expected[0]
    assert expected[0][0][1] >= 7  # pushing right: >= 7 steps
    assert expected[1] == 0


def test_record_episode_statistics_over_disabled_is_an_error() -> None:
    """Only partial resets restart a DISABLED env, and at each one the wrapper restarts the
    statistics of every sub-env (gymnasium 1.4): wrong episode lengths, so refused."""
    make = functools.partial(statistics_over_sync, AutoresetMode.DISABLED)
    with pytest.raises(EnvError, match=r"DISABLED.*RecordEpisodeStatistics.*NEXT_STEP"):
        GymVectorVecEnv(make, 0, auto_reset=True)


def test_list_infos_of_dict_info_to_list_are_an_error_not_zeros() -> None:
    """gymnasium's DictInfoToList makes per-env info lists, which the adapter cannot read."""
    from gymnasium.wrappers.vector import DictInfoToList

    venv = DictInfoToList(sync_walk(2, AutoresetMode.NEXT_STEP))
    with GymVectorVecEnv(venv, 0, auto_reset=True, info_keys=("t",)) as env:
        with pytest.raises(ObservationError, match=r"from reset\(\) is a list .*DictInfoToList"):
            env.reset()
    venv = DictInfoToList(sync_walk(2, AutoresetMode.SAME_STEP))
    with GymVectorVecEnv(venv, 0, auto_reset=True) as env:
        env.reset()

        def run() -> None:
            for _ in range(10):  # the walks end within 7 steps
                env.step(DictTensor({"action": np.zeros(2, np.int64)}))

        with pytest.raises(ObservationError, match=r"is a list .* not a dict"):
            run()


def test_forced_env_id_partial_reset_needs_an_env_id_parameter() -> None:
    with pytest.raises(EnvError, match="without an env_id parameter"):
        GymVectorVecEnv(sync_walk(2, AutoresetMode.NEXT_STEP), 0, partial_reset="env_id")
