"""The collection loop: one VecEnv and one agent writing steps into rows of a buffer.

The same code runs in the calling process (LocalBatcher) and in every worker process
(MultiProcessBatcher), which is why both return identical trajectories.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from rlstructures.agents import Agent, VecEnv
from rlstructures.batchers._layout import Specs
from rlstructures.batchers.errors import AgentOutputError
from rlstructures.dicttensor import DictTensor, Spec, TemporalDictTensor

__all__ = [
    "Collector",
    "build_collector",
    "check_agent",
    "check_env",
    "check_output",
    "probe_specs",
    "replicate",
]

_Checks = tuple[tuple[str, tuple[int, ...], np.dtype[Any]], ...]


def _checks(specs: Mapping[str, Spec]) -> _Checks:
    return tuple((k, s.shape, s.dtype) for k, s in specs.items())


def check_env(env: object, where: str) -> VecEnv:
    """``env`` if it looks like a VecEnv, else a TypeError saying what ``make_env`` returned."""
    missing = [m for m in ("reset", "step", "close", "n_envs") if not hasattr(env, m)]
    if missing:
        raise TypeError(
            f"{where}: make_env(seed) must return a VecEnv (with reset, step, close, n_envs), "
            f"got {type(env).__name__} lacking {missing}. Wrap gymnasium envs with "
            "`rlstructures.agents.GymVecEnv(make_env, n_envs, seed)`."
        )
    return env  # type: ignore[return-value]  # duck-typed Protocol check just above


_AGENT_METHODS: Final = ("initial_state", "require_history", "update", "seed", "close")


def check_agent(agent: object, where: str) -> Agent:
    """``agent`` if it looks like an Agent, else a TypeError saying what ``make_agent`` returned."""
    missing = [m for m in _AGENT_METHODS if not callable(getattr(agent, m, None))]
    if not callable(agent):
        missing.append("__call__")
    if missing:
        raise TypeError(
            f"{where}: make_agent() must return an Agent (a subclass of "
            f"`rlstructures.agents.Agent`), got {type(agent).__name__} lacking {missing}. "
            "Pass the agent's class or a function building one, e.g. "
            "`functools.partial(MyAgent, hidden=64)`, not an instance or its output."
        )
    return agent  # type: ignore[return-value]  # duck-typed check just above


def _keys_error(
    where: str | tuple[int, int], what: str, got: Any, checks: _Checks
) -> AgentOutputError:
    expected = {c[0] for c in checks}
    missing = sorted(expected - set(got))
    extra = sorted(set(got) - expected)
    return AgentOutputError(
        f"{_at(where)}: {what} lacks key(s) {', '.join(map(repr, missing)) or 'none'} and has "
        f"unexpected key(s) {', '.join(map(repr, extra)) or 'none'}; every step must return "
        f"the keys of the first step: {sorted(expected)}."
    )


def _at(where: str | tuple[int, int]) -> str:
    return where if isinstance(where, str) else f"worker {where[0]}, step {where[1]}"


def check_leaves(
    value: object, what: str, n: int, checks: _Checks | None, where: str | tuple[int, int]
) -> dict[str, npt.NDArray[Any]]:
    """Validate one DictTensor returned by an agent or an env; returns its numpy leaves.

    Args:
        value: the returned object.
        what: its role, for messages ("action", "new_state", "observation").
        n: the expected batch size.
        checks: ``(key, row_shape, dtype)`` per key fixed by the probe step (None: any).
        where: for messages: "probe" or ``(worker, step)``, formatted only on error.

    Raises:
        AgentOutputError: not a DictTensor, wrong batch size, keys, row shape or dtype.
    """
    if not isinstance(value, DictTensor):
        raise AgentOutputError(
            f"{_at(where)}: {what} must be a DictTensor, got {type(value).__name__}."
        )
    if value.batch_shape != (n,):
        raise AgentOutputError(
            f"{_at(where)}: {what} has batch_shape {value.batch_shape}, expected ({n},): one "
            "row per running env."
        )
    leaves = value.to_dict()
    for first in leaves.values():
        if not isinstance(first, np.ndarray):
            leaves = value.numpy().to_dict()
        break
    if checks is None:
        return leaves
    if len(leaves) != len(checks):
        raise _keys_error(where, what, leaves, checks)
    for key, shape, dtype in checks:
        arr = leaves.get(key)
        if arr is None:
            raise _keys_error(where, what, leaves, checks)
        if arr.dtype != dtype or arr.shape[1:] != shape:
            raise AgentOutputError(
                f"{_at(where)}: {what}[{key!r}] is {arr.dtype}{list(arr.shape[1:])} per row, "
                f"expected {dtype}{list(shape)} as at the first step. Return the same shape "
                "and dtype at every step (cast with `.astype(...)`)."
            )
    return leaves


def check_output(
    value: object, what: str, n: int, checks: _Checks | None, where: str
) -> DictTensor:
    """Like ``check_leaves`` but returns a numpy DictTensor."""
    return DictTensor(check_leaves(value, what, n, checks, where), batch_shape=(n,))


def replicate(example: DictTensor | None, n: int, what: str) -> DictTensor:
    """``n`` copies of row 0 of ``example`` (an empty DictTensor of batch n when None)."""
    value: object = example
    if value is None:
        return DictTensor({}, batch_shape=(n,))
    if not isinstance(value, DictTensor) or value.batch_shape != (1,):
        raise TypeError(
            f"{what} at construction is one example row fixing keys, shapes and dtypes: a "
            f"DictTensor of batch_shape (1,), got {example!r}. Pass per-env rows to "
            "`reset(...)` / `execute(...)` instead."
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

    Returns:
        ``(specs, n_envs_per_vecenv)``.
    """
    env = check_env(make_env(seed), "probe")
    try:
        agent = check_agent(make_agent(), "probe")
        try:
            specs, n = _probe(agent, env, agent_info, env_info)
        finally:
            agent.close()
    finally:
        env.close()
    return specs, n


def _probe(
    agent: Agent, env: VecEnv, agent_info: DictTensor | None, env_info: DictTensor | None
) -> tuple[Specs, int]:
    n = int(env.n_envs)
    ai = replicate(agent_info, n, "agent_info")
    ei = replicate(env_info, n, "env_info")
    obs, ids = env.reset(ei if ei.keys() else None)
    obs = check_output(obs, "observation", n, None, "probe (env.reset)")
    state = check_output(agent.initial_state(ai, n), "initial_state", n, None, "probe")
    history = None
    if agent.require_history():  # no step yet: T = 0, the observation keys
        empty = {f"observation/{k}": v[:, None][:, :0] for k, v in obs.items()}
        history = TemporalDictTensor(DictTensor(empty, batch_shape=(n, 0)))
    action, new_state = agent(state, obs, ai, history)
    action = check_output(action, "action", n, None, "probe (agent call)")
    if "action" not in action:
        raise AgentOutputError(
            f"probe (agent call): the agent's action DictTensor lacks the key 'action' "
            f"(its keys: {sorted(action.keys())}); 'action' is what the env receives."
        )
    state_checks = _checks(state.specs())
    check_output(new_state, "new_state", n, state_checks, "probe (agent call)")
    del ids
    return Specs(obs.specs(), action.specs(), state.specs(), ai.specs(), ei.specs()), n


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
    env = check_env(make_env(seed), where)
    try:
        agent = check_agent(make_agent(), where)
        try:
            if agent_seed is not None:
                agent.seed(agent_seed)
            if env.n_envs != n_envs:
                raise ValueError(
                    f"{where}: make_env({seed}) has {env.n_envs} envs, but the probe's had "
                    f"{n_envs}; every VecEnv must have the same n_envs."
                )
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


def _bad_ids(ids: npt.NDArray[Any], n: int) -> bool:
    """Whether ``ids`` is not a 1-D int array of values in ``[0, n)``."""
    return bool(
        ids.ndim != 1
        or ids.dtype.kind not in "iu"
        or not ids.size
        or ids.min() < 0
        or ids.max() >= n
    )


class Collector:
    """One VecEnv and one agent writing into ``n_envs`` rows of the buffer arrays.

    Args:
        agent: the agent copy of this worker.
        env: the VecEnv of this worker.
        views: this worker's rows of every buffer array (see ``BufferLayout``).
        specs: the probe specs every step must match.
        n_timesteps: T, the steps per ``execute``.
        store_agent_state: also write the per-step agent state.
        worker: index, for messages.
    """

    def __init__(
        self,
        agent: Agent,
        env: VecEnv,
        views: Mapping[str, npt.NDArray[Any]],
        specs: Specs,
        *,
        n_timesteps: int,
        store_agent_state: bool,
        worker: int,
    ) -> None:
        self.agent = agent
        self.env = env
        self.worker = worker
        self.n_envs = int(env.n_envs)
        self._step = {k[5:]: v for k, v in views.items() if k.startswith("step:")}
        self._info = {k[5:]: v for k, v in views.items() if k.startswith("info:")}
        self._lengths = views["lengths"]
        self.n_timesteps = n_timesteps
        self._obs_checks = _checks(specs.observation)
        self._action_checks = _checks(specs.action)
        # (key, [n_envs, *row], dtype) of a valid numpy action with every env running: the
        # fast path checks it inline
        self._action_full = tuple((k, (self.n_envs, *s), d) for k, s, d in self._action_checks)
        self._state_checks = _checks(specs.state)
        self._store_state = store_agent_state and bool(specs.state)
        self._obs_dst = [
            (k, self._step[f"observation/{k}"], self._step[f"_observation/{k}"])
            for k in specs.observation
        ]
        self._action_dst = [(k, self._step[f"action/{k}"]) for k in specs.action]
        self._state_dst = (
            [
                (k, self._step[f"agent_state/{k}"], self._step[f"_agent_state/{k}"])
                for k in specs.state
            ]
            if self._store_state
            else []
        )
        self._history = agent.require_history()
        self._history_src = [(k, v) for k, v in self._step.items() if k.startswith("observation/")]
        self._obs: DictTensor | None = None
        self._state: DictTensor | None = None
        # The fast path: a VecEnv in auto-reset mode with ``step_into`` writes the observation
        # of step t + 1 straight into ``observation/*[:, t + 1]`` (the last step's into
        # ``_carry``); ``_observation/*`` is filled once per slice from those (see execute).
        self._into = self.n_envs > 0 and (
            getattr(env, "auto_reset", False) is True and callable(getattr(env, "step_into", None))
        )
        self._carry = {
            k: np.zeros((self.n_envs, *s.shape), s.dtype) for k, s in specs.observation.items()
        }
        at_t = [{k: dst[:, t] for k, dst, _ in self._obs_dst} for t in range(n_timesteps)]
        self._obs_at = [DictTensor(v, batch_shape=(self.n_envs,)) for v in at_t]
        # read-only mappings: an env must write into these arrays, not rebind the keys
        self._outs = [MappingProxyType(v) for v in [*at_t[1:], self._carry]]
        self._finals = [
            MappingProxyType({k: next_dst[:, t] for k, _, next_dst in self._obs_dst})
            for t in range(n_timesteps)
        ]
        self._keep = np.ones((self.n_envs, n_timesteps), np.bool_)
        self._keep_as = {  # `_keep` broadcastable to each observation key's [n, T, *row]
            k: self._keep.reshape(self._keep.shape + (1,) * len(s.shape))
            for k, s in specs.observation.items()
        }
        self._ids: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self._agent_info = DictTensor({}, batch_shape=(self.n_envs,))

    @property
    def n_running(self) -> int:
        """Envs still running."""
        return len(self._ids)

    def set_agent_info(self, agent_info: DictTensor) -> None:
        """New per-env agent_info rows (batch ``(n_envs,)``), written to the info.

        The agent then reads them there: a copy the caller cannot change afterwards.
        """
        rows = {}
        for k, v in agent_info.items():
            dst = rows[k] = self._info[f"agent_info/{k}"]
            dst[:] = v
        self._agent_info = DictTensor(rows, batch_shape=(self.n_envs,))

    def reset(self, agent_info: DictTensor, env_info: DictTensor) -> None:
        """Reset every env and start from the agent's initial state."""
        where = f"worker {self.worker}, reset"
        obs, ids = self.env.reset(env_info if env_info.keys() else None)
        self._obs = check_output(obs, "observation", self.n_envs, self._obs_checks, where)
        self._ids = np.asarray(ids, dtype=np.int64)
        if self._into:
            for k, v in self._obs.items():
                self._carry[k][...] = v
            self._obs = DictTensor(self._carry, batch_shape=(self.n_envs,))
        self.set_agent_info(agent_info)
        for k, v in env_info.items():
            self._info[f"env_info/{k}"][:] = v
        state = self.agent.initial_state(agent_info, self.n_envs)
        check_output(state, "initial_state", self.n_envs, self._state_checks, where)
        self._state = state

    def execute(self, agent_info: DictTensor | None) -> int:
        """Collect up to ``n_timesteps`` steps per running env; returns how many still run."""
        if agent_info is not None:
            self.set_agent_info(agent_info)
        agent, env = self.agent, self.env
        obs, state, ids = self._obs, self._state, self._ids
        if obs is None or state is None:
            raise RuntimeError("Collector.execute() before reset()")  # the batcher checks first
        lengths = self._lengths
        lengths[:] = 0
        start_state = check_output(state, "state", len(ids), self._state_checks, "start")
        if self._into and any(  # a state holding a view of an observation (numpy or torch)
            np.may_share_memory(v, dst) for v in start_state.values() for _, dst, _ in self._obs_dst
        ):
            state = state.clone()  # the slice would overwrite it: keep its values
            start_state = check_output(state, "state", len(ids), self._state_checks, "start")
        for k, v in start_state.items():
            dst = self._info[f"agent_state/{k}"]
            dst[:] = 0
            dst[ids] = v
        state_np = start_state.to_dict()  # numpy leaves of `state`, carried when storing it
        if self._into:
            return self._execute_into(state, state_np)
        cur = check_leaves(obs, "observation", len(ids), self._obs_checks, "start")
        full_steps = 0
        for t in range(self.n_timesteps):
            n = len(ids)
            if n == 0:
                break
            where = (self.worker, t)
            rows: Any = slice(None) if n == self.n_envs else ids
            info = self._agent_info if n == self.n_envs else self._agent_info[ids]
            if self._history:  # the observations of the previous steps of this slice
                past = {k: v[rows, :t] for k, v in self._history_src}
                history = TemporalDictTensor(DictTensor(past, batch_shape=(n, t)))
                action, new_state = agent(state, obs, info, history)
            else:
                action, new_state = agent(state, obs, info)
            act = check_leaves(action, "action", n, self._action_checks, where)
            for k, obs_dst, _ in self._obs_dst:
                obs_dst[rows, t] = cur[k]
            for k, act_dst in self._action_dst:
                act_dst[rows, t] = act[k]
            if self._store_state:
                new_np = check_leaves(new_state, "new_state", n, self._state_checks, where)
                for k, s_dst, ns_dst in self._state_dst:
                    s_dst[rows, t] = state_np[k]
                    ns_dst[rows, t] = new_np[k]
                state_np = new_np  # the next step's state (rows selected below)
            elif t == 0:
                check_leaves(new_state, "new_state", n, self._state_checks, where)
            if action.backend != "numpy":  # the env gets numpy actions
                action = DictTensor(act, batch_shape=(n,))
            (next_obs, next_ids), (obs, cont_ids) = env.step(action)
            nxt = check_leaves(next_obs, "next observation", n, self._obs_checks, where)
            cont_ids = np.asarray(cont_ids, dtype=np.int64)
            cur = check_leaves(
                obs, "continuing observation", len(cont_ids), self._obs_checks, where
            )
            for k, _, next_dst in self._obs_dst:
                next_dst[rows, t] = nxt[k]
            if n == self.n_envs:
                full_steps += 1  # added to every length at the end: one op, not one per step
            else:
                lengths[ids] += 1
            if len(cont_ids) == n:
                state = new_state
            else:
                pos = np.searchsorted(ids, cont_ids)
                if pos.size and (pos.max() >= n or not np.array_equal(ids[pos], cont_ids)):
                    raise AgentOutputError(
                        f"{_at(where)}: env.step returned continuing ids {cont_ids.tolist()} "
                        f"that are not a sorted subset of the running ids {ids.tolist()}."
                    )
                state = new_state[pos]
                if self._store_state:
                    state_np = {k: v[pos] for k, v in state_np.items()}
            ids = cont_ids
            del next_ids
        lengths += full_steps
        self._obs, self._state, self._ids = obs, state, ids
        return len(ids)

    def _execute_into(self, state: DictTensor, state_np: dict[str, npt.NDArray[Any]]) -> int:
        """``execute`` with ``env.step_into``: every env runs at every step (auto-reset).

        The agent reads ``observation/*[:, t]`` in place (views of the buffer) and the env
        writes the next step's straight there, so each observation is written once; the env
        writes the final observation of an ended episode into ``_observation/*[:, t]``.
        The other rows of ``_observation/*[:, t]`` equal ``observation/*[:, t + 1]`` (the
        carry for the last step) and are copied once per slice, at the end.
        """
        agent, env, n, T = self.agent, self.env, self.n_envs, self.n_timesteps
        info = self._agent_info
        carry, views, outs, finals = self._carry, self._obs_at, self._outs, self._finals
        for k, obs_dst, _ in self._obs_dst:
            obs_dst[:, 0] = carry[k]
        ended_at: list[tuple[int, list[Any]]] = []
        shape = (n,)
        history, store_state, worker = self._history, self._store_state, self.worker
        action_checks, action_dst = self._action_checks, self._action_dst
        action_full, n_action_keys = self._action_full, len(self._action_full)
        step_into = env.step_into  # type: ignore[attr-defined]
        for t in range(T):
            obs = DictTensor(views[t])  # a fresh mapping (agents may set keys), no checks
            if history:
                past = {k: v[:, :t] for k, v in self._history_src}
                hist = TemporalDictTensor(DictTensor(past, batch_shape=(n, t)))
                action, new_state = agent(state, obs, info, hist)
            else:
                action, new_state = agent(state, obs, info)
            usual = type(action) is DictTensor and action.batch_shape == shape
            if usual:
                act = action.to_dict()
                usual = len(act) == n_action_keys
                for k, s, d in action_full:
                    a = act.get(k)
                    if type(a) is not np.ndarray or a.shape != s or a.dtype != d:
                        usual = False
                        break
            if not usual:  # another type, shape or dtype, or torch leaves: the full check
                act = check_leaves(action, "action", n, action_checks, (worker, t))
                action = DictTensor(act, batch_shape=shape)  # the env gets numpy actions
            for k, act_dst in action_dst:
                act_dst[:, t] = act[k]
            if store_state:
                new_np = check_leaves(new_state, "new_state", n, self._state_checks, (worker, t))
                for k, s_dst, ns_dst in self._state_dst:
                    s_dst[:, t] = state_np[k]
                    ns_dst[:, t] = new_np[k]
                state_np = new_np
            elif t == 0:
                check_leaves(new_state, "new_state", n, self._state_checks, (worker, t))
            ended = step_into(action, outs[t], finals[t])
            try:
                some = len(ended) > 0
            except TypeError:
                raise self._ids_error(t, ended, n) from None
            if some:  # a copy: the env may reuse its array
                ended_at.append((t, ended.tolist() if type(ended) is np.ndarray else list(ended)))
            state = new_state
        self._lengths[:] = T
        keep = self._keep  # False where an episode ended: the env wrote its final row there
        keep[:] = True
        if ended_at:
            rows = np.array([j for _, e in ended_at for j in e])
            if _bad_ids(rows, n):
                raise next(
                    self._ids_error(t, e, n) for t, e in ended_at if _bad_ids(np.array(e), n)
                )
            steps = np.array([t for t, e in ended_at for _ in e], np.intp)
            keep[rows, steps] = False
        for k, obs_dst, next_dst in self._obs_dst:
            np.copyto(next_dst[:, : T - 1], obs_dst[:, 1:], where=self._keep_as[k][:, : T - 1])
            np.copyto(next_dst[:, T - 1], carry[k], where=self._keep_as[k][:, T - 1])
        self._state = state
        return n

    def _ids_error(self, t: int, ended: object, n: int) -> ValueError:
        return ValueError(
            f"worker {self.worker}, step {t}: env.step_into returned {ended!r} as the ids of "
            f"the envs whose episode ended; expected a 1-D int array of ids in [0, {n}) (see "
            "rlstructures.agents.StepIntoVecEnv)."
        )

    def close(self) -> None:
        """Close the env and the agent."""
        try:
            self.env.close()
        finally:
            self.agent.close()
