"""How a gymnasium VectorEnv restarts its ended sub-envs: autoreset mode and partial resets.

Gymnasium 1.x vector envs declare one of three autoreset modes in
``metadata["autoreset_mode"]`` (https://farama.org/Vector-Autoreset-Mode):

* ``NEXT_STEP``: the step after an episode's end resets that sub-env (its action ignored,
  reward 0): the vector env spends one step on the reset;
* ``SAME_STEP``: the step that ends an episode also resets it: the observation returned is
  the fresh one, the final one is in ``info["final_obs"]``;
* ``DISABLED``: nothing restarts by itself; ``reset(options={"reset_mask": mask})`` does.

A *partial reset* restarts chosen sub-envs and nothing else: gymnasium's
``reset(options={"reset_mask": mask})`` (SyncVectorEnv, AsyncVectorEnv, the wrappers), or
EnvPool's ``reset(env_id=ids)``.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final, Literal

import numpy as np

from rlstructures.agents._env import EnvIds
from rlstructures.agents.errors import EnvError

if TYPE_CHECKING:
    from gymnasium.vector import AutoresetMode

__all__ = [
    "PARTIAL_RESETS",
    "PartialReset",
    "reset_rows",
    "resolve_autoreset_mode",
    "resolve_partial_reset",
    "step_info_names",
]

#: How ended sub-envs are restarted without touching the others.
PartialReset = Literal["auto", "reset_mask", "env_id", "none"]
PARTIAL_RESETS: Final = ("auto", "reset_mask", "env_id", "none")

_MODES_HELP: Final = (
    "one of gymnasium.vector.AutoresetMode.NEXT_STEP, SAME_STEP or DISABLED (or their values "
    "'NextStep', 'SameStep', 'Disabled')"
)


def resolve_autoreset_mode(venv: Any, given: object) -> AutoresetMode:
    """The autoreset mode of ``venv``: ``given`` when not None, else its metadata's.

    Raises:
        EnvError: no mode declared, or a value that is not one of the three.
    """
    from gymnasium.vector import AutoresetMode

    where = "autoreset_mode="
    value = given
    if value is None:
        metadata = getattr(venv, "metadata", None)
        value = metadata.get("autoreset_mode") if isinstance(metadata, Mapping) else None
        where = "its metadata['autoreset_mode']"
        if value is None:
            raise EnvError(
                f"the vector env {venv!r} does not declare how it resets ended sub-envs: its "
                "metadata has no 'autoreset_mode'. Declare it: "
                "`GymVectorVecEnv(..., autoreset_mode=AutoresetMode.NEXT_STEP)` (or "
                "SAME_STEP, DISABLED; see https://farama.org/Vector-Autoreset-Mode)."
            )
    if isinstance(value, AutoresetMode):
        return value
    if isinstance(value, str):
        for mode in AutoresetMode:
            if value in (mode.value, mode.name, mode.name.lower()):
                return mode
    raise EnvError(
        f"the vector env {venv!r} has {where} {value!r}, an autoreset mode GymVectorVecEnv "
        f"does not know; expected {_MODES_HELP}."
    )


def resolve_partial_reset(
    venv: Any, given: object, mode: AutoresetMode
) -> Literal["reset_mask", "env_id"] | None:
    """How ``venv`` restarts chosen sub-envs (None: it cannot).

    ``"auto"``: EnvPool's ``reset(env_id=...)`` when ``reset`` takes ``env_id``; gymnasium's
    ``reset_mask`` for a SyncVectorEnv or AsyncVectorEnv (wrapped or not) and for any vector
    env in ``DISABLED`` mode (the only way it restarts); else None. None too through a
    wrapper that mishandles partial resets (gymnasium's ``NormalizeObservation`` refuses
    them; its ``RecordEpisodeStatistics`` restarts the statistics of every sub-env at one,
    because the vector env below it pops ``"reset_mask"`` out of the options it then reads).

    A forced ``"reset_mask"`` is taken on trust: a vector env that ignores the mask and resets
    every sub-env would restart running episodes unseen.

    Raises:
        ValueError: ``given`` is not one of `PARTIAL_RESETS`.
        EnvError: ``"env_id"`` for a vector env whose ``reset`` has no ``env_id`` parameter,
            ``"none"`` for a ``DISABLED`` vector env, which would never restart,
            ``"reset_mask"`` through a wrapper that mishandles partial resets, or such a
            wrapper over a ``DISABLED`` vector env (which only partial resets restart).
    """
    from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv

    if given not in PARTIAL_RESETS:
        raise ValueError(f"partial_reset must be one of {list(PARTIAL_RESETS)}, got {given!r}.")
    blocker = _partial_reset_blocker(venv)
    if blocker is not None and given == "reset_mask":
        how = _blockers().get(type(blocker), "mishandles partial resets")
        raise EnvError(
            f"partial_reset='reset_mask', but the vector env {venv!r} cannot reset some "
            f"sub-envs alone: its wrapper {type(blocker).__name__} {how}. "
            "Use partial_reset='auto' (or 'none'): the vector env then spends a step on "
            "each reset."
        )
    if blocker is not None and mode is AutoresetMode.DISABLED:
        how = _blockers().get(type(blocker), "mishandles partial resets")
        raise EnvError(
            f"the vector env {venv!r} is in AutoresetMode.DISABLED, where only partial resets "
            f"restart ended sub-envs, but its wrapper {type(blocker).__name__} {how}. Build "
            "the vector env in AutoresetMode.NEXT_STEP (or SAME_STEP), e.g. "
            "`gymnasium.make_vec(..., vector_kwargs={'autoreset_mode': "
            "AutoresetMode.NEXT_STEP})`."
        )
    if given == "none":
        if mode is AutoresetMode.DISABLED:
            raise EnvError(
                "partial_reset='none' with a vector env in AutoresetMode.DISABLED: its ended "
                "sub-envs would never restart. Use partial_reset='reset_mask' (or 'auto')."
            )
        return None
    try:
        parameters = inspect.signature(venv.reset).parameters
    except (TypeError, ValueError):  # no signature: a builtin
        parameters = None
    takes_env_id = parameters is not None and "env_id" in parameters
    if given == "env_id" and parameters is not None and not takes_env_id and not any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    ):
        raise EnvError(
            f"partial_reset='env_id', but the vector env {venv!r} has reset"
            f"{inspect.signature(venv.reset)}, without an env_id parameter (EnvPool's way of "
            "resetting some sub-envs). Use partial_reset='auto': it finds the vector env's own "
            "way, or none."
        )
    if given != "auto":
        return given  # type: ignore[return-value]  # one of the two, checked above
    if takes_env_id:
        return "env_id"
    if blocker is not None:
        return None
    if isinstance(getattr(venv, "unwrapped", None), (SyncVectorEnv, AsyncVectorEnv)):
        return "reset_mask"
    return "reset_mask" if mode is AutoresetMode.DISABLED else None


def _blockers() -> dict[type, str]:
    """The gymnasium vector wrappers that mishandle partial resets, and how."""
    from gymnasium.wrappers.vector import NormalizeObservation, RecordEpisodeStatistics

    return {
        NormalizeObservation: "refuses partial resets",
        RecordEpisodeStatistics: (
            "restarts the statistics of every sub-env at a partial reset (the vector env "
            "below it pops 'reset_mask' out of the options before it reads them)"
        ),
    }


def _partial_reset_blocker(venv: Any) -> Any:
    """The first wrapper of ``venv`` known to mishandle partial resets, or None."""
    blockers = tuple(_blockers())
    return next((env for env in _wrapper_chain(venv) if isinstance(env, blockers)), None)


def step_info_names(venv: Any) -> frozenset[str]:
    """The info fields that wrappers of ``venv`` add about the episodes a step ends.

    Over a ``SAME_STEP`` vector env they are in the step's info, beside the fresh
    episodes' reset infos, not in ``info["final_info"]``: the stats key (``"episode"``) of
    each gymnasium ``RecordEpisodeStatistics``.
    """
    from gymnasium.wrappers.vector import RecordEpisodeStatistics

    return frozenset(
        getattr(env, "_stats_key", "episode")
        for env in _wrapper_chain(venv)
        if isinstance(env, RecordEpisodeStatistics)
    )


def _wrapper_chain(venv: Any) -> Iterator[Any]:
    """``venv``, then the vector env each wrapper wraps, down to the first non-wrapper."""
    from gymnasium.vector import VectorWrapper

    env = venv
    for _ in range(100):  # a wrapper chain; bounded in case of a cycle
        yield env
        if not isinstance(env, VectorWrapper):
            return
        env = env.env


def reset_rows(
    venv: Any,
    method: Literal["reset_mask", "env_id"],
    ended: EnvIds,
    n: int,
    options: Mapping[str, Any] | None,
) -> tuple[Any, Any, EnvIds | slice]:
    """Restart the sub-envs ``ended`` (sorted ids) of ``venv``, and only those.

    Returns:
        ``(observation, info, rows)``: what ``venv.reset`` returned (batched) and the rows
        of it that belong to ``ended``, in order.
    """
    if method == "env_id":
        if options is None:
            observation, info = venv.reset(ended)
        else:
            observation, info = venv.reset(ended, options=dict(options))
        return observation, info, slice(None)
    mask = np.zeros(n, np.bool_)
    mask[ended] = True
    # a fresh dict each call: gymnasium pops "reset_mask" out of it
    observation, info = venv.reset(options={**(options or {}), "reset_mask": mask})
    return observation, info, ended
