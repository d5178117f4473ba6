"""The envs the algorithms train on: what their spaces are, and the VecEnv factory.

Torch-free: worker processes import this module (through the pickled ``make_env``).
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Any

from rlstructures.agents import GymVecEnv
from rlstructures.algos._registry import ActionKind, algorithm, algorithms_for
from rlstructures.algos.errors import ConfigError, UnsupportedSpaceError

__all__ = ["EnvInfo", "check_actions", "describe_env", "make_vec_env"]


@dataclass(frozen=True, slots=True)
class EnvInfo:
    """What an algorithm needs to know about an env.

    Attributes:
        env_id: the gymnasium id.
        obs_shape: the row shape of ``"frame"``.
        obs_dim: the size of the flat float observation the networks take (for a Discrete
            observation space: its number of values, one-hot encoded).
        obs_discrete: True for a Discrete observation space (one-hot encoded).
        action_kind: ``"discrete"`` or ``"box"``.
        n_actions: the number of actions (discrete), else 0.
        action_shape: the action's row shape (box), ``()`` for discrete.
        action_low, action_high: the Box bounds, flattened (empty for discrete).
        max_episode_steps: the env's time limit, or None.
    """

    env_id: str
    obs_shape: tuple[int, ...]
    obs_dim: int
    obs_discrete: bool
    action_kind: ActionKind
    n_actions: int
    action_shape: tuple[int, ...]
    action_low: tuple[float, ...]
    action_high: tuple[float, ...]
    max_episode_steps: int | None

    @property
    def action_dim(self) -> int:
        """Flat size of an action: ``n_actions`` for discrete, the Box size otherwise."""
        return self.n_actions if self.action_kind == "discrete" else math.prod(self.action_shape)


def _make(env_id: str) -> Any:
    import gymnasium

    registry = gymnasium.envs.registry
    if env_id not in registry and ":" not in env_id:  # "module:Env-v0" imports the module
        close = difflib.get_close_matches(env_id, list(registry), n=3)
        hint = (
            f"; did you mean {', '.join(map(repr, close))}?"
            if close
            else (
                '; `python -c "import gymnasium; print(list(gymnasium.envs.registry))"` lists them.'
            )
        )
        raise ConfigError(f"unknown env id {env_id!r} (not registered in gymnasium){hint}")
    try:
        return gymnasium.make(env_id)
    except Exception as exc:  # a missing extra (box2d, mujoco, ...) or a broken env
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"gymnasium.make({env_id!r}) failed: {first}") from exc


def describe_env(env_id: str) -> EnvInfo:
    """Make the env once, read its spaces and time limit, close it.

    Raises:
        ConfigError: the id is not registered, or making the env failed.
        UnsupportedSpaceError: the observation is not a Box or Discrete space, or the action
            space not a Discrete or Box one.
    """
    from gymnasium import spaces

    env = _make(env_id)
    try:
        obs_space, action_space = env.observation_space, env.action_space
        spec = getattr(env, "spec", None)
        max_steps = getattr(spec, "max_episode_steps", None)
    finally:
        env.close()
    if isinstance(obs_space, spaces.Box):
        obs_shape = tuple(int(d) for d in obs_space.shape)
        obs_dim, obs_discrete = math.prod(obs_shape), False
    elif isinstance(obs_space, spaces.Discrete):
        obs_shape, obs_dim, obs_discrete = (), int(obs_space.n), True
    else:
        raise UnsupportedSpaceError(
            f"{env_id} has the observation space {obs_space}; the algorithms' networks take a "
            "Box (flattened) or Discrete (one-hot) observation. Wrap the env with "
            "`gymnasium.wrappers.FlattenObservation` or write an ObservationWrapper."
        )
    if isinstance(action_space, spaces.Discrete):
        if int(action_space.start) != 0:
            raise UnsupportedSpaceError(
                f"{env_id} has the action space {action_space} starting at "
                f"{int(action_space.start)}; the algorithms need Discrete(n) starting at 0."
            )
        return EnvInfo(
            env_id,
            obs_shape,
            obs_dim,
            obs_discrete,
            "discrete",
            int(action_space.n),
            (),
            (),
            (),
            max_steps,
        )
    if isinstance(action_space, spaces.Box):
        low = tuple(float(x) for x in action_space.low.reshape(-1))
        high = tuple(float(x) for x in action_space.high.reshape(-1))
        if not all(math.isfinite(x) for x in (*low, *high)):
            raise UnsupportedSpaceError(
                f"{env_id} has the action space {action_space} with infinite bounds; the "
                "policies need finite bounds (wrap it with `gymnasium.wrappers.RescaleAction`)."
            )
        shape = tuple(int(d) for d in action_space.shape)
        return EnvInfo(
            env_id, obs_shape, obs_dim, obs_discrete, "box", 0, shape, low, high, max_steps
        )
    raise UnsupportedSpaceError(
        f"{env_id} has the action space {action_space}; the algorithms handle Discrete "
        "(a2c, ppo, ddqn) and Box (a2c, ppo, sac) action spaces."
    )


def check_actions(info: EnvInfo, algo: str) -> None:
    """Raise when ``algo`` cannot handle the action space of ``info``'s env.

    Raises:
        UnsupportedSpaceError: one line naming the space and the algorithms that can.
    """
    if info.action_kind in algorithm(algo).actions:
        return
    space = (
        f"Discrete({info.n_actions}) (discrete)"
        if info.action_kind == "discrete"
        else f"Box{info.action_shape} (continuous)"
    )
    raise UnsupportedSpaceError(
        f"{algo} cannot handle the action space {space} of {info.env_id}; algorithms that can: "
        f"{', '.join(algorithms_for(info.action_kind))}."
    )


def make_vec_env(seed: int, *, env_id: str, n_envs: int, auto_reset: bool) -> GymVecEnv:
    """``n_envs`` copies of ``env_id`` seeded ``seed + k`` (a batcher's ``make_env``).

    Bind the keywords with ``functools.partial`` to get a picklable ``make_env(seed)``.
    """
    return GymVecEnv(env_id, n_envs, seed, auto_reset=auto_reset)
