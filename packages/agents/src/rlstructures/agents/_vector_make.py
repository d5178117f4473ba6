"""Making the vector env of a GymVectorVecEnv: from a factory, an instance or a gymnasium id."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, Final

import numpy as np

from rlstructures.agents._deps import require_gymnasium
from rlstructures.agents._make import add_note
from rlstructures.agents.errors import EnvError, MissingDependencyError

__all__ = ["int_arg", "make_vec_factory", "require_vector_api", "vector_env_from"]

_VECTOR_ATTRS: Final = (
    "num_envs",
    "single_observation_space",
    "single_action_space",
    "reset",
    "step",
)
_MODES: Final = ("vector_entry_point", "sync", "async")


def make_vec_factory(
    env_id: object,
    n_envs: object,
    *,
    vectorization_mode: object,
    vector_kwargs: Mapping[str, Any] | None,
    wrappers: Any,
    env_kwargs: Mapping[str, Any],
) -> Callable[[], Any]:
    """A no-argument factory of ``gymnasium.make_vec(env_id, num_envs=n_envs, ...)``.

    Raises:
        EnvError: ``env_id`` is not a str.
        TypeError, ValueError: ``n_envs`` is not an int >= 1, or an unknown
            ``vectorization_mode``.
    """
    require_vector_api()
    if not isinstance(env_id, str):
        raise EnvError(
            f"env_id must be a registered gymnasium id such as 'CartPole-v1', got "
            f"{type(env_id).__name__}; pass a VectorEnv (or a factory) to "
            "GymVectorVecEnv(...) itself."
        )
    n = int_arg("n_envs", n_envs, minimum=1)
    mode = getattr(vectorization_mode, "value", vectorization_mode)
    if mode is not None and mode not in _MODES:
        raise ValueError(
            f"vectorization_mode must be one of {list(_MODES)} or None, got {vectorization_mode!r}."
        )
    import gymnasium

    return functools.partial(
        gymnasium.make_vec,
        env_id,
        num_envs=n,
        vectorization_mode=mode,
        vector_kwargs=dict(vector_kwargs) if vector_kwargs is not None else None,
        wrappers=wrappers,
        **env_kwargs,
    )


def require_vector_api() -> None:
    """Check for gymnasium >= 1.1 (``gymnasium.vector.AutoresetMode``), or a clear error."""
    require_gymnasium("GymVectorVecEnv")
    import gymnasium.vector

    if not hasattr(gymnasium.vector, "AutoresetMode"):
        raise MissingDependencyError(
            f"GymVectorVecEnv needs gymnasium >= 1.1 (its vector API with autoreset modes); "
            f"gymnasium {getattr(gymnasium, '__version__', '?')} is installed. Upgrade it: "
            "pip install -U 'gymnasium>=1.1'."
        )


def int_arg(name: str, value: object, minimum: int | None) -> int:
    """``value`` as an int (>= ``minimum`` unless None), or a TypeError/ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {value!r}.")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}.")
    return int(value)


def _is_vector_env(obj: object) -> bool:
    return not isinstance(obj, type) and all(hasattr(obj, a) for a in _VECTOR_ATTRS)


def vector_env_from(make: object) -> Any:
    """The vector env given, or made by the no-argument callable given."""
    if isinstance(make, str):
        raise EnvError(
            f"GymVectorVecEnv takes a VectorEnv or a factory of one, got the id {make!r}. "
            f"Use GymVectorVecEnv.from_id({make!r}, n_envs, seed, ...), or GymVecEnv for "
            "per-env stepping."
        )
    if _is_vector_env(make):
        return make
    if not callable(make):
        lacks = [a for a in _VECTOR_ATTRS if not hasattr(make, a)]
        raise EnvError(
            f"make_vector_env must be a gymnasium VectorEnv or a callable returning one, got "
            f"{type(make).__name__} (it lacks {lacks})."
        )
    factory: Callable[[], Any] = make
    try:
        inspect.signature(factory).bind()
    except TypeError:
        raise EnvError(
            f"make_vector_env must be callable with no arguments, but {factory!r} needs some. "
            "GymVectorVecEnv seeds the vector env itself at its first reset: use e.g. "
            "`functools.partial(gymnasium.make_vec, 'CartPole-v1', num_envs=8)`."
        ) from None
    except ValueError:  # no signature (a builtin): try it as it is
        pass
    try:
        venv = factory()
    except AssertionError as exc:
        if "daemonic" in str(exc):
            add_note(
                exc,
                "an AsyncVectorEnv starts processes, which a MultiProcessBatcher worker (a "
                "daemon process) may not do: there, use vectorization_mode='sync' or "
                "'vector_entry_point', or the LocalBatcher.",
            )
        raise
    if _is_vector_env(venv):
        return venv
    close = getattr(venv, "close", None)
    single = hasattr(venv, "observation_space") and hasattr(venv, "step")
    if callable(close):
        close()
    if single:
        raise EnvError(
            f"make_vector_env returned {type(venv).__name__}, a single env, not a gymnasium "
            "VectorEnv (no num_envs / single_observation_space). Use "
            "GymVecEnv(make_env, n_envs, seed) for single envs, or wrap them in "
            "gymnasium.vector.SyncVectorEnv."
        )
    raise EnvError(
        f"make_vector_env returned {type(venv).__name__}, not a gymnasium VectorEnv (it "
        f"lacks {[a for a in _VECTOR_ATTRS if not hasattr(venv, a)]})."
    )
