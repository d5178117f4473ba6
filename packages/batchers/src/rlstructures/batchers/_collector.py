"""The collection loop: one VecEnv and one agent writing steps into rows of a buffer.

The same code runs in the calling process (LocalBatcher) and in every worker process
(MultiProcessBatcher), which is why both return identical trajectories.

What the agent receives at each step, in both env modes: ``observation`` with C-contiguous
``[n, *row]`` numpy leaves (one row per running env); ``agent_info`` ``[n]`` rows; and for
an agent that ``require_history()``, ``history``: a TemporalDictTensor ``[n, t, ...]`` of
the slice's earlier steps with the ``observation/*`` keys and the agent's own earlier
outputs under ``action/*`` (views of the buffer; ``Agent.history_at`` rebuilds the same from
stored trajectories). Every ``action`` and ``new_state`` it returns is checked (batch size,
keys, row shapes, dtypes) before it is used.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt

from rlstructures.agents import Agent, VecEnv
from rlstructures.batchers._checks import StateCheck, at, check_leaves, check_output, checks_of
from rlstructures.batchers._layout import Specs
from rlstructures.batchers._staged import StagedObservation, StageSlot
from rlstructures.batchers.errors import AgentOutputError
from rlstructures.dicttensor import DictTensor, TemporalDictTensor

__all__ = ["Collector"]


def _contiguous(obs: DictTensor, leaves: dict[str, npt.NDArray[Any]]) -> DictTensor:
    """``obs`` when its leaves are C-contiguous numpy arrays, else a DictTensor of copies.

    Args:
        obs: an observation returned by an env.
        leaves: its numpy leaves (``check_leaves``).
    """
    if obs.backend == "numpy" and all(v.flags.c_contiguous for v in leaves.values()):
        return obs
    return DictTensor(
        {k: np.ascontiguousarray(v) for k, v in leaves.items()}, batch_shape=obs.batch_shape
    )


def _one_element_per_step(arr: npt.NDArray[Any], size: int) -> npt.NDArray[Any]:
    """A 1-D view of a ``[n, T, *row]`` buffer array (C-contiguous) with one element per step.

    Each row becomes one opaque element of its byte size, so that moving steps around is
    one fancy-index copy of ``size`` elements, several times faster than moving the rows of
    a 2-D view.
    """
    assert arr.flags.c_contiguous  # every buffer array is (BufferLayout), so are its rows
    flat = arr.reshape(size, -1)
    if flat.shape[1] == 1:
        return flat.reshape(size)
    return flat.view(np.dtype((np.void, arr.itemsize * flat.shape[1])))[:, 0]


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
        self.n_envs = n = int(env.n_envs)
        self._step = {k[5:]: v for k, v in views.items() if k.startswith("step:")}
        self._info = {k[5:]: v for k, v in views.items() if k.startswith("info:")}
        self._lengths = views["lengths"]
        self.n_timesteps = T = n_timesteps
        self._obs_checks = checks_of(specs.observation)
        self._action_checks = checks_of(specs.action)
        # (key, [n_envs, *row], dtype) of a valid numpy action with every env running: the
        # fast path checks it inline
        self._action_full = tuple((k, (n, *s), d) for k, s, d in self._action_checks)
        self._check_state = StateCheck(specs.state)
        self._check_initial = StateCheck(specs.state, "initial_state")
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
        # what `history` holds: the observations and the agent's own outputs
        self._history_src = [
            (k, v) for k, v in self._step.items() if k.startswith(("observation/", "action/"))
        ]
        self._obs: DictTensor | None = None
        self._state: DictTensor | None = None
        # The fast path: a VecEnv in auto-reset mode with ``step_into`` writes the observation
        # of step t + 1 into ``_stage[k][t + 1]``, where the agent reads it at the next step
        # (C-contiguous rows, like the arrays ``step`` returns); the final observation of an
        # ended episode goes straight into ``_observation/*[:, t]``. At the end of the slice
        # the stage is copied into ``observation/*`` and the other rows of
        # ``_observation/*``, once (see _execute_into).
        self._into = n > 0 and (
            getattr(env, "auto_reset", False) is True and callable(getattr(env, "step_into", None))
        )
        # A VecEnv with ``reset_step_ids`` (GymVectorVecEnv over a NEXT_STEP vector env
        # without partial resets) lists after each step_into the envs that spent it on a
        # reset: those rows are no transitions and are dropped at the end of the slice.
        self._skips = self._into and getattr(env, "reset_step_ids", None) is not None
        slots = T + 1 if self._into else 1
        self._stage = {
            k: np.zeros((slots, n, *s.shape), s.dtype) for k, s in specs.observation.items()
        }
        at_t = [{k: v[t] for k, v in self._stage.items()} for t in range(slots)]
        self._obs_at = [DictTensor(v, batch_shape=(n,)) for v in at_t]
        self._slots = [StageSlot(v, n) for v in at_t]  # torch views made once per slot
        # read-only mappings: an env must write into these arrays, not rebind the keys
        self._outs = [MappingProxyType(v) for v in at_t[1:]]
        self._finals = [
            MappingProxyType({k: next_dst[:, t] for k, _, next_dst in self._obs_dst})
            for t in range(T if self._into else 0)
        ]
        self._keep = np.ones((n, T), np.bool_)
        self._keep_as = {  # `_keep` broadcastable to each observation key's [n, T, *row]
            k: self._keep.reshape(self._keep.shape + (1,) * len(s.shape))
            for k, s in specs.observation.items()
        }
        self._ids: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self._agent_info = DictTensor({}, batch_shape=(n,))

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
        carry = self.n_timesteps if self._into else 0  # _execute_into starts from slot T
        for k, v in check_leaves(obs, "observation", self.n_envs, self._obs_checks, where).items():
            self._stage[k][carry] = v
        self._obs = self._obs_at[carry]  # a C-contiguous copy
        self._ids = np.asarray(ids, dtype=np.int64)
        self.set_agent_info(agent_info)
        for k, v in env_info.items():
            self._info[f"env_info/{k}"][:] = v
        state = self.agent.initial_state(agent_info, self.n_envs)
        self._state = self._check_initial(state, self.n_envs, where)

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
        checks = self._check_state.checks
        start_state = check_output(state, "state", len(ids), checks, "start")
        if any(  # a state holding a view of an observation (numpy or torch)
            np.may_share_memory(v, dst)
            for v in start_state.values()
            for dst in self._stage.values()
        ):
            state = state.clone()  # the slice would overwrite it: keep its values
            start_state = check_output(state, "state", len(ids), checks, "start")
        for k, v in start_state.items():
            dst = self._info[f"agent_state/{k}"]
            dst[:] = 0
            dst[ids] = v
        state_np = start_state.to_dict()  # numpy leaves of `state`, carried when storing it
        if self._into:
            return self._execute_into(state, state_np)
        cur = check_leaves(obs, "observation", len(ids), self._obs_checks, "start")
        check_state = self._check_state
        full_steps = 0
        for t in range(self.n_timesteps):
            n = len(ids)
            if n == 0:
                break
            where = (self.worker, t)
            rows: Any = slice(None) if n == self.n_envs else ids
            info = self._agent_info if n == self.n_envs else self._agent_info[ids]
            if self._history:  # the previous steps of this slice
                past = {k: v[rows, :t] for k, v in self._history_src}
                history = TemporalDictTensor(DictTensor(past, batch_shape=(n, t)))
                action, new_state = agent(state, obs, info, history)
            else:
                action, new_state = agent(state, obs, info)
            act = check_leaves(action, "action", n, self._action_checks, where)
            new_state = check_state(new_state, n, where)
            for k, obs_dst, _ in self._obs_dst:
                obs_dst[rows, t] = cur[k]
            for k, act_dst in self._action_dst:
                act_dst[rows, t] = act[k]
            if self._store_state:
                new_np = check_leaves(new_state, "new_state", n, checks, where)
                for k, s_dst, ns_dst in self._state_dst:
                    s_dst[rows, t] = state_np[k]
                    ns_dst[rows, t] = new_np[k]
                state_np = new_np  # the next step's state (rows selected below)
            if action.backend != "numpy":  # the env gets numpy actions
                action = DictTensor(act, batch_shape=(n,))
            (next_obs, next_ids), (obs, cont_ids) = env.step(action)
            nxt = check_leaves(next_obs, "next observation", n, self._obs_checks, where)
            cont_ids = np.asarray(cont_ids, dtype=np.int64)
            cur = check_leaves(
                obs, "continuing observation", len(cont_ids), self._obs_checks, where
            )
            obs = _contiguous(obs, cur)
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
                        f"{at(where)}: env.step returned continuing ids {cont_ids.tolist()} "
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

        The agent reads the observation of step t in ``_stage[k][t]`` (C-contiguous rows)
        and the env writes the next one straight into ``_stage[k][t + 1]``, so each
        observation is written once during the slice (slot T holds the last one, where the
        next slice starts); the env writes the final observation of an ended episode into
        ``_observation/*[:, t]``. At the end, ``observation/*`` is copied from the stage and
        the other rows of ``_observation/*[:, t]`` (equal to ``observation/*[:, t + 1]``)
        too, one copy per key. For an agent that requires history, each step's observation
        also goes into ``observation/*[:, t]`` at once: ``history`` is made of views of the
        buffer, laid out like the trajectories ``Agent.history_at`` rebuilds it from (float
        sums over time then give the same bits).
        """
        agent, env, n, T = self.agent, self.env, self.n_envs, self.n_timesteps
        info = self._agent_info
        views, slots, outs, finals = self._obs_at, self._slots, self._outs, self._finals
        ended_at: list[tuple[int, list[Any]]] = []
        skipped_at: list[tuple[int, npt.NDArray[np.intp]]] = []
        skips = self._skips
        shape = (n,)
        history, store_state, worker = self._history, self._store_state, self.worker
        action_checks, action_dst = self._action_checks, self._action_dst
        action_full, n_action_keys = self._action_full, len(self._action_full)
        check_state = self._check_state
        step_into = env.step_into  # type: ignore[attr-defined]
        for stage in self._stage.values():
            stage[0] = stage[T]  # the last observation of the previous slice (or of reset)
        for t in range(T):
            obs = StagedObservation(slots[t])  # a fresh mapping (agents may set keys)
            if history:  # from the buffer, [n, T, ...] like the trajectories replayed later
                for k, obs_dst, _ in self._obs_dst:
                    obs_dst[:, t] = views[t][k]
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
            new_state = check_state(new_state, n, (worker, t))
            if store_state:
                new_np = check_leaves(new_state, "new_state", n, check_state.checks, (worker, t))
                for k, s_dst, ns_dst in self._state_dst:
                    s_dst[:, t] = state_np[k]
                    ns_dst[:, t] = new_np[k]
                state_np = new_np
            ended = step_into(action, outs[t], finals[t])
            try:
                some = len(ended) > 0
            except TypeError:
                raise self._ids_error(t, ended, n) from None
            if some:  # a copy: the env may reuse its array
                ended_at.append((t, ended.tolist() if type(ended) is np.ndarray else list(ended)))
            if skips:
                skipped = env.reset_step_ids  # type: ignore[attr-defined]
                if len(skipped):  # a copy: the env may reuse its array
                    skipped_at.append((t, np.array(skipped, np.intp)))
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
            stage = self._stage[k]
            by_env = stage.swapaxes(0, 1)  # [n, T + 1, *row]
            np.copyto(obs_dst, by_env[:, :T])
            np.copyto(next_dst, by_env[:, 1:], where=self._keep_as[k])
        if skipped_at:
            self._drop_steps(skipped_at)
        self._state = state
        return n

    def _drop_steps(self, skipped_at: list[tuple[int, npt.NDArray[np.intp]]]) -> None:
        """Remove the rows ``(env, t)`` of reset steps: the env's later steps move up.

        Its length shrinks by as many; the rows past it are zeroed by the batcher.
        """
        n, T = self.n_envs, self.n_timesteps
        rows = np.concatenate([e for _, e in skipped_at])
        if _bad_ids(rows, n):
            t, e = next((t, e) for t, e in skipped_at if _bad_ids(e, n))
            raise ValueError(
                f"worker {self.worker}, step {t}: env.reset_step_ids was {e.tolist()!r}; "
                f"expected a 1-D int array of ids in [0, {n}) (see "
                "rlstructures.agents.StepIntoVecEnv)."
            )
        steps = np.repeat([t for t, _ in skipped_at], [len(e) for _, e in skipped_at])
        kept = np.ones((n, T), np.bool_)
        kept[rows, steps] = False
        # the flat index (env * T + t) of each kept step, and where it goes: its rank in its row
        src = np.flatnonzero(kept)
        dst = (np.cumsum(kept, axis=1) - 1 + np.arange(0, n * T, T)[:, None])[kept]
        moving = src != dst
        src, dst = src[moving], dst[moving]
        for arr in self._step.values():
            if arr.size:  # (rows of a 0-sized shape: nothing to move)
                flat = _one_element_per_step(arr, n * T)
                flat[dst] = flat[src]  # the right side is a copy: no overlap to fear
        self._lengths[:] = kept.sum(axis=1)

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
