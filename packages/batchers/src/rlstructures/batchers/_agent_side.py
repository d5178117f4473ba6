"""The agent side of the collector: call the agent on rows, check and write its outputs.

Every batcher runs this half where its agent lives: with the envs (LocalBatcher,
MultiProcessBatcher's workers, RayBatcher's actors) or once for all workers in the owner
(InferenceBatcher). Its partner, ``EnvSide`` (``_env_side.py``), steps the VecEnv;
``Collector`` (``_collector.py``) runs both in one loop. They exchange only arrays:

Inputs:
    * ``views``: rows ``[n, ...]`` of the buffer arrays (``BufferLayout``) for the ``n`` envs
      the agent acts for. It writes ``action/*``, ``agent_state/*`` / ``_agent_state/*``
      (with ``store_agent_state``), ``info:agent_info/*`` and ``info:agent_state/*`` (the
      state at the start of the slice); it reads ``observation/*`` and ``action/*`` of the
      earlier steps for ``history``.
    * ``stage``: the env side's ``{key: [slots, n, *row]}`` observation arrays (only to
      protect a state that views them: it is copied at ``begin``).
    * per step, the observation ``[n_running]`` rows (C-contiguous numpy) and the running
      ids (sorted row indices into ``views``; None: every row).

Per slice:

    begin(ids)                               # check the start state, write info:agent_state
    fast:  action = act_all(t, obs)          # every row runs at every step
    else:  action = act(t, obs, ids)         # then AgentSide.carry(pos) after env.step

Outputs: ``action``, a numpy DictTensor ``[n_running]`` for the env (checked against the
probe's specs, already written to ``action/*[ids, t]``), and the carried ``state``.

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
from typing import Any

import numpy as np
import numpy.typing as npt

from rlstructures.agents import Agent
from rlstructures.batchers._checks import (
    StateCheck,
    check_leaves,
    check_output,
    checks_of,
    numpy_view,
)
from rlstructures.batchers._layout import Specs
from rlstructures.batchers._staged import StagedObservation, StageSlot
from rlstructures.dicttensor import DictTensor, TemporalDictTensor

__all__ = ["AgentSide"]


class AgentSide:
    """One agent acting for ``n_envs`` rows of the buffer arrays, carrying its state.

    Invariant: ``state`` has one row per running env (the ids given to the last ``act``,
    narrowed by ``carry``).

    Args:
        agent: the agent.
        views: the rows of every buffer array it acts for (see the module docstring).
        specs: the probe specs every output must match.
        n_envs: n, the rows of ``views``.
        n_timesteps: T, the steps per slice.
        store_agent_state: also write the per-step agent state.
        worker: index, for messages.
        stage: the env side's observation arrays.
    """

    def __init__(
        self,
        agent: Agent,
        views: Mapping[str, npt.NDArray[Any]],
        specs: Specs,
        *,
        n_envs: int,
        n_timesteps: int,
        store_agent_state: bool,
        worker: int,
        stage: Mapping[str, npt.NDArray[Any]],
    ) -> None:
        self.agent = agent
        self.worker = worker
        self.n_envs = n = n_envs
        self.n_timesteps = n_timesteps
        step = {k[5:]: v for k, v in views.items() if k.startswith("step:")}
        self._info = {k[5:]: v for k, v in views.items() if k.startswith("info:")}
        self._stage = stage
        self._action_checks = checks_of(specs.action)
        # (key, [n_envs, *row], dtype) of a valid numpy action with every env running: the
        # fast path checks it inline
        self._action_full = tuple((k, (n, *s), d) for k, s, d in self._action_checks)
        self._check_state = StateCheck(specs.state)
        self._check_initial = StateCheck(specs.state, "initial_state")
        self._store_state = store_agent_state and bool(specs.state)
        self._obs_dst = [(k, step[f"observation/{k}"]) for k in specs.observation]
        self._action_dst = [(k, step[f"action/{k}"]) for k in specs.action]
        self._state_dst = (
            [(k, step[f"agent_state/{k}"], step[f"_agent_state/{k}"]) for k in specs.state]
            if self._store_state
            else []
        )
        self._history = agent.require_history()
        # what `history` holds: the observations and the agent's own outputs
        self._history_src = [
            (k, v) for k, v in step.items() if k.startswith(("observation/", "action/"))
        ]
        self.state: DictTensor | None = None
        self._state_np: dict[str, npt.NDArray[Any]] = {}  # numpy leaves of `state`, stored
        self._new_state: DictTensor | None = None  # the last act's, until carry
        self._agent_info = DictTensor({}, batch_shape=(n,))
        # per step of act_all: the observation it was given and that slot's torch views
        self._staged: list[tuple[DictTensor, StageSlot] | None] = [None] * n_timesteps

    def set_agent_info(self, agent_info: DictTensor) -> None:
        """New per-env agent_info rows (batch ``(n_envs,)``), written to the info.

        The agent then reads them there: a copy the caller cannot change afterwards.
        """
        rows = {}
        for k, v in agent_info.items():
            dst = rows[k] = self._info[f"agent_info/{k}"]
            dst[:] = v
        self._agent_info = DictTensor(rows, batch_shape=(self.n_envs,))

    def reset(self, agent_info: DictTensor) -> None:
        """New agent_info rows and the agent's initial state for every env."""
        self.set_agent_info(agent_info)
        state = self.agent.initial_state(agent_info, self.n_envs)
        self.state = self._check_initial(state, self.n_envs, f"worker {self.worker}, reset")

    def begin(self, ids: npt.NDArray[np.int64]) -> None:
        """Start a slice for the running ``ids``: check the state, write its info rows."""
        state = self.state
        if state is None:
            raise RuntimeError("AgentSide.begin() before reset()")  # the batcher checks first
        checks = self._check_state.checks
        start_state = check_output(state, "state", len(ids), checks, "start")
        if any(  # a state holding a view of an observation (numpy or torch)
            np.may_share_memory(v, dst)
            for v in start_state.values()
            for dst in self._stage.values()
        ):
            state = self.state = state.clone()  # the slice would overwrite it: keep its values
            start_state = check_output(state, "state", len(ids), checks, "start")
        for k, v in start_state.items():
            dst = self._info[f"agent_state/{k}"]
            dst[:] = 0
            dst[ids] = v
        self._state_np = start_state.to_dict()  # carried when storing the state

    def _current_state(self) -> DictTensor:
        state = self.state
        if state is None:  # pragma: no cover - the batcher resets first
            raise RuntimeError("AgentSide.act() before reset()")
        return state

    # ------------------------------------------------------------------ the general mode
    def act(self, t: int, obs: DictTensor, ids: npt.NDArray[np.int64]) -> DictTensor:
        """The agent's action at step ``t`` for the running ``ids`` (``obs``: their rows).

        Writes ``action/*[ids, t]`` (and the states with ``store_agent_state``); the new
        state waits for ``carry``.

        Returns:
            The action, a numpy DictTensor ``[len(ids)]`` for ``env.step``.
        """
        n = len(ids)
        where = (self.worker, t)
        rows: Any = slice(None) if n == self.n_envs else ids
        info = self._agent_info if n == self.n_envs else self._agent_info[ids]
        state = self._current_state()
        if self._history:  # the previous steps of this slice
            past = {k: v[rows, :t] for k, v in self._history_src}
            history = TemporalDictTensor(DictTensor(past, batch_shape=(n, t)))
            action, new_state = self.agent(state, obs, info, history)
        else:
            action, new_state = self.agent(state, obs, info)
        act = check_leaves(action, "action", n, self._action_checks, where)
        new_state = self._check_state(new_state, n, where)
        for k, act_dst in self._action_dst:
            act_dst[rows, t] = act[k]
        if self._store_state:
            new_np = check_leaves(new_state, "new_state", n, self._check_state.checks, where)
            state_np = self._state_np
            for k, s_dst, ns_dst in self._state_dst:
                s_dst[rows, t] = state_np[k]
                ns_dst[rows, t] = new_np[k]
            self._state_np = new_np  # the next step's state (rows selected by carry)
        self._new_state = new_state
        if action.backend != "numpy":  # the env gets numpy actions
            action = DictTensor(act, batch_shape=(n,))
        return action

    def carry(self, pos: npt.NDArray[np.intp] | None) -> None:
        """The last ``act``'s new state becomes the state, for the rows ``pos`` (None: all)."""
        new_state = self._new_state
        if new_state is None:  # pragma: no cover - act() always sets it
            raise RuntimeError("AgentSide.carry() before act()")
        if pos is None:
            self.state = new_state
        else:
            self.state = new_state[pos]
            if self._store_state:
                self._state_np = {k: v[pos] for k, v in self._state_np.items()}
        self._new_state = None

    # ------------------------------------------------------------------ the fast mode
    def act_all(self, t: int, obs: DictTensor) -> DictTensor:
        """``act`` with every row running, the state carried at once (the step_into mode).

        ``obs`` is a view of the stage (slot t). For an agent that requires history, it is
        also written into ``observation/*[:, t]`` first: ``history`` is made of views of the
        buffer, laid out like the trajectories ``Agent.history_at`` rebuilds it from (float
        sums over time then give the same bits).
        """
        n, worker = self.n_envs, self.worker
        state, info = self._current_state(), self._agent_info
        slot = obs
        staged = self._staged[t]  # (the slot's DictTensor, its torch views made once)
        if staged is None or staged[0] is not slot:
            staged = self._staged[t] = (slot, StageSlot(slot.to_dict(), n))
        obs = StagedObservation(slot, staged[1])  # a fresh mapping (agents may set keys)
        if self._history:  # from the buffer, [n, T, ...] like the trajectories replayed later
            for k, obs_dst in self._obs_dst:
                obs_dst[:, t] = slot[k]
            past = {k: v[:, :t] for k, v in self._history_src}
            hist = TemporalDictTensor(DictTensor(past, batch_shape=(n, t)))
            action, new_state = self.agent(state, obs, info, hist)
        else:
            action, new_state = self.agent(state, obs, info)
        usual = type(action) is DictTensor and action.batch_shape == (n,)
        if usual:
            act = action.to_dict()
            usual = len(act) == len(self._action_full)
            as_numpy = False  # a torch leaf was viewed as numpy: the env gets numpy actions
            for k, s, d in self._action_full:
                a = act.get(k)
                if type(a) is not np.ndarray:
                    a = numpy_view(a)
                    if a is None:
                        usual = False
                        break
                    act[k], as_numpy = a, True
                if a.shape != s or a.dtype != d:
                    usual = False
                    break
            if usual and as_numpy:
                action = DictTensor(act, batch_shape=(n,))
        if not usual:  # another type, shape or dtype, or unusual leaves: the full check
            act = check_leaves(action, "action", n, self._action_checks, (worker, t))
            action = DictTensor(act, batch_shape=(n,))  # the env gets numpy actions
        for k, act_dst in self._action_dst:
            act_dst[:, t] = act[k]
        check_state = self._check_state
        new_state = check_state(new_state, n, (worker, t))
        if self._store_state:
            new_np = check_leaves(new_state, "new_state", n, check_state.checks, (worker, t))
            state_np = self._state_np
            for k, s_dst, ns_dst in self._state_dst:
                s_dst[:, t] = state_np[k]
                ns_dst[:, t] = new_np[k]
            self._state_np = new_np
        self.state = new_state
        return action
