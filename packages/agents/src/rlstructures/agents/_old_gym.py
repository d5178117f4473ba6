"""Accept old gym API envs (reset returns obs, step returns 4 values) without importing gym.

``as_gymnasium_env`` is what GymVecEnv calls on whatever ``make_env()`` returned: a
``gymnasium.Env`` whose ``reset`` takes ``seed`` is used as is; any other object with
``reset``, ``step``, ``observation_space`` and ``action_space`` (a ``gymnasium.Env``
subclass written to the old API included) is wrapped in ``OldApiEnv``, which speaks the
gymnasium API. Old gym spaces are converted to gymnasium spaces by their class name and
attributes (``gym`` itself is never imported).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from rlstructures.agents.errors import EnvError, EnvInfoError, UnsupportedSpaceError

if TYPE_CHECKING:
    from gymnasium import Space

__all__ = ["OldApiEnv", "as_gymnasium_env", "to_gymnasium_space"]

_ENV_METHODS = ("reset", "step")
_ENV_ATTRIBUTES = ("observation_space", "action_space")
_SPACE_EXAMPLES = {
    "observation_space": "`self.observation_space = gymnasium.spaces.Box(-np.inf, np.inf, (4,), "
    "np.float32)`, or for dict observations `gymnasium.spaces.Dict({'x': "
    "gymnasium.spaces.Box(-np.inf, np.inf, (), np.float64), ...})`",
    "action_space": "`self.action_space = gymnasium.spaces.Discrete(2)`",
}


def as_gymnasium_env(obj: Any, k: int) -> Any:
    """``obj`` as an object with the gymnasium Env API (``obj`` itself for a gymnasium.Env).

    Args:
        obj: what ``make_env()`` returned for env ``k``.
        k: the env's position, for error messages.

    Raises:
        EnvError: ``obj`` is not an env (or is a vector env).
    """
    import gymnasium

    if isinstance(obj, gymnasium.vector.VectorEnv):
        raise EnvError(
            f"make_env() returned a vector env ({type(obj).__name__}) for env {k}; it must "
            "return one env: GymVecEnv does the vectorization (n_envs copies)."
        )
    methods = [m for m in _ENV_METHODS if not callable(getattr(obj, m, None))]
    spaces = [a for a in _ENV_ATTRIBUTES if getattr(obj, a, None) is None]
    if spaces and not methods:  # an env without its spaces (0.2 did not need them)
        raise EnvError(
            f"env {k} ({type(obj).__name__}) has no {' and no '.join(spaces)}. GymVecEnv "
            "reads the keys, shapes and dtypes of observations and actions from these "
            "spaces (a batcher allocates its buffers from them): set "
            f"{' and '.join(spaces)} in the env's __init__, e.g. "
            f"{'; '.join(_SPACE_EXAMPLES[a] for a in spaces)}."
        )
    if isinstance(obj, gymnasium.Env) and _accepts(obj.reset, "seed"):
        return obj
    missing = methods + spaces
    if missing:
        shown = repr(obj)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        raise EnvError(
            f"make_env() returned {shown} ({type(obj).__name__}) for env {k}, which is not an "
            f"environment: it lacks {missing}. Expected a gymnasium.Env, e.g. "
            "`make_env=lambda: gymnasium.make('CartPole-v1')`, or an old gym API env "
            "(reset(), step(), observation_space, action_space)."
        )
    return OldApiEnv(obj)


def _accepts(fn: Callable[..., Any], name: str) -> bool:
    """Whether ``fn`` takes a keyword argument ``name`` (or ``**kwargs``)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature
        return False
    return any(p.name == name or p.kind is p.VAR_KEYWORD for p in params)


class OldApiEnv:
    """An old gym API env seen through the gymnasium API.

    ``reset(seed=s, options=o)`` calls the env's ``reset(seed=s)`` when it takes a seed,
    else ``env.seed(s)`` then ``env.reset()``, and returns ``(obs, {})``. ``step`` maps
    ``done`` to ``terminated``/``truncated`` using the old ``info["TimeLimit.truncated"]``
    convention: ``truncated = info.get("TimeLimit.truncated", False)`` and
    ``terminated = done and not truncated``. An env that already returns 5 values or
    ``(obs, info)`` from reset (the new API without subclassing gymnasium.Env) passes
    through unchanged. ``options`` (the rows of ``env_info``) go to the env's
    ``reset(options=...)``, or to ``reset(env_info=...)`` for an RLStructures 0.2 env (a
    dict of Python values, as 0.2 passed them).

    Args:
        env: the old-API env.

    Raises:
        UnsupportedSpaceError: a space that has no gymnasium equivalent.
    """

    def __init__(self, env: Any) -> None:
        self.env = env
        self.observation_space = to_gymnasium_space(env.observation_space)
        self.action_space = to_gymnasium_space(env.action_space)
        self._reset_seed = _accepts(env.reset, "seed")
        self._reset_options = _accepts(env.reset, "options")
        self._reset_env_info = _accepts(env.reset, "env_info")

    def reset(
        self, *, seed: int | None = None, options: Mapping[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Reset (and seed, when ``seed`` is given); returns ``(observation, info)``."""
        kwargs: dict[str, Any] = {}
        if options:
            if self._reset_options:
                kwargs["options"] = dict(options)
            elif self._reset_env_info:  # the RLStructures 0.2 convention
                kwargs["env_info"] = {key: np.asarray(v).tolist() for key, v in options.items()}
            else:
                raise EnvInfoError(
                    f"env_info has keys {sorted(options)}, passed to each env's reset, but "
                    f"the old gym API env {type(self.env).__name__}.reset() takes neither "
                    "`options` (gymnasium) nor `env_info` (RLStructures 0.2). Add an "
                    "`options=None` parameter to its reset, or do not pass env_info."
                )
        if seed is not None:
            if self._reset_seed:
                kwargs["seed"] = seed
            elif callable(getattr(self.env, "seed", None)):
                self.env.seed(seed)
            else:
                raise EnvError(
                    f"cannot seed the old gym API env {type(self.env).__name__}: its reset() "
                    "takes no `seed` and it has no `seed(seed)` method. Add one (it may do "
                    "nothing for a deterministic env) so that GymVecEnv can seed env k with "
                    "seed + k."
                )
        result = self.env.reset(**kwargs)
        if (
            isinstance(result, tuple)
            and len(result) == 2
            and isinstance(result[1], dict)
            and not self._is_observation(result)
        ):
            return result[0], result[1]
        return result, {}

    def _is_observation(self, value: Any) -> bool:
        from gymnasium import spaces

        if not isinstance(self.observation_space, spaces.Tuple):
            return False
        try:
            return bool(self.observation_space.contains(value))
        except (TypeError, ValueError, KeyError):
            return False

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        """One step; returns ``(obs, reward, terminated, truncated, info)``."""
        result = self.env.step(action)
        if not isinstance(result, tuple) or len(result) not in (4, 5):
            size = len(result) if isinstance(result, (tuple, list)) else "not a tuple"
            raise EnvError(
                f"{type(self.env).__name__}.step() returned {type(result).__name__} "
                f"({size}); expected (obs, reward, done, info) (old gym API) or (obs, reward, "
                "terminated, truncated, info) (gymnasium API)."
            )
        if len(result) == 5:
            obs, reward, terminated, truncated, info = result
            return obs, reward, bool(terminated), bool(truncated), info
        obs, reward, done, info = result
        truncated = bool(isinstance(info, dict) and info.get("TimeLimit.truncated", False))
        return obs, reward, bool(done) and not truncated, truncated, info

    def close(self) -> None:
        """Close the wrapped env (when it has a ``close``)."""
        close = getattr(self.env, "close", None)
        if callable(close):
            close()

    def __repr__(self) -> str:
        return f"OldApiEnv({self.env!r})"


def to_gymnasium_space(space: Any) -> Space[Any]:
    """The gymnasium equivalent of a gym (or gymnasium) space, found by class name.

    Raises:
        UnsupportedSpaceError: not a Box, Discrete, MultiDiscrete, MultiBinary, Dict or Tuple.
    """
    from gymnasium import spaces

    if isinstance(space, spaces.Space):
        return space
    name = type(space).__name__
    try:
        if name == "Box":
            dtype, shape = np.dtype(space.dtype), tuple(space.shape)
            low = np.broadcast_to(np.asarray(space.low, dtype=dtype), shape)
            high = np.broadcast_to(np.asarray(space.high, dtype=dtype), shape)
            return spaces.Box(low=low, high=high, shape=shape, dtype=dtype)
        if name == "Discrete":
            return spaces.Discrete(int(space.n), start=int(getattr(space, "start", 0)))
        if name == "MultiDiscrete":
            return spaces.MultiDiscrete(np.asarray(space.nvec))
        if name == "MultiBinary":
            return spaces.MultiBinary(space.n)
        if name == "Dict":
            return spaces.Dict({k: to_gymnasium_space(v) for k, v in space.spaces.items()})
        if name == "Tuple":
            return spaces.Tuple([to_gymnasium_space(v) for v in space.spaces])
    except AttributeError as exc:
        raise UnsupportedSpaceError(
            f"the old gym space {space!r} is a {name} but lacks the attribute it needs "
            f"({exc}); cannot convert it to a gymnasium space."
        ) from None
    raise UnsupportedSpaceError(
        f"space {space!r} is a {type(space).__module__}.{name}; GymVecEnv converts old gym "
        "Box, Discrete, MultiDiscrete, MultiBinary, Dict and Tuple spaces. Use a gymnasium "
        "space instead."
    )
