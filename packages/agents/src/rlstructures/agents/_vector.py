"""`GymVectorVecEnv`: any gymnasium ``VectorEnv`` (EnvPool, gymnasium's own) as a `VecEnv`."""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, Literal, NoReturn

import numpy as np
import numpy.typing as npt

from rlstructures.agents._env import EnvIds, StepResult
from rlstructures.agents._info import InfoLeaf, info_leaves
from rlstructures.agents._inputs import check_action, env_info_columns, idle_actions
from rlstructures.agents._make import add_note
from rlstructures.agents._spaces import (
    ActionSpec,
    Flags,
    ObsLeaf,
    action_spec,
    flags_of,
    gather,
    get,
    observation_leaves,
    stack_leaf,
)
from rlstructures.agents._vector_info import batched_info, list_info_error
from rlstructures.agents._vector_make import (
    int_arg,
    make_vec_factory,
    require_vector_api,
    vector_env_from,
)
from rlstructures.agents._vector_modes import (
    PartialReset,
    reset_rows,
    resolve_autoreset_mode,
    resolve_partial_reset,
    step_info_names,
)
from rlstructures.agents.errors import (
    EnvError,
    EnvStateError,
    ObservationError,
    UnsupportedSpaceError,
)
from rlstructures.dicttensor import DictTensor, Spec

if TYPE_CHECKING:
    from types import TracebackType

    from gymnasium import Space
    from gymnasium.vector import AutoresetMode

__all__ = ["GymVectorVecEnv"]

_CLOSED: Final = "this GymVectorVecEnv is closed; create a new one."
_NO_IDS: Final = np.zeros(0, np.int64)
_NO_IDS.flags.writeable = False
_MAX: Final = np.maximum.reduce

#: How ended sub-envs restart: the vector env does it in the ending step (SAME_STEP), we do
#: it with a partial reset, or the vector env spends the next step on it (NEXT_STEP without
#: partial resets).
_Restart = Literal["same_step", "partial", "reset_step"]


class GymVectorVecEnv:
    """A gymnasium ``VectorEnv`` of ``num_envs`` sub-envs as a `VecEnv` (a `StepIntoVecEnv`).

    For envs that step a whole batch at once: gymnasium's vectorized envs
    (``gymnasium.make_vec(id, num_envs, vectorization_mode="vector_entry_point")``),
    ``SyncVectorEnv``/``AsyncVectorEnv``, EnvPool's pools (``env_type="gymnasium"``), a JAX or
    GPU simulator behind the ``VectorEnv`` API. The observation keys and both modes are those
    of `GymVecEnv`: ``"frame"`` (or one key per entry of a Dict space, nested keys joined with
    "/"), ``"reward"`` float32, ``"terminated"``, ``"truncated"``, ``"done"``,
    ``"initial_state"``, ``"last_action"``; sub-env k is row k.

    Modes:

    * episode mode (``auto_reset=False``): an env whose episode ended leaves the running ids
      until the next ``reset``. The vector env still steps it (a vector env steps every
      sub-env): it gets valid idle actions (zeros clipped into the action space) and its
      results are dropped; a ``DISABLED`` vector env has it restarted by a partial reset
      first, so it never steps past its end.
    * auto-reset mode (``auto_reset=True``): an ended env continues at once from a fresh
      reset (``initial_state`` True, reward 0, ``last_action`` zeros), its final observation
      is in ``step``'s next observation (``step_into``'s ``final``).

    The vector env's autoreset mode (``metadata["autoreset_mode"]``, or ``autoreset_mode=``)
    decides how ended envs restart; no final observation is lost in any of them:

    * ``SAME_STEP``: the vector env restarts them in the step that ends them; the final
      observation comes from ``info["final_obs"]``.
    * ``NEXT_STEP`` or ``DISABLED`` with a partial reset (``partial_reset="auto"`` finds
      gymnasium's ``reset(options={"reset_mask": ...})`` on SyncVectorEnv/AsyncVectorEnv,
      and on any ``DISABLED`` env; EnvPool's ``reset(env_id=...)``): right after the ending
      step, the ended envs, and only they, are reset. Same steps as `GymVecEnv`.
    * ``NEXT_STEP`` without partial resets (gymnasium's ``vector_entry_point`` envs such as
      CartPole's): the vector env spends the step after an end resetting that env, ignoring
      its action. That *reset step* is no transition: `reset_step_ids` lists the envs whose
      row of the last ``step_into`` was one (the batchers drop those rows: such an env makes
      one step fewer in that slice). Until then the env's continuing row is a placeholder
      (its final frame, with ``initial_state`` True) on which the agent acts in vain. Through
      ``step``, the env instead sits the reset step out: it is absent from the continuing
      ids of the step that ended its episode and comes back with its fresh observation (in
      the continuing ids) one step later.

    Seeding: the first ``reset`` passes ``seed`` to the vector env (a SyncVectorEnv or
    AsyncVectorEnv seeds sub-env k with ``seed + k``, as `GymVecEnv` does; an EnvPool pool is
    seeded at construction, not here: give ``seed=`` to ``envpool.make``); later resets
    continue the random generators.
    ``env_info`` given to ``reset`` goes to the vector env's ``reset(options=...)`` as one
    ``[num_envs, ...]`` array per key (a SyncVectorEnv hands that same dict to every sub-env),
    also at the partial resets, not at the restarts a vector env does by itself.

    Info fields named in ``info_keys`` become observation keys ``"info/<name>"`` as in
    `GymVecEnv` (``"a/b"`` reads ``info["a"]["b"]``), read from the batched infos of the
    vector env under their ``"_<name>"`` masks (zeros where a sub-env has none). Each row
    holds the info of the call that produced it: a final observation the info of the
    ending step (``info["final_info"]`` in ``SAME_STEP`` mode, except the statistics of a
    ``RecordEpisodeStatistics``, which it puts in the step's info), a fresh observation that
    of its reset (the partial reset's, or, ``SAME_STEP`` and reset steps, the step's).

    Actions are checked as in `GymVecEnv` and handed to the vector env as one
    ``[num_envs, *action_shape]`` numpy array (wrap an env that wants torch or JAX actions in
    ``gymnasium.wrappers.vector.ArrayConversion``). Observations may be numpy arrays or
    anything ``np.asarray`` reads (torch CPU tensors, JAX arrays); their shapes are checked.

    Args:
        make_vector_env: a ``gymnasium.vector.VectorEnv``, or a callable with no arguments
            returning one (picklable callables make the adapter usable from
            ``MultiProcessBatcher`` workers). For a gymnasium id see `from_id`.
        seed: passed to the vector env's first reset.
        auto_reset: the mode (see above).
        n_envs: the number of sub-envs you expect; an error when the vector env has another
            ``num_envs``. None: whatever it has.
        autoreset_mode: overrides the vector env's ``metadata["autoreset_mode"]``
            (``AutoresetMode`` or its value, e.g. ``"NextStep"``), for envs that do not
            declare it.
        partial_reset: ``"auto"``, ``"reset_mask"``, ``"env_id"`` or ``"none"`` (see above).
        info_keys: info fields kept as observation keys ``"info/<name>"``, as for
            `GymVecEnv`: names (float32 scalars), or ``{name: dtype or Spec(shape, dtype)}``.

    Raises:
        MissingDependencyError: gymnasium (>= 1.1) is not installed.
        EnvError: ``make_vector_env`` is unusable or did not return a vector env, a
            ``num_envs`` other than ``n_envs``, no or an unknown autoreset mode, a
            ``DISABLED`` vector env under gymnasium's ``RecordEpisodeStatistics``.
        UnsupportedSpaceError: a single-env observation or action space that
            `GymVecEnv` does not handle either, or an info key equal to an observation key.
        TypeError, ValueError: bad ``info_keys`` (as for `GymVecEnv`).

    Example:
        >>> import gymnasium, numpy as np
        >>> env = GymVectorVecEnv.from_id("CartPole-v1", 3, seed=0, auto_reset=True)
        >>> env.autoreset_mode, env.reset_step_ids
        (<AutoresetMode.NEXT_STEP: 'NextStep'>, array([], dtype=int64))
        >>> obs, ids = env.reset()
        >>> obs["frame"].shape, ids
        ((3, 4), array([0, 1, 2]))
        >>> (next_obs, ids), (obs, ids) = env.step(DictTensor({"action": np.zeros(3, np.int64)}))
        >>> next_obs["reward"], next_obs["last_action"]
        (array([1., 1., 1.], dtype=float32), array([0, 0, 0]))
        >>> env.close()
    """

    def __init__(
        self,
        make_vector_env: Any,
        seed: int,
        auto_reset: bool = False,
        *,
        n_envs: int | None = None,
        autoreset_mode: AutoresetMode | str | None = None,
        partial_reset: PartialReset = "auto",
        info_keys: Sequence[str] | Mapping[str, Spec | npt.DTypeLike] = (),
    ) -> None:
        require_vector_api()
        self._info: tuple[InfoLeaf, ...] = info_leaves(info_keys)
        self._seed = int_arg("seed", seed, minimum=None)
        expected = None if n_envs is None else int_arg("n_envs", n_envs, minimum=1)
        self._auto_reset = bool(auto_reset)
        self._closed = False
        self._venv: Any = vector_env_from(make_vector_env)
        try:
            self._setup(expected, autoreset_mode, partial_reset)
        except BaseException:
            self._close_venv()
            raise

    def _setup(self, n_envs: int | None, mode: object, partial: object) -> None:
        from gymnasium.vector import AutoresetMode

        venv = self._venv
        num = venv.num_envs
        if isinstance(num, bool) or not isinstance(num, (int, np.integer)) or num < 1:
            raise EnvError(f"the vector env {venv!r} has num_envs={num!r}; expected an int >= 1.")
        if n_envs is not None and num != n_envs:
            raise EnvError(
                f"the vector env {venv!r} has num_envs={num}, but n_envs={n_envs} was expected. "
                f"Build it with {n_envs} sub-envs, or pass n_envs=None to take what it has."
            )
        self._n = int(num)
        self._mode: AutoresetMode = resolve_autoreset_mode(venv, mode)
        self._partial = resolve_partial_reset(venv, partial, self._mode)
        self._restart: _Restart = (
            "same_step"
            if self._mode is AutoresetMode.SAME_STEP
            else "partial"
            if self._partial is not None
            else "reset_step"
        )
        self._observation_space: Space[Any] = venv.single_observation_space
        self._action_space: Space[Any] = venv.single_action_space
        try:
            self._leaves: tuple[ObsLeaf, ...] = observation_leaves(self._observation_space)
            self._action: ActionSpec = action_spec(self._action_space)
        except UnsupportedSpaceError as exc:
            add_note(exc, f"in the single-env spaces of the vector env {venv!r}")
            raise
        frame_keys = tuple(leaf.key for leaf in self._leaves)
        clash = sorted(set(frame_keys) & {leaf.key for leaf in self._info})
        if clash:
            raise UnsupportedSpaceError(
                f"info_keys gives the observation keys {clash}, which the observation space "
                "already has; rename that Dict entry with a `gymnasium.ObservationWrapper`."
            )
        # every array a step writes, in groups: the frames, the flags (by name), the info
        self._keys = (*frame_keys, *Flags._fields, *(leaf.key for leaf in self._info))
        self._get_arrays = operator.itemgetter(*self._keys)
        self._flag_slice = slice(len(frame_keys), len(frame_keys) + len(Flags._fields))
        self._info_slice = slice(self._flag_slice.stop, None)
        single = len(self._leaves) == 1 and not self._leaves[0].path
        self._frame_shape = (self._n, *self._leaves[0].shape) if single else None
        # step_into's fast path (``_advance_frame``): one frame leaf, no info keys, NEXT_STEP
        # reset steps, and a Discrete action from 0 (checked by one reduction: negative
        # values viewed as unsigned are huge)
        spec = self._action
        bounds = spec.int_bounds
        self._frame_fast = bool(
            single
            and not self._info
            and self._restart == "reset_step"
            and bounds is not None
            and bounds[0] == 0
            and spec.dtype.kind in "iu"
        )
        self._rows = (self._n,)
        self._action_rows = (self._n, *spec.shape)
        self._unsigned = np.dtype(f"u{spec.dtype.itemsize}")
        self._high = bounds[1] if bounds is not None else 0
        row_specs = [(leaf.shape, leaf.dtype) for leaf in self._leaves]
        flags = [((), np.dtype(np.bool_))] * 4
        row_specs += [((), np.dtype(np.float32)), *flags, (self._action.shape, self._action.dtype)]
        row_specs += [(leaf.shape, leaf.dtype) for leaf in self._info]
        self._row_specs = tuple(row_specs)
        # SAME_STEP: the info fields about the ended episodes that are not in final_info
        names = step_info_names(venv) if self._restart == "same_step" else frozenset()
        self._from_step = tuple(leaf.path[0] in names for leaf in self._info)
        self._idle = idle_actions(self._action, self._n)
        self._options: dict[str, npt.NDArray[Any]] | None = None
        # EnvPool seeds its pool at construction and warns about reset(seed=...)
        unwrapped = getattr(venv, "unwrapped", venv)
        self._seeded = any(c.__module__.startswith("envpool.") for c in type(unwrapped).__mro__)
        self._running: EnvIds | None = None
        self._pending: EnvIds = _NO_IDS  # reset_step: envs whose next step is a reset step
        self._reset_steps: EnvIds = _NO_IDS

    @classmethod
    def from_id(
        cls,
        env_id: str,
        n_envs: int,
        seed: int,
        auto_reset: bool = False,
        *,
        vectorization_mode: str | None = None,
        vector_kwargs: Mapping[str, Any] | None = None,
        wrappers: Any = None,
        autoreset_mode: AutoresetMode | str | None = None,
        partial_reset: PartialReset = "auto",
        info_keys: Sequence[str] | Mapping[str, Spec | npt.DTypeLike] = (),
        **env_kwargs: Any,
    ) -> GymVectorVecEnv:
        """The one-liner: ``gymnasium.make_vec(env_id, n_envs, ...)`` as a VecEnv.

        Args:
            env_id: a registered gymnasium id, e.g. ``"CartPole-v1"``.
            n_envs: how many sub-envs.
            seed: passed to the first reset (sub-env k gets ``seed + k`` with "sync" and
                "async").
            auto_reset: the mode (see the class).
            vectorization_mode: ``"vector_entry_point"`` (the env's own batched
                implementation), ``"sync"``, ``"async"``, or None: gymnasium's choice (the
                vector entry point when the env has one, else "sync").
            vector_kwargs: passed to the vector env's constructor, e.g.
                ``{"autoreset_mode": "SameStep"}`` for "sync" and "async".
            wrappers: per-sub-env wrappers ("sync" and "async"), as for ``make_vec``.
            autoreset_mode: see the class.
            partial_reset: see the class.
            info_keys: see the class.
            **env_kwargs: passed to the env's constructor.

        Example:
            >>> env = GymVectorVecEnv.from_id("CartPole-v1", 4, seed=0, vectorization_mode="sync")
            >>> env.n_envs, env.autoreset_mode.name
            (4, 'NEXT_STEP')
            >>> env.close()
        """
        make = make_vec_factory(
            env_id,
            n_envs,
            vectorization_mode=vectorization_mode,
            vector_kwargs=vector_kwargs,
            wrappers=wrappers,
            env_kwargs=env_kwargs,
        )
        return cls(
            make,
            seed,
            auto_reset,
            n_envs=n_envs,
            autoreset_mode=autoreset_mode,
            partial_reset=partial_reset,
            info_keys=info_keys,
        )

    # ------------------------------------------------------------------ properties
    @property
    def n_envs(self) -> int:
        """How many sub-envs (the vector env's ``num_envs``)."""
        return self._n

    @property
    def observation_space(self) -> Space[Any]:
        """The observation space of one sub-env (``single_observation_space``)."""
        return self._observation_space

    @property
    def action_space(self) -> Space[Any]:
        """The action space of one sub-env (``single_action_space``)."""
        return self._action_space

    @property
    def auto_reset(self) -> bool:
        """True in auto-reset mode, False in episode mode."""
        return self._auto_reset

    @property
    def autoreset_mode(self) -> AutoresetMode:
        """How the vector env restarts ended sub-envs (``gymnasium.vector.AutoresetMode``)."""
        return self._mode

    @property
    def vector_env(self) -> Any:
        """The underlying gymnasium vector env, e.g. to ``render()`` or read its wrappers."""
        return self._venv

    @property
    def reset_step_ids(self) -> EnvIds:
        """Sorted ids of the envs whose last step was a reset step, not a transition.

        Only a ``NEXT_STEP`` vector env without partial resets has any: the step after an
        episode's end, in which it resets that sub-env and ignores its action. Their row of
        the last ``step_into`` is no transition; batchers drop it. Empty otherwise.
        """
        return self._reset_steps

    def __repr__(self) -> str:
        mode = "auto_reset" if self._auto_reset else "episode"
        return (
            f"GymVectorVecEnv(n_envs={self._n}, seed={self._seed}, mode={mode}, "
            f"autoreset_mode={self._mode.name}, restart={self._restart}, env={self._venv!r})"
        )

    # ------------------------------------------------------------------ reset
    def reset(self, env_info: DictTensor | None = None) -> tuple[DictTensor, EnvIds]:
        """Reset every sub-env.

        Args:
            env_info: None, or a DictTensor of batch ``(n_envs,)``: its columns go to the
                vector env's ``reset(options=...)`` (and to its partial resets until the
                next ``reset``).

        Returns:
            ``(observation, ids)``: ``[n_envs]`` rows with ``initial_state`` True and
            ``ids = arange(n_envs)``.

        Raises:
            EnvInfoError: ``env_info`` is not a DictTensor of batch ``(n_envs,)``.
            ObservationError: an observation does not fit the observation space.
        """
        self._check_open()
        options = env_info_columns(env_info, self._n)
        seed = None if self._seeded else self._seed
        try:
            result = self._venv.reset(seed=seed, options=None if options is None else dict(options))
        except BaseException as exc:
            add_note(exc, f"raised by the vector env {self._venv!r} during reset()")
            raise
        self._seeded = True
        if not (isinstance(result, tuple) and len(result) == 2):
            raise EnvError(
                f"the vector env {self._venv!r}.reset() returned {type(result).__name__}; a "
                "gymnasium VectorEnv returns (observations, infos)."
            )
        arrays = self._leaf_arrays(result[0], self._n, "reset()")
        n = self._n
        data = {
            leaf.key: np.array(a, leaf.dtype) for leaf, a in zip(self._leaves, arrays, strict=True)
        }
        data["reward"] = np.zeros(n, np.float32)
        for key in ("terminated", "truncated", "done"):
            data[key] = np.zeros(n, np.bool_)
        data["initial_state"] = np.ones(n, np.bool_)
        data["last_action"] = np.zeros((n, *self._action.shape), self._action.dtype)
        for leaf in self._info:
            data[leaf.key] = batched_info(leaf, result[1], n, "reset()")
        self._options = options
        ids = np.arange(n, dtype=np.int64)
        self._running, self._pending, self._reset_steps = ids, _NO_IDS, _NO_IDS
        return DictTensor(data, batch_shape=(n,)), ids.copy()

    # ------------------------------------------------------------------ step
    def step(self, action: DictTensor) -> StepResult:
        """Apply one action per running env.

        Args:
            action: a DictTensor of batch ``(n,)``, one row per running env in the order of
                the ids last returned; ``action["action"]`` (numpy or torch) is what they get.

        Returns:
            ``((next_observation, ids), (continuing_observation, continuing_ids))``: the
            observation at t+1 of the n envs that were running, then what the running envs
            continue from (see the class docstring; fresh arrays each call).

        Raises:
            EnvStateError: before ``reset``, or no env is running (episode mode).
            ActionError: no ``"action"`` key, wrong batch size, shape, dtype or value.
            ObservationError: an observation or reward that does not fit.
        """
        running = self._check_running()
        n, n_run = self._n, len(running)
        values = check_action(self._action, action, n_run)
        if n_run == n:
            full = values
        else:  # the envs no agent drives get idle actions
            full = self._idle.copy()
            full[running] = values
        out = {
            k: np.empty((n, *s), d) for k, (s, d) in zip(self._keys, self._row_specs, strict=True)
        }
        final = {k: np.empty_like(v) for k, v in out.items()}
        ended = self._advance(full, self._get_arrays(out), self._get_arrays(final), "step()")
        is_end = np.zeros(n, np.bool_)
        is_end[ended] = True
        stopped = is_end[running]  # the running envs whose episode just ended
        nxt = {k: v[running] for k, v in out.items()}  # fancy indexing: fresh arrays
        if stopped.any():
            rows = running[stopped]
            for k, v in nxt.items():
                v[stopped] = final[k][rows]
        if not self._auto_reset:
            cont_ids = running[~stopped]
        elif self._restart == "reset_step":  # the ended envs sit their reset step out
            cont_ids = np.flatnonzero(~is_end).astype(np.int64)
        else:
            cont_ids = np.arange(n, dtype=np.int64)
        cont = {k: v[cont_ids] for k, v in out.items()}
        self._running = cont_ids
        return (
            (DictTensor(nxt, batch_shape=(n_run,)), running.copy()),
            (DictTensor(cont, batch_shape=(len(cont_ids),)), cont_ids.copy()),
        )

    def step_into(
        self,
        action: DictTensor,
        out: Mapping[str, npt.NDArray[Any]],
        final: Mapping[str, npt.NDArray[Any]],
    ) -> EnvIds:
        """Auto-reset mode: step every env, writing the observations into the caller's arrays.

        The allocation-free form of ``step`` used by the batchers (see `StepIntoVecEnv`).

        Args:
            action: ``[n_envs]`` rows, as for ``step`` (every env runs in auto-reset mode;
                the rows of `reset_step_ids` envs are ignored by the vector env).
            out: one writable array ``[n_envs, *row]`` per observation key, of that key's
                dtype. Row k receives what env k continues from: its observation at t+1, or
                the first observation of its next episode (``initial_state`` True) when its
                episode ended, or a placeholder before a reset step (see the class).
            final: arrays like ``out``: row k receives the final observation of env k when
                its episode ended at this step; the other rows are left untouched.

        Returns:
            The sorted ids of the envs whose episode ended (int64, empty when none did).

        Raises:
            EnvStateError: episode mode, before ``reset``, or closed.
            ActionError: as for ``step``.
            ObservationError: as for ``step``.
            KeyError: ``out`` or ``final`` lacks an observation key.
        """
        if self._closed or not self._auto_reset or self._running is None:
            self._step_into_state_error()
        try:
            dsts = self._get_arrays(out)
        except KeyError as exc:
            raise self._out_key_error("out", exc) from None
        try:
            fins = self._get_arrays(final)
        except KeyError as exc:
            raise self._out_key_error("final", exc) from None
        if self._frame_fast:
            return self._advance_frame(action, dsts, fins)
        values = check_action(self._action, action, self._n, copy=False)
        return self._advance(values, dsts, fins, "step_into()")

    def _advance_frame(
        self,
        action: DictTensor,
        dsts: tuple[npt.NDArray[Any], ...],
        fins: tuple[npt.NDArray[Any], ...],
    ) -> EnvIds:
        """``check_action`` and ``_advance`` in one function, for the common case.

        The case of ``_frame_fast`` (e.g. gymnasium's vectorized CartPole): one frame leaf,
        no info, NEXT_STEP reset steps, a Discrete action. What is not the usual (an action
        of another type, shape, dtype or out of the space; a result of other types or
        shapes) takes the general code, with its checks and errors. Same writes as
        ``_advance`` (the tests compare both). Why: the code after the policy call runs cold
        (caches filled by torch): each Python call and check there costs microseconds.
        """
        spec, values = self._action, None
        if type(action) is DictTensor and action.batch_shape == self._rows:
            try:
                values = action["action"]
            except KeyError:
                pass
        if (
            type(values) is not np.ndarray
            or values.shape != self._action_rows
            or values.dtype != spec.dtype
            or _MAX(values.view(self._unsigned), None) > self._high
        ):
            values = check_action(spec, action, self._n, copy=False)  # its errors
        result = self._call_venv(values, "step_into()")
        try:
            obs, rew, term, trunc, info = result
        except (TypeError, ValueError):  # not 5 values: the general code's error
            return self._write_step(values, dsts, fins, self._checked(result), "step_into()")
        shape = self._rows
        if not (
            type(obs) is np.ndarray
            and obs.shape == self._frame_shape
            and type(rew) is np.ndarray
            and type(term) is np.ndarray
            and type(trunc) is np.ndarray
            and rew.shape == shape
            and term.shape == shape
            and trunc.shape == shape
        ):  # (the values, not ``result``: an iterator is read once)
            stepped = self._checked((obs, rew, term, trunc, info))
            return self._write_step(values, dsts, fins, stepped, "step_into()")
        frame, reward, terminated, truncated, done, initial, last = dsts
        try:
            frame[...] = obs
            reward[...] = rew
        except (TypeError, ValueError) as exc:  # values numpy cannot cast (strings, objects)
            raise self._cast_error(obs, rew, "step_into()", exc) from None
        last[...] = values
        terminated[...] = False  # what an env continues from is never terminal
        truncated[...] = False
        done[...] = False
        initial[...] = False
        skipped = self._reset_steps = self._pending
        ended: EnvIds = np.logical_or(term, trunc).nonzero()[0]
        if not len(ended):
            if len(skipped):  # their reset step: the vector env returned a first observation
                reward[skipped] = 0
                initial[skipped] = True
                last[skipped] = 0
                self._pending = _NO_IDS
            return _NO_IDS
        if ended.dtype != np.int64:  # intp is int32 on some platforms
            ended = ended.astype(np.int64)
        f_frame, f_reward, f_terminated, f_truncated, f_done, f_initial, f_last = fins
        f_frame[ended] = obs[ended]  # NEXT_STEP: the step's observation is the final one
        f_reward[ended] = rew[ended]
        f_terminated[ended] = term[ended]
        f_truncated[ended] = trunc[ended]
        f_done[ended] = True
        f_initial[ended] = False
        f_last[ended] = values[ended]
        fresh = np.concatenate((skipped, ended)) if len(skipped) else ended
        reward[fresh] = 0  # the placeholder rows before the reset steps, and those
        initial[fresh] = True
        last[fresh] = 0
        self._pending = ended  # the frame rows keep the final frame until the reset step
        return ended

    def _advance(
        self,
        values: npt.NDArray[Any],
        dsts: tuple[npt.NDArray[Any], ...],
        fins: tuple[npt.NDArray[Any], ...],
        when: str,
    ) -> EnvIds:
        """One vector step with the ``[n_envs]`` actions ``values``; writes ``dsts``/``fins``.

        ``dsts`` and ``fins`` hold one array per key, in the order of ``self._keys``.
        Returns the sorted ids of the envs whose episode ended.
        """
        return self._write_step(
            values, dsts, fins, self._checked(self._call_venv(values, when)), when
        )

    def _write_step(
        self,
        values: npt.NDArray[Any],
        dsts: tuple[npt.NDArray[Any], ...],
        fins: tuple[npt.NDArray[Any], ...],
        stepped: tuple[Any, Any, Any, Any, Any],
        when: str,
    ) -> EnvIds:
        """``_advance`` after the vector step: ``stepped`` is its checked result."""
        obs, rew, term, trunc, info = stepped
        frame = self._frame_shape  # a single "frame" leaf: the common case, made cheap
        flags: Flags[npt.NDArray[Any]] = flags_of(dsts[self._flag_slice])
        try:
            if frame is not None and type(obs) is np.ndarray and obs.shape == frame:
                arrays = [obs]
                dsts[0][...] = obs
            else:
                arrays = self._leaf_arrays(obs, self._n, when)
                for dst, arr in zip(dsts, arrays, strict=False):
                    dst[...] = arr
            flags.reward[...] = rew
        except (TypeError, ValueError) as exc:  # values numpy cannot cast (strings, objects)
            raise self._cast_error(obs, rew, when, exc) from None
        flags.last_action[...] = values
        # what an env continues from is never terminal: an ended env starts a new episode
        flags.terminated[...] = False
        flags.truncated[...] = False
        flags.done[...] = False
        flags.initial_state[...] = False
        infos: list[npt.NDArray[Any]] = []
        if self._info:
            infos = [batched_info(leaf, info, self._n, when) for leaf in self._info]
            for dst, arr in zip(dsts[self._info_slice], infos, strict=True):
                dst[...] = arr
        skipped = self._reset_steps = self._pending
        ended: EnvIds = np.logical_or(term, trunc).nonzero()[0]
        if not len(ended):
            if len(skipped):  # their reset step: the vector env returned a first observation
                flags.reward[skipped] = 0
                flags.initial_state[skipped] = True
                flags.last_action[skipped] = 0
                self._pending = _NO_IDS
            return _NO_IDS
        if ended.dtype != np.int64:  # intp is int32 on some platforms
            ended = ended.astype(np.int64)
        self._write_final(fins, ended, arrays, infos, (rew, term, trunc, values), info, when)
        # the first observation of an episode (the ended envs', the reset steps')
        fresh = np.concatenate((skipped, ended)) if len(skipped) else ended
        flags.reward[fresh] = 0
        flags.initial_state[fresh] = True
        flags.last_action[fresh] = 0
        self._pending = _NO_IDS
        if any(self._from_step):  # the ended episodes' statistics, not the fresh ones'
            for dst, from_step in zip(dsts[self._info_slice], self._from_step, strict=True):
                if from_step:
                    dst[ended] = 0
        if self._restart == "partial":
            first, first_infos = self._reset_ended(ended, when)
            for dst, arr in zip(dsts, first, strict=False):
                dst[ended] = arr
            for dst, arr in zip(dsts[self._info_slice], first_infos, strict=True):
                dst[ended] = arr
        elif self._restart == "reset_step":  # the frame rows keep the final frame until then
            self._pending = ended
        return ended

    def _write_final(
        self,
        fins: tuple[npt.NDArray[Any], ...],
        ended: EnvIds,
        arrays: list[npt.NDArray[Any]],
        infos: list[npt.NDArray[Any]],
        step: tuple[npt.NDArray[Any], ...],
        info: Any,
        when: str,
    ) -> None:
        """Write the final observation of the ``ended`` envs into their rows of ``fins``.

        ``step`` is ``(rewards, terminations, truncations, actions)`` of the step.
        """
        if self._restart == "same_step":  # the final observations are in the info
            final_info = info.get("final_info") if isinstance(info, Mapping) else None
            infos = [
                arr if from_step else batched_info(leaf, final_info, self._n, when)
                for leaf, arr, from_step in zip(self._info, infos, self._from_step, strict=True)
            ]
            for fin, row in zip(fins, self._final_rows(info, ended, when), strict=False):
                fin[ended] = row
        else:  # the step's observation is the final one
            for fin, arr in zip(fins, arrays, strict=False):
                fin[ended] = arr[ended]
        if self._info:
            for fin, arr in zip(fins[self._info_slice], infos, strict=True):
                fin[ended] = arr[ended]
        rew, term, trunc, values = step
        final: Flags[npt.NDArray[Any]] = flags_of(fins[self._flag_slice])
        final.reward[ended] = rew[ended]
        final.terminated[ended] = term[ended]
        final.truncated[ended] = trunc[ended]
        final.done[ended] = True
        final.initial_state[ended] = False
        final.last_action[ended] = values[ended]

    def _final_rows(self, info: Any, ended: EnvIds, when: str) -> list[npt.NDArray[Any]]:
        """SAME_STEP: the final observation of each ended env, per leaf ``[len(ended), ...]``."""
        if isinstance(info, (list, tuple)):
            raise list_info_error(info, when)
        final = info.get("final_obs") if isinstance(info, Mapping) else None
        if final is None:
            raise ObservationError(
                f"envs {ended.tolist()} ended at {when}, but the vector env (in "
                "AutoresetMode.SAME_STEP) put no 'final_obs' in its info: their final "
                "observations would be lost. A SAME_STEP vector env returns them in "
                "info['final_obs'] (gymnasium >= 1.1 does); or declare its real mode with "
                "autoreset_mode=."
            )
        if isinstance(final, np.ndarray) and final.dtype == object:  # one entry per env
            per_env = list(final[ended])
            return [
                stack_leaf(leaf, gather(per_env, leaf.path), ended, f"{when} (info['final_obs'])")
                for leaf in self._leaves
            ]
        batched = self._leaf_arrays(final, self._n, f"{when} (info['final_obs'])")
        return [arr[ended] for arr in batched]

    def _reset_ended(
        self, ended: EnvIds, when: str
    ) -> tuple[list[npt.NDArray[Any]], list[npt.NDArray[Any]]]:
        """Partial reset of the ``ended`` envs: their fresh observations and info, per leaf."""
        method = self._partial
        assert method is not None  # only called with a partial reset method
        try:
            obs, info, rows = reset_rows(self._venv, method, ended, self._n, self._options)
        except BaseException as exc:
            add_note(
                exc,
                f"raised by the vector env {self._venv!r} during the partial reset "
                f"(partial_reset={method!r}) of envs {ended.tolist()} after {when}",
            )
            raise
        expected = len(ended) if method == "env_id" else self._n
        where = f"the partial reset after {when}"
        arrays = self._leaf_arrays(obs, expected, where)
        infos = [batched_info(leaf, info, expected, where) for leaf in self._info]
        return [arr[rows] for arr in arrays], [arr[rows] for arr in infos]

    def _call_venv(self, values: npt.NDArray[Any], when: str) -> Any:
        """``venv.step(values)``, as it returned; what it raises gets a note."""
        try:
            return self._venv.step(values)
        except BaseException as exc:  # SystemExit and KeyboardInterrupt get the note too
            add_note(exc, f"raised by the vector env {self._venv!r} during {when}")
            raise

    def _checked(self, result: Any) -> tuple[Any, Any, Any, Any, Any]:
        """A ``venv.step`` result: ``(obs, rewards, terminations, truncations, infos)``."""
        try:
            obs, rew, term, trunc, info = result
        except (TypeError, ValueError):
            size = len(result) if isinstance(result, (tuple, list)) else "not a tuple"
            raise EnvError(
                f"the vector env {self._venv!r}.step() returned {type(result).__name__} "
                f"({size}); a gymnasium VectorEnv returns (observations, rewards, "
                "terminations, truncations, infos)."
            ) from None
        shape = (self._n,)
        arrays: tuple[Any, ...] = (rew, term, trunc)
        if not (
            type(rew) is np.ndarray
            and type(term) is np.ndarray
            and type(trunc) is np.ndarray
            and rew.shape == shape
            and term.shape == shape
            and trunc.shape == shape
        ):  # other array types, or a wrong shape
            arrays = tuple(np.asarray(v) for v in arrays)
            for name, arr in zip(("rewards", "terminations", "truncations"), arrays, strict=True):
                if arr.shape != shape:
                    raise ObservationError(
                        f"the vector env {self._venv!r}.step() returned {name} of shape "
                        f"{arr.shape}, expected {shape}: one per sub-env (num_envs={self._n})."
                    )
        return obs, arrays[0], arrays[1], arrays[2], info

    def _cast_error(self, obs: Any, rew: Any, when: str, exc: Exception) -> ObservationError:
        """The error of a step whose observations or rewards numpy cannot cast to our dtypes."""
        arrays = self._leaf_arrays(obs, self._n, when)
        wanted = [(leaf.key, a, leaf.dtype) for leaf, a in zip(self._leaves, arrays, strict=True)]
        wanted.append(("reward", np.asarray(rew), np.dtype(np.float32)))
        for key, arr, dtype in wanted:
            try:
                arr.astype(dtype)
            except (TypeError, ValueError):
                return ObservationError(
                    f"the vector env {self._venv!r} returned at {when} {key!r} values of dtype "
                    f"{arr.dtype} that do not convert to {dtype} ({exc}); expected numbers "
                    "as in its single_observation_space (rewards: floats)."
                )
        return ObservationError(  # pragma: no cover - astype fails wherever the write did
            f"the vector env {self._venv!r} returned at {when} values that do not fit: {exc}"
        )

    def _leaf_arrays(self, obs: Any, rows: int, when: str) -> list[npt.NDArray[Any]]:
        """The ``[rows, *leaf.shape]`` array of each observation leaf in a batched ``obs``."""
        arrays = []
        for leaf in self._leaves:
            try:
                arr = get(obs, leaf.path) if leaf.path else obs
            except (KeyError, IndexError, TypeError):
                raise ObservationError(
                    f"the vector env's observation from {when} has no entry at {leaf.path} "
                    f"(key {leaf.key!r}) although its single_observation_space has one."
                ) from None
            if type(arr) is not np.ndarray:
                arr = np.asarray(arr)
            if arr.shape != (rows, *leaf.shape):
                raise ObservationError(
                    f"the vector env's observation from {when} has {leaf.key!r} of shape "
                    f"{arr.shape}, expected {(rows, *leaf.shape)}: one row per sub-env, of the "
                    f"single_observation_space's shape {leaf.shape}. (An asynchronous EnvPool, "
                    "batch_size < num_envs, returns fewer rows: use batch_size=num_envs.)"
                )
            arrays.append(arr)
        return arrays

    # ------------------------------------------------------------------ states and errors
    def _check_running(self) -> EnvIds:
        self._check_open()
        running = self._running
        if running is None:
            raise EnvStateError("step() was called before reset(); call reset() first.")
        if not len(running) and not self._auto_reset:
            raise EnvStateError(
                "step() was called but no env is running: every episode has ended (episode "
                "mode). Call reset() to start new episodes, or use auto_reset=True."
            )
        return running

    def _step_into_state_error(self) -> NoReturn:
        self._check_running()  # closed, or before reset
        raise EnvStateError(
            "step_into() needs auto-reset mode, where every env always runs; this "
            "GymVectorVecEnv is in episode mode. Use step(), or auto_reset=True."
        )

    def _out_key_error(self, name: str, exc: KeyError) -> KeyError:
        return KeyError(
            f"step_into(): `{name}` lacks the observation key {exc.args[0]!r}; it needs one "
            f"writable [n_envs, *row] array per key: {list(self._keys)}."
        )

    def _check_open(self) -> None:
        if self._closed:
            raise EnvStateError(_CLOSED)

    # ------------------------------------------------------------------ close
    def close(self) -> None:
        """Close the vector env; calling it again does nothing."""
        if not self._closed:
            self._closed = True
            self._close_venv()

    def _close_venv(self) -> None:
        self._closed = True
        close = getattr(self._venv, "close", None)
        if callable(close):
            close()

    def __enter__(self) -> GymVectorVecEnv:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
