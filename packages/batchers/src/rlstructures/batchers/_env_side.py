"""The env side of the collector: step one VecEnv and write its observations into buffer rows.

Every batcher runs this half where its envs live: in the calling process (LocalBatcher), in
each worker process (MultiProcessBatcher, InferenceBatcher), in a Ray actor (RayBatcher).
Its partner, ``AgentSide`` (``_agent_side.py``), calls the agent; ``Collector``
(``_collector.py``) runs both in one loop. They exchange only arrays:

Inputs:
    * ``views``: this VecEnv's rows ``[n, ...]`` of the buffer arrays (``BufferLayout``:
      ``step:*`` ``[n, T, *row]``, ``info:*`` ``[n, *row]``, ``lengths`` ``[n]``). It writes
      ``observation/*``, ``_observation/*``, ``info:env_info/*`` and ``lengths``; at the end
      of a slice with reset steps to drop it also moves the rows of every ``step:*`` array
      (the agent side's ``action/*`` and ``agent_state/*`` included: call ``finish()`` after
      the last ``act``).
    * ``stage``: ``{key: [slots, n, *row]}`` arrays (``new_stage``) where the agent reads the
      observations: slot t holds the observation of step t in the step_into mode (slots =
      T + 1: slot T is where the next slice starts), slot 0 the reset observation otherwise.
      Private by default; a batcher whose agent runs elsewhere passes rows of a shared
      segment (e.g. the columns ``[w * n, (w + 1) * n)`` of a ``[slots, N, *row]`` array, so
      that slot t of every worker is one C-contiguous ``[N, *row]`` batch for one agent call).
    * one numpy action DictTensor ``[n_running]`` per step, from the agent side.

Per slice, in one of two modes (``fast``: a VecEnv in auto-reset mode with ``step_into``):

    begin()                                  # lengths = 0; fast: slot 0 = slot T
    fast:  step_into(t, action)  for t < T   # writes stage[t + 1] and ended episodes' rows
    else:  obs, pos = step(t, action)        # until ids is empty; obs [len(ids)] rows for
                                             # the next act(), pos for AgentSide.carry()
    n_running = finish()                     # lengths; fast: observation/* from the stage,
                                             # _observation/*, reset steps dropped; the
                                             # steps past each length zeroed (Padding)

Outputs: the buffer rows above, ``ids`` (the running envs, sorted) and ``obs`` (what the agent
reads next: a view of a stage slot in the fast mode, else C-contiguous arrays).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt

from rlstructures.agents import VecEnv
from rlstructures.batchers._checks import Checks, at, check_leaves, checks_of
from rlstructures.batchers._layout import Specs
from rlstructures.batchers._padding import Padding
from rlstructures.batchers._slice_end import SliceEnd
from rlstructures.batchers.errors import AgentOutputError
from rlstructures.dicttensor import DictTensor, Spec

__all__ = ["EnvSide", "continuing_positions", "env_ids", "new_stage", "uses_step_into"]


def uses_step_into(env: object) -> bool:
    """Whether ``env`` takes the fast path: auto-reset mode and a ``step_into`` method."""
    return getattr(env, "auto_reset", False) is True and callable(getattr(env, "step_into", None))


def new_stage(observation: Mapping[str, Spec], n: int, slots: int) -> dict[str, npt.NDArray[Any]]:
    """Zeroed ``{key: [slots, n, *row]}`` arrays for the observations of ``n`` envs."""
    return {k: np.zeros((slots, n, *s.shape), s.dtype) for k, s in observation.items()}


def continuing_positions(
    ids: npt.NDArray[np.int64], cont_ids: npt.NDArray[np.int64], where: tuple[int, int]
) -> npt.NDArray[np.intp]:
    """Positions of ``cont_ids`` in ``ids`` (the rows to keep of a ``[len(ids)]`` batch).

    Raises:
        AgentOutputError: ``cont_ids`` is not a sorted subset of ``ids`` without repeats.
    """
    pos = np.searchsorted(ids, cont_ids)
    if pos.size and (pos.max() >= len(ids) or not np.array_equal(ids[pos], cont_ids)
                     or (np.diff(pos) <= 0).any()):
        raise AgentOutputError(
            f"{at(where)}: env.step returned continuing ids {cont_ids.tolist()} "
            f"that are not a sorted subset of the running ids {ids.tolist()} (each id once)."
        )
    return pos


def env_ids(ids: object, what: str, where: str) -> npt.NDArray[np.int64]:
    """The ids a VecEnv returned, as int64; AgentOutputError unless 1-D integers."""
    raw = np.asarray(ids)
    if raw.ndim != 1 or (raw.dtype.kind not in "iu" and raw.size):
        raise AgentOutputError(
            f"{where}: env.{what} returned ids {raw.tolist()!r} of dtype {raw.dtype}; expected "
            "a 1-D array of int env indices (see rlstructures.agents.VecEnv)."
        )
    return raw.astype(np.int64, copy=False)


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


def _ids_at(
    at: list[tuple[int, npt.NDArray[np.intp]]], n: int
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]] | None:
    """``(ids, steps)`` of the ``(step, ids)`` pairs, flat; None if an id is bad."""
    if not at:
        return _NONE, _NONE
    ids = np.concatenate([e for _, e in at])  # every part intp: so is ids
    if _bad_ids(ids, n):
        return None
    steps = np.repeat(np.array([t for t, _ in at], np.intp), [len(e) for _, e in at])
    return ids, steps


_NONE = np.zeros(0, np.intp)


def _bad_ids(ids: npt.NDArray[Any], n: int) -> bool:
    """Whether ``ids`` is not a 1-D int array of values in ``[0, n)``."""
    return bool(
        ids.ndim != 1
        or ids.dtype.kind not in "iu"
        or not ids.size
        or ids.min() < 0
        or ids.max() >= n
    )


class EnvSide:
    """One VecEnv writing its observations into ``n_envs`` rows of the buffer arrays.

    Invariants: ``ids`` (sorted, int64) are the running envs and ``obs`` their current
    observation ``[len(ids)]``; in the fast mode every env runs at every step and ``obs``
    is slot T of the stage between slices.

    Args:
        env: the VecEnv.
        views: its rows of every buffer array (see the module docstring).
        specs: the probe specs every observation must match.
        n_timesteps: T, the steps per slice.
        worker: index, for messages.
        stage: where the agent reads the observations (``new_stage(specs.observation, n,
            T + 1 if uses_step_into(env) else 1)``); None: a private one.
    """

    def __init__(
        self,
        env: VecEnv,
        views: Mapping[str, npt.NDArray[Any]],
        specs: Specs,
        *,
        n_timesteps: int,
        worker: int,
        stage: Mapping[str, npt.NDArray[Any]] | None = None,
    ) -> None:
        self.env = env
        self.worker = worker
        self.n_envs = n = int(env.n_envs)
        self.n_timesteps = T = n_timesteps
        self._step = {k[5:]: v for k, v in views.items() if k.startswith("step:")}
        self._env_info = {k: views[f"info:env_info/{k}"] for k in specs.env_info}
        self._lengths = views["lengths"]
        self._padding = Padding(self._step.values(), self._lengths, T)
        self._obs_checks: Checks = checks_of(specs.observation)
        self._obs_dst = [
            (k, self._step[f"observation/{k}"], self._step[f"_observation/{k}"])
            for k in specs.observation
        ]
        # The fast path: a VecEnv in auto-reset mode with ``step_into`` writes the observation
        # of step t + 1 into ``stage[k][t + 1]``, where the agent reads it at the next step
        # (C-contiguous rows, like the arrays ``step`` returns); the final observation of an
        # ended episode goes straight into ``_observation/*[:, t]``. At the end of the slice
        # the stage becomes ``observation/*`` and the other rows of ``_observation/*``, once
        # (``SliceEnd``, see finish).
        self.fast = n > 0 and uses_step_into(env)
        # A VecEnv with ``reset_step_ids`` (GymVectorVecEnv over a NEXT_STEP vector env
        # without partial resets) lists after each step_into the envs that spent it on a
        # reset: those rows are no transitions and are dropped at the end of the slice.
        self._skips = self.fast and getattr(env, "reset_step_ids", None) is not None
        slots = T + 1 if self.fast else 1
        if stage is None:
            stage = new_stage(specs.observation, n, slots)
        for k, s in specs.observation.items():
            if stage[k].shape != (slots, n, *s.shape):  # a batcher's bug, not the user's
                raise ValueError(f"stage[{k!r}] is {stage[k].shape}, expected {(slots, n)}+row")
        self.stage: Mapping[str, npt.NDArray[Any]] = stage
        at_t = [{k: v[t] for k, v in stage.items()} for t in range(slots)]
        self.obs_at = [DictTensor(v, batch_shape=(n,)) for v in at_t]
        # read-only mappings: an env must write into these arrays, not rebind the keys
        self._outs = [MappingProxyType(v) for v in at_t[1:]]
        self._finals = [
            MappingProxyType({k: next_dst[:, t] for k, _, next_dst in self._obs_dst})
            for t in range(T if self.fast else 0)
        ]
        self._slice_end: SliceEnd | None = None
        if self.fast:
            obs_keys = {f"{p}observation/{k}" for k in specs.observation for p in ("", "_")}
            self._slice_end = SliceEnd(
                stage,
                {k: (obs_dst, next_dst) for k, obs_dst, next_dst in self._obs_dst},
                [v for k, v in self._step.items() if k not in obs_keys],
                self._lengths,
                T,
            )
        self.ids: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self.obs: DictTensor = self.obs_at[0]
        self._cur: dict[str, npt.NDArray[Any]] = {}  # leaves of `obs` (the general mode)
        self._full_steps = 0
        self._ended_at: list[tuple[int, npt.NDArray[np.intp]]] = []
        self._skipped_at: list[tuple[int, npt.NDArray[np.intp]]] = []
        self._step_into: Any = getattr(env, "step_into", None)  # called in the fast mode only

    @property
    def n_running(self) -> int:
        """Envs still running."""
        return len(self.ids)

    def reset(self, env_info: DictTensor) -> None:
        """Reset every env (``env_info``: ``[n_envs]`` rows); ``obs`` and ``ids`` restart."""
        where = f"worker {self.worker}, reset"
        obs, ids = self.env.reset(env_info if env_info.keys() else None)
        carry = self.n_timesteps if self.fast else 0  # a fast slice starts from slot T
        for k, v in check_leaves(obs, "observation", self.n_envs, self._obs_checks, where).items():
            self.stage[k][carry] = v
        self.obs = self.obs_at[carry]  # a C-contiguous copy
        self.ids = env_ids(ids, "reset", where)
        if not np.array_equal(self.ids, np.arange(self.n_envs)):
            raise AgentOutputError(
                f"{where}: env.reset returned ids {self.ids.tolist()}; expected every env, "
                f"in order: {list(range(self.n_envs))}."
            )
        for k, v in env_info.items():
            self._env_info[k][:] = v

    def begin(self) -> None:
        """Start a slice: lengths to 0; fast: the last observation into slot 0."""
        self._lengths[:] = 0
        if self.fast:
            for stage in self.stage.values():
                stage[0] = stage[self.n_timesteps]  # the last of the previous slice (or reset)
            self._ended_at.clear()
            self._skipped_at.clear()
        else:
            self._cur = check_leaves(
                self.obs, "observation", len(self.ids), self._obs_checks, "start"
            )
            self._full_steps = 0

    # ------------------------------------------------------------------ the general mode
    def step(self, t: int, action: DictTensor) -> tuple[DictTensor, npt.NDArray[np.intp] | None]:
        """Step the running envs with ``action`` (numpy, ``[len(ids)]`` rows).

        Writes ``observation/*[ids, t]`` (the observation the agent acted on), the next
        observation into ``_observation/*[ids, t]`` and counts the step in ``lengths``.

        Returns:
            ``(obs, pos)``: the observation of the continuing envs (C-contiguous, the new
            ``ids``), and the positions of those envs among the previous ids (None when all
            continue), for ``AgentSide.carry``.
        """
        ids, n = self.ids, len(self.ids)
        where = (self.worker, t)
        rows: Any = slice(None) if n == self.n_envs else ids
        cur = self._cur
        for k, obs_dst, _ in self._obs_dst:
            obs_dst[rows, t] = cur[k]
        (next_obs, _), (obs, cont_ids) = self.env.step(action)
        nxt = check_leaves(next_obs, "next observation", n, self._obs_checks, where)
        cont_ids = env_ids(cont_ids, "step", at(where))
        cur = check_leaves(obs, "continuing observation", len(cont_ids), self._obs_checks, where)
        for k, _, next_dst in self._obs_dst:
            next_dst[rows, t] = nxt[k]
        if n == self.n_envs:
            self._full_steps += 1  # added to every length at the end: one op, not one per step
        else:
            self._lengths[ids] += 1
        if len(cont_ids) == n and (cont_ids is ids or np.array_equal(cont_ids, ids)):
            pos = None  # every env continues
        else:
            pos = continuing_positions(ids, cont_ids, where)
        self.obs, self._cur, self.ids = _contiguous(obs, cur), cur, cont_ids
        return self.obs, pos

    # ------------------------------------------------------------------ the fast mode
    def step_into(self, t: int, action: DictTensor) -> None:
        """Step every env with ``action`` (numpy ``[n_envs]``); the next obs into slot t + 1."""
        ended = self._step_into(action, self._outs[t], self._finals[t])
        try:
            some = len(ended) > 0
        except TypeError:
            raise self._ids_error(t, ended) from None
        if some:
            # a copy: the env may reuse its array
            ids = np.array(ended if type(ended) is np.ndarray else list(ended))
            if ids.ndim != 1 or ids.dtype.kind not in "iu":
                raise self._ids_error(t, ended)
            self._ended_at.append((t, ids.astype(np.intp, copy=False)))
        if self._skips:
            skipped = self.env.reset_step_ids  # type: ignore[attr-defined]
            if len(skipped):  # a copy: the env may reuse its array
                self._skipped_at.append((t, np.array(skipped, np.intp)))

    def finish(self) -> int:
        """End the slice (after the agent side's last write); how many envs still run.

        In the fast mode, ``observation/*`` and ``_observation/*`` are written from the stage
        and the final observations, the reset steps dropped (``SliceEnd``). In both modes the
        steps past each env's length are zeroed in every ``step:*`` row (``Padding``): what
        ``get()`` returns as padding, copied as it is.
        """
        if not self.fast:
            self._lengths += self._full_steps
            self._padding.zero()
            return len(self.ids)
        n = self.n_envs
        assert self._slice_end is not None  # made in the fast mode
        ended = _ids_at(self._ended_at, n)
        if ended is None:
            raise next(self._ids_error(t, e) for t, e in self._ended_at if _bad_ids(e, n))
        if self._skipped_at:
            skipped = _ids_at(self._skipped_at, n)
            if skipped is None:
                t, e = next((t, e) for t, e in self._skipped_at if _bad_ids(e, n))
                raise ValueError(
                    f"worker {self.worker}, step {t}: env.reset_step_ids was {e.tolist()!r}; "
                    f"expected a 1-D int array of ids in [0, {n}) (see "
                    "rlstructures.agents.StepIntoVecEnv)."
                )
            self._slice_end.compact(*ended, *skipped)
            self._padding.zero()  # the rows with reset steps dropped: their last steps
        else:
            self._slice_end.plain(*ended)  # every length T: no padding
        self.obs = self.obs_at[self.n_timesteps]
        return n

    def _ids_error(self, t: int, ended: object) -> ValueError:
        return ValueError(
            f"worker {self.worker}, step {t}: env.step_into returned {ended!r} as the ids of "
            f"the envs whose episode ended; expected a 1-D int array of ids in [0, "
            f"{self.n_envs}) (see rlstructures.agents.StepIntoVecEnv)."
        )
