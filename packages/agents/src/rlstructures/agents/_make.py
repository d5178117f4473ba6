"""The envs of a GymVecEnv: creating and closing them, and the errors about what they return."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from rlstructures.agents._env import EnvIds
from rlstructures.agents._old_gym import as_gymnasium_env
from rlstructures.agents.errors import EnvError, ObservationError

__all__ = [
    "add_note",
    "close_all",
    "factory",
    "make_envs",
    "scalar_error",
    "step_api_error",
]


def factory(make_env: Callable[[], Any] | str) -> Callable[[], Any]:
    """A no-argument env factory from ``make_env`` (a callable or a gymnasium id)."""
    if isinstance(make_env, str):
        env_id = make_env

        def make() -> Any:
            import gymnasium

            return gymnasium.make(env_id)

        return make
    given: object = make_env  # checked at runtime: users pass anything
    if isinstance(given, (list, tuple)) and given and all(map(_steps, given)):
        raise EnvError(
            f"make_env is a {type(given).__name__} of {len(given)} envs, as RLStructures "
            "0.2's GymEnv(envs, seed) took; GymVecEnv creates its envs itself from a factory "
            f"called n_envs times: `GymVecEnv(lambda: gymnasium.make(...), {len(given)}, seed)`."
        )
    if not callable(given) or (not isinstance(given, type) and _looks_like_env(given)):
        raise EnvError(
            f"make_env must be a callable returning a new env (or a gymnasium id), got "
            f"{type(make_env).__name__}. Pass a factory, e.g. "
            "`GymVecEnv(lambda: gymnasium.make('CartPole-v1'), n_envs, seed)`."
        )
    try:
        inspect.signature(make_env).bind()
    except TypeError:
        raise EnvError(
            f"make_env must be callable with no arguments, but {make_env!r} needs some. "
            "GymVecEnv seeds env k itself (seed + k): use e.g. `lambda: make(...)` or "
            "`functools.partial(make, ...)`."
        ) from None
    except ValueError:  # no signature (a builtin): try it as it is
        pass
    return make_env


def _steps(obj: object) -> bool:
    """Whether ``obj`` has ``reset`` and ``step`` methods (an env, maybe without spaces)."""
    return callable(getattr(obj, "reset", None)) and callable(getattr(obj, "step", None))


def _looks_like_env(obj: object) -> bool:
    return all(hasattr(obj, a) for a in ("reset", "step", "observation_space", "action_space"))


def make_envs(factory: Callable[[], Any], n: int) -> list[Any]:
    """``n`` envs from ``factory``, as gymnasium-API envs sharing their spaces.

    Raises:
        EnvError: not an env, the same env twice, or spaces that differ.
    """
    envs: list[Any] = []
    raw: list[Any] = []
    try:
        for k in range(n):
            obj = factory()
            if any(obj is other for other in raw):
                raise EnvError(
                    f"make_env() returned the same env object for env {k} as for an earlier "
                    "env; it must create a new env at each call (e.g. `lambda: "
                    "gymnasium.make(...)`, not `lambda: env`)."
                )
            raw.append(obj)
            envs.append(as_gymnasium_env(obj, k))
            for attr in ("observation_space", "action_space"):
                mine, first = getattr(envs[-1], attr), getattr(envs[0], attr)
                if mine != first:
                    raise EnvError(
                        f"env {k} has {attr} {mine}, but env 0 has {first}: the envs of one "
                        "GymVecEnv must share their spaces. Pad or wrap them to one space."
                    )
    except Exception:
        close_all(envs)
        raise
    return envs


def close_all(envs: list[Any]) -> None:
    """Close every env, then raise the first error met, if any."""
    first: Exception | None = None
    for env in envs:
        try:
            env.close()
        except Exception as exc:
            first = first or exc
    if first is not None:
        raise first


def scalar_error(results: list[Any], ids: EnvIds) -> ObservationError:
    """The error for a step whose reward, terminated or truncated is not a scalar."""
    for j, result in enumerate(results):
        for i, key in ((1, "reward"), (2, "terminated"), (3, "truncated")):
            if np.ndim(result[i]) != 0:
                return ObservationError(
                    f"env {int(ids[j])} returned {key} {result[i]!r} from step(); a gymnasium "
                    f"env returns one scalar {key} per step."
                )
    return ObservationError(
        "an env returned a reward, terminated or truncated that is not a "
        "scalar; a gymnasium env returns one scalar of each per step."
    )


def step_api_error(envs: list[Any], ids: EnvIds, results: list[Any]) -> EnvError:
    """The error for a step that did not return the five gymnasium values."""
    j = next((j for j, r in enumerate(results) if not (isinstance(r, tuple) and len(r) == 5)), 0)
    result, k = results[j], int(ids[j])
    size = len(result) if isinstance(result, (tuple, list)) else "not a tuple"
    return EnvError(
        f"env {k} ({type(envs[k]).__name__}).step() returned {type(result).__name__} ({size}); "
        "a gymnasium env returns (observation, reward, terminated, truncated, info)."
    )


def add_note(exc: BaseException, note: str) -> None:
    """Say which env raised ``exc`` (``__notes__``, Python >= 3.11)."""
    if hasattr(exc, "add_note"):  # Python >= 3.11
        exc.add_note(note)
