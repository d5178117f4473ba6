"""The probe step: one env reset and one agent call that find every key, shape and dtype.

It runs once, in the calling process, at construction (``Batcher.__init__``); the buffer
layout (``BufferLayout``) and every later check of the collector follow from its ``Specs``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from rlstructures.agents import Agent, VecEnv
from rlstructures.batchers._build import make_vec_env
from rlstructures.batchers._checks import StateCheck, check_agent, check_output
from rlstructures.batchers._layout import Specs
from rlstructures.batchers.errors import AgentOutputError
from rlstructures.dicttensor import DictTensor, TemporalDictTensor

__all__ = ["probe_specs", "replicate"]


def replicate(example: DictTensor | None, n: int, what: str) -> DictTensor:
    """``n`` copies of row 0 of ``example`` (an empty DictTensor of batch n when None)."""
    value: object = example
    if value is None:
        return DictTensor({}, batch_shape=(n,))
    if isinstance(value, DictTensor) and not value.keys() and value.batch_shape != (1,):
        raise TypeError(
            f"{what}={value!r} holds no keys: pass `{what}=None` (the default) when there is "
            f"no per-env {what}; otherwise give one example row, e.g. "
            f"`DictTensor({{'epsilon': np.array([0.1], np.float32)}})` (batch_shape (1,))."
        )
    if not isinstance(value, DictTensor) or value.batch_shape != (1,):
        raise TypeError(
            f"{what} at construction is one example row fixing keys, shapes and dtypes: a "
            f"DictTensor of batch_shape (1,), got {example!r}. Pass per-env rows to "
            "`reset(...)` / `execute(...)` instead, or None for no per-env information."
        )
    if not value.keys():
        return DictTensor({}, batch_shape=(n,))
    return value.numpy()[np.zeros(n, dtype=np.intp)]


def probe_specs(
    make_agent: Callable[[], Agent],
    make_env: Callable[[int], VecEnv],
    seed: int,
    agent_info: DictTensor | None,
    env_info: DictTensor | None,
) -> tuple[Specs, int]:
    """Run one step of a fresh env and agent to find every key, shape and dtype.

    An agent that ``require_history()`` gets a history of T = 0 steps holding the
    ``observation/*`` keys only: its own output keys are not known before this call.

    Returns:
        ``(specs, n_envs_per_vecenv)``.
    """
    env = make_vec_env(make_env, seed, "probe")
    try:
        agent = check_agent(make_agent(), "probe")
        try:
            return _probe(agent, env, agent_info, env_info)
        finally:
            agent.close()
    finally:
        env.close()


def _probe(
    agent: Agent, env: VecEnv, agent_info: DictTensor | None, env_info: DictTensor | None
) -> tuple[Specs, int]:
    n = int(env.n_envs)
    ai = replicate(agent_info, n, "agent_info")
    ei = replicate(env_info, n, "env_info")
    obs, _ = env.reset(ei if ei.keys() else None)
    obs = check_output(obs, "observation", n, None, "probe (env.reset)")
    initial: object = agent.initial_state(ai, n)
    if isinstance(initial, DictTensor) and not initial.keys():  # stateless: any batch shape
        state = DictTensor({}, batch_shape=(n,))
    else:
        state = check_output(initial, "initial_state", n, None, "probe")
    history = None
    if agent.require_history():  # no step yet: T = 0, the observation keys only
        empty = {f"observation/{k}": v[:, None][:, :0] for k, v in obs.items()}
        history = TemporalDictTensor(DictTensor(empty, batch_shape=(n, 0)))
    try:
        # a copy: an agent may set keys of its observation, which are no env keys
        action, new_state = agent(state, DictTensor(obs), ai, history)
    except KeyError as exc:
        text = str(exc.args[0]) if exc.args else ""
        if history is not None and (text.startswith("action/") or "key 'action/" in text):
            raise AgentOutputError(
                "probe (agent call): the agent read an 'action/...' key from `history`, which at "
                "the probe step (one call at construction, T = 0) holds only the "
                "`observation/*` keys: the agent's own output keys are not known before its "
                "first call. Read `history['action/...']` when `history.max_length > 0` (at "
                "T = 0 there is no earlier action)."
            ) from exc
        raise
    action = check_output(action, "action", n, None, "probe (agent call)")
    if "action" not in action:
        raise AgentOutputError(
            f"probe (agent call): the agent's action DictTensor lacks the key 'action' "
            f"(its keys: {sorted(action.keys())}); 'action' is what the env receives."
        )
    StateCheck(state.specs())(new_state, n, "probe (agent call)")
    return Specs(obs.specs(), action.specs(), state.specs(), ai.specs(), ei.specs()), n
