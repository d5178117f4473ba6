"""Creating the envs of a GymVecEnv: the factory, the checks on what it returns, closing."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from rlstructures.agents._old_gym import as_gymnasium_env
from rlstructures.agents.errors import EnvError

__all__ = ["close_all", "factory", "make_envs"]


def factory(make_env: Callable[[], Any] | str) -> Callable[[], Any]:
    """A no-argument env factory from ``make_env`` (a callable or a gymnasium id)."""
    if isinstance(make_env, str):
        env_id = make_env

        def make() -> Any:
            import gymnasium

            return gymnasium.make(env_id)

        return make
    given: object = make_env  # checked at runtime: users pass anything
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


def _looks_like_env(obj: object) -> bool:
    return all(hasattr(obj, a) for a in ("reset", "step", "observation_space", "action_space"))


def make_envs(factory: Callable[[], Any], n: int) -> list[Any]:
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
    first: Exception | None = None
    for env in envs:
        try:
            env.close()
        except Exception as exc:
            first = first or exc
    if first is not None:
        raise first
