"""Building what a batcher runs: each worker's VecEnv, agent copy and their Collector.

The probe step (``_probe.py``) found every key, shape and dtype first; each worker (or
LocalBatcher slot) then builds its own VecEnv and agent copy with ``build_collector``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

import numpy.typing as npt

from rlstructures.agents import Agent, VecEnv
from rlstructures.batchers._checks import check_agent, check_env
from rlstructures.batchers._collector import Collector
from rlstructures.batchers._layout import Specs

__all__ = ["build_collector", "check_n_envs", "make_vec_env"]

_MAKE_ENV_NOTE: Final = "raised by make_env({seed!r})"
_CALL_NOTE: Final = (  # for a TypeError: often a make_env that takes other arguments
    ": the batchers call `make_env(seed)` with the seed (an int) "
    "as its only positional argument; with functools.partial, leave exactly that parameter "
    "free, e.g. `functools.partial(create_env, n_envs=4)` for `def create_env(seed, n_envs)`."
)


def make_vec_env(make_env: Callable[[int], VecEnv], seed: int, where: str) -> VecEnv:
    """``make_env(seed)``, checked; an exception it raises gets a note on how it is called."""
    try:
        env = make_env(seed)
    except Exception as exc:
        if hasattr(exc, "add_note"):  # Python >= 3.11
            how = _CALL_NOTE if isinstance(exc, TypeError) else ""
            exc.add_note(_MAKE_ENV_NOTE.format(seed=seed) + how)
        raise
    return check_env(env, where)


def check_n_envs(env: VecEnv, n_envs: int, seed: int, where: str) -> None:
    """Raise ValueError when a worker's VecEnv has another n_envs than the probe's."""
    if env.n_envs != n_envs:
        raise ValueError(
            f"{where}: make_env({seed}) has {env.n_envs} envs, but the probe's had "
            f"{n_envs}; every VecEnv must have the same n_envs."
        )


def build_collector(
    make_agent: Callable[[], Agent],
    make_env: Callable[[int], VecEnv],
    *,
    seed: int,
    agent_seed: int | None,
    views: Mapping[str, npt.NDArray[Any]],
    specs: Specs,
    n_envs: int,
    n_timesteps: int,
    store_agent_state: bool,
    worker: int,
) -> Collector:
    """The env and agent of worker ``worker`` and their Collector over ``views``.

    Whatever was built is closed when a later step fails.

    Raises:
        TypeError: ``make_env`` / ``make_agent`` returned something else than a VecEnv / an
            Agent.
        ValueError: the VecEnv has another number of envs than the probe's (``n_envs``).
    """
    where = f"worker {worker}"
    env = make_vec_env(make_env, seed, where)
    try:
        agent = check_agent(make_agent(), where)
        try:
            if agent_seed is not None:
                agent.seed(agent_seed)
            check_n_envs(env, n_envs, seed, where)
            return Collector(
                agent,
                env,
                views,
                specs,
                n_timesteps=n_timesteps,
                store_agent_state=store_agent_state,
                worker=worker,
            )
        except BaseException:
            agent.close()
            raise
    except BaseException:
        env.close()
        raise
