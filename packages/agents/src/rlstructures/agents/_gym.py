"""`GymVecEnv`: n_envs gymnasium envs stepped in the calling process, as a `VecEnv`."""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, NoReturn, TypeAlias

import numpy as np
import numpy.typing as npt

from rlstructures.agents._deps import require_gymnasium
from rlstructures.agents._env import EnvIds, StepResult
from rlstructures.agents._info import InfoLeaf, info_leaves, stack_info
from rlstructures.agents._inputs import check_action, env_info_columns
from rlstructures.agents._make import (
    add_note,
    close_all,
    factory,
    make_envs,
    scalar_error,
    step_api_error,
)
from rlstructures.agents._renamed import GYM_VEC_ENV
from rlstructures.agents._spaces import (
    ActionSpec,
    Flags,
    ObsLeaf,
    action_spec,
    check_row,
    flags_of,
    gather,
    get,
    observation_leaves,
    range_message,
    stack_leaf,
)
from rlstructures.agents.errors import (
    EnvError,
    EnvStateError,
    ObservationError,
    UnsupportedSpaceError,
)
from rlstructures.dicttensor import DictTensor, RemovedAttribute, Spec

if TYPE_CHECKING:
    from types import TracebackType

    from gymnasium import Space

__all__ = ["GymVecEnv"]

_CLOSED: Final = "this GymVecEnv is closed; create a new one."
_Field: TypeAlias = tuple[Any, ...]  # one item per running env
_NO_IDS: Final = np.zeros(0, np.int64)
_NO_IDS.flags.writeable = False


def _row(leaf: ObsLeaf, value: Any, env_id: int, when: str) -> Any:
    """``value`` when it is one row of ``leaf`` (an ndarray of its shape: fast), else checked.

    The check: its shape, and that it fits the leaf's dtype.
    """
    if type(value) is np.ndarray and value.shape == leaf.shape:
        return value
    value = check_row(leaf, value, env_id, when)
    try:
        return np.array(value, dtype=leaf.dtype)
    except OverflowError:
        raise ObservationError(range_message(leaf, [value], [env_id], when)) from None


def _info_row(leaf: InfoLeaf, info: Any, env_id: int, when: str) -> npt.NDArray[Any]:
    """One row of an info field (zeros when ``info`` lacks it)."""
    row: npt.NDArray[Any] = stack_info(leaf, [info], [env_id], when)[0]
    return row


class GymVecEnv:
    """``n_envs`` gymnasium envs, stepped one after the other in this process (a `VecEnv`).

    Observations are numpy DictTensors, one row per env listed in the ids that come with
    them. Keys: ``"frame"`` (shape and dtype of the observation space, values cast to that
    dtype; a Dict space gives one key per entry instead, in the space's order, nested keys
    joined with "/", and a Tuple space ``"frame/0"``, ``"frame/1"``, ...), ``"reward"``
    ``[n] float32`` (of the transition that led here, 0 at reset), ``"terminated"``,
    ``"truncated"``, ``"done"`` (``terminated | truncated``) and ``"initial_state"``
    ``[n] bool`` (True on the first observation of an episode), and ``"last_action"`` (the
    action that led here, zeros at reset; dtype and shape of the action space).

    Gymnasium's ``info`` dicts are dropped, except the fields named in ``info_keys``: field
    ``name`` becomes the observation key ``"info/<name>"`` (``"a/b"`` reads
    ``info["a"]["b"]``), a float32 scalar per row unless a dtype or a ``Spec`` is given
    (``info_keys={"is_success": "bool"}``). A step (or reset) whose info lacks a field
    gives zeros (False) in that row. Each row holds the info of the call that produced
    that observation: the final observation of an episode has the info of its last
    ``step``, and in auto-reset mode the fresh observation an env continues from has the
    info of its ``reset``.

    Modes:

    * episode mode (``auto_reset=False``): ``step`` returns the observation at t+1 of every
      env that was running, then the envs that continue (not done), in increasing order.
      Ended envs stay out until the next ``reset``; ``step`` with none left is an error.
    * auto-reset mode (``auto_reset=True``): an env whose episode ended is reset at once;
      its final observation is in the first element of ``step``'s result, the fresh one
      (``initial_state`` True) in the second. Every env always runs.

    Seeding: env k is reset with ``seed=seed + k`` at its first reset, later resets
    continue its random generator, so two GymVecEnv built with the same arguments produce
    the same observations for the same actions. ``env_info`` rows given to ``reset`` are
    passed to each env's ``reset(options=...)``, at that reset and at every auto-reset.

    Actions are checked: the ``"action"`` key must be there with one row per running env
    (numpy or torch, in the order of the last ids returned), of the action space's shape,
    an integer dtype for Discrete and MultiDiscrete spaces, and values inside the space
    (Box bounds included: nothing is clipped silently; see ``gymnasium.wrappers.ClipAction``).

    Each call returns fresh arrays: nothing returned is overwritten by a later call.

    Args:
        make_env: a callable with no arguments returning a new env (a ``gymnasium.Env``, or
            an old gym API env, adapted), called ``n_envs`` times; or a registered
            gymnasium id such as ``"CartPole-v1"`` (``gymnasium.make(id)``).
        n_envs: how many envs (>= 1).
        seed: env k is seeded ``seed + k``.
        auto_reset: the mode (see above).
        info_keys: info fields kept as observation keys: names (float32 scalars), or a
            mapping ``{name: dtype or Spec(shape, dtype)}``.

    Raises:
        MissingDependencyError: gymnasium is not installed.
        EnvError: ``make_env`` is not usable, or returned something that is not an env,
            or envs with different spaces.
        UnsupportedSpaceError: a space type GymVecEnv does not handle, or an info key
            equal to an observation key.
        TypeError, ValueError: ``info_keys`` is not a sequence of names or a mapping to
            dtypes or Specs, or names a field twice.

    Example:
        >>> import numpy as np
        >>> env = GymVecEnv("CartPole-v1", n_envs=3, seed=0)
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
        make_env: Callable[[], Any] | str,
        n_envs: int,
        seed: int,
        auto_reset: bool = False,
        *,
        info_keys: Sequence[str] | Mapping[str, Spec | npt.DTypeLike] = (),
    ) -> None:
        require_gymnasium("GymVecEnv")
        self._info: tuple[InfoLeaf, ...] = info_leaves(info_keys)
        n_given: object = n_envs  # checked at runtime: users pass anything
        if isinstance(n_given, bool) or not isinstance(n_given, (int, np.integer)):
            raise TypeError(f"n_envs must be an int >= 1, got {n_envs!r}.")
        if n_envs < 1:
            raise ValueError(f"n_envs must be an int >= 1, got {n_envs!r}.")
        seed_given: object = seed
        if isinstance(seed_given, bool) or not isinstance(seed_given, (int, np.integer)):
            raise TypeError(f"seed must be an int (env k is seeded seed + k), got {seed!r}.")
        self._n = int(n_envs)
        self._seed = int(seed)
        self._auto_reset = bool(auto_reset)
        self._envs = make_envs(factory(make_env), self._n)
        first = self._envs[0]
        self._observation_space: Space[Any] = first.observation_space
        self._action_space: Space[Any] = first.action_space
        try:
            self._leaves: tuple[ObsLeaf, ...] = observation_leaves(self._observation_space)
            self._action: ActionSpec = action_spec(self._action_space)
        except Exception:
            self._close_envs()
            raise
        single = len(self._leaves) == 1 and not self._leaves[0].path
        self._frame: ObsLeaf | None = self._leaves[0] if single else None
        frame_keys = tuple(leaf.key for leaf in self._leaves)
        clash = sorted(set(frame_keys) & {leaf.key for leaf in self._info})
        if clash:
            self._close_envs()
            raise UnsupportedSpaceError(
                f"info_keys gives the observation keys {clash}, which the observation space "
                "already has; rename that Dict entry with a `gymnasium.ObservationWrapper`."
            )
        # every array step_into writes, in groups: the frames, the flags (by name), the info
        self._keys = (*frame_keys, *Flags._fields, *(leaf.key for leaf in self._info))
        self._get_arrays = operator.itemgetter(*self._keys)
        self._flag_slice = slice(len(frame_keys), len(frame_keys) + len(Flags._fields))
        self._info_slice = slice(self._flag_slice.stop, None)
        self._seeded = [False] * self._n
        self._options: list[dict[str, Any] | None] = [None] * self._n
        self._running: EnvIds | None = None
        self._running_envs: list[Any] = []
        self._running_steps: list[Callable[[Any], Any]] = []
        self._flags_checked = False  # step_into: terminated/truncated found to be scalars
        self._closed = False

    # ------------------------------------------------------------------ properties
    @property
    def n_envs(self) -> int:
        """How many envs."""
        return self._n

    @property
    def observation_space(self) -> Space[Any]:
        """The observation space of one env (a gymnasium space)."""
        return self._observation_space

    @property
    def action_space(self) -> Space[Any]:
        """The action space of one env (a gymnasium space)."""
        return self._action_space

    @property
    def auto_reset(self) -> bool:
        """True in auto-reset mode, False in episode mode."""
        return self._auto_reset

    @property
    def envs(self) -> tuple[Any, ...]:
        """The underlying envs (old gym API envs appear wrapped), e.g. to ``render()``."""
        return tuple(self._envs)

    def __repr__(self) -> str:
        mode = "auto_reset" if self._auto_reset else "episode"
        return f"GymVecEnv(n_envs={self._n}, seed={self._seed}, mode={mode}, env={self._envs[0]!r})"

    # ------------------------------------------------------------------ reset
    def reset(self, env_info: DictTensor | None = None) -> tuple[DictTensor, EnvIds]:
        """Start a new episode in every env.

        Args:
            env_info: None, or a DictTensor of batch ``(n_envs,)``: row k (as a dict of
                numpy scalars or arrays) is passed to env k's ``reset(options=...)``, now
                and at every auto-reset until the next ``reset``. A DictTensor without keys
                (any batch shape, e.g. ``DictTensor({})``) is the same as None.

        Returns:
            ``(observation, ids)``: ``[n_envs]`` rows with ``initial_state`` True and
            ``ids = arange(n_envs)`` (int64).

        Raises:
            EnvInfoError: ``env_info`` is not a DictTensor of batch ``(n_envs,)``.
            ObservationError: an observation does not fit the observation space.
        """
        self._check_open()
        self._options = self._options_of(env_info)
        ids = np.arange(self._n, dtype=np.int64)
        observations, infos = zip(*[self._reset_env(k) for k in range(self._n)], strict=True)
        obs = self._first_observation(observations, infos, ids, "reset()")
        self._set_running(ids)
        return obs, ids.copy()

    def _options_of(self, env_info: DictTensor | None) -> list[dict[str, Any] | None]:
        columns = env_info_columns(env_info, self._n)
        if columns is None:
            return [None] * self._n
        return [
            {key: (col[k] if col.ndim == 1 else col[k].copy()) for key, col in columns.items()}
            for k in range(self._n)
        ]

    def _reset_env(self, k: int) -> tuple[Any, Any]:
        """Reset env k (seeded at its first reset): ``(observation, info)``."""
        seed = None if self._seeded[k] else self._seed + k
        options = self._options[k]
        try:  # no keywords when both are None: the same reset, cheaper through wrappers
            if seed is None and options is None:
                result = self._envs[k].reset()
            else:
                result = self._envs[k].reset(seed=seed, options=options)
        except Exception as exc:
            add_note(exc, f"raised by env {k} of GymVecEnv during reset()")
            raise
        self._seeded[k] = True
        if not (isinstance(result, tuple) and len(result) == 2):
            raise EnvError(
                f"env {k} ({type(self._envs[k]).__name__}).reset() returned "
                f"{type(result).__name__}; a gymnasium env returns (observation, info)."
            )
        return result[0], result[1]

    def _first_observation(
        self, observations: Sequence[Any], infos: Sequence[Any], ids: EnvIds, when: str
    ) -> DictTensor:
        n = len(observations)
        data = {
            leaf.key: stack_leaf(leaf, gather(observations, leaf.path), ids, when)
            for leaf in self._leaves
        }
        false = np.zeros(n, np.bool_)
        data["reward"] = np.zeros(n, np.float32)
        data["terminated"] = false
        data["truncated"] = false.copy()
        data["done"] = false.copy()
        data["initial_state"] = np.ones(n, np.bool_)
        data["last_action"] = np.zeros((n, *self._action.shape), self._action.dtype)
        for info in self._info:
            data[info.key] = stack_info(info, infos, ids, when)
        return DictTensor(data, batch_shape=(n,))

    # ------------------------------------------------------------------ step
    def step(self, action: DictTensor) -> StepResult:
        """Apply one action per running env.

        Args:
            action: a DictTensor of batch ``(n,)``, one row per running env in the order of
                the ids last returned; ``action["action"]`` (numpy or torch) is what the
                envs receive. Other keys are ignored.

        Returns:
            ``((next_observation, ids), (continuing_observation, continuing_ids))``: the
            observation at t+1 of the n envs that were running (``ids``), then the
            observation the running envs continue from (see the class docstring).

        Raises:
            EnvStateError: ``step`` before ``reset``, or no env is running.
            ActionError: no ``"action"`` key, wrong batch size, shape, dtype or value.
            ObservationError: an observation or reward does not fit the space.
        """
        running = self._check_running()
        n = len(running)
        values = self._check_action(action, n)
        observations, rewards, terminated, truncated, infos, results = self._step_envs(
            values, running, "step()"
        )
        if self._frame is not None:  # a single "frame" leaf: the common case, made cheap
            data = {"frame": stack_leaf(self._frame, observations, running, "step()")}
        else:
            data = {
                leaf.key: stack_leaf(leaf, gather(observations, leaf.path), running, "step()")
                for leaf in self._leaves
            }
        data["reward"] = reward = np.array(rewards, np.float32)
        data["terminated"] = term_arr = np.array(terminated, np.bool_)
        data["truncated"] = trunc_arr = np.array(truncated, np.bool_)
        if reward.shape != (n,) or term_arr.shape != (n,) or trunc_arr.shape != (n,):
            raise scalar_error(results, running)
        done = data["done"] = term_arr | trunc_arr
        data["initial_state"] = np.zeros(n, np.bool_)
        data["last_action"] = values
        for info in self._info:
            data[info.key] = stack_info(info, infos, running, "step()")
        next_obs = DictTensor(data)  # every leaf starts with n: batch_shape (n,) inferred
        if not (any(terminated) or any(truncated)):
            return (next_obs, running.copy()), (next_obs.clone(), running.copy())
        if self._auto_reset:
            cont = next_obs.clone()
            self._reset_rows(cont.to_dict(), running, np.flatnonzero(done).tolist())
            return (next_obs, running.copy()), (cont, running.copy())
        keep = np.flatnonzero(~done)
        self._set_running(running[keep])
        return (next_obs, running.copy()), (next_obs[keep], running[keep])

    def step_into(
        self,
        action: DictTensor,
        out: Mapping[str, npt.NDArray[Any]],
        final: Mapping[str, npt.NDArray[Any]],
    ) -> EnvIds:
        """Auto-reset mode: step every env, writing the observations into the caller's arrays.

        The allocation-free form of ``step`` used by the batchers (see `StepIntoVecEnv`).

        Args:
            action: as for ``step``: ``[n_envs]`` rows (every env runs in auto-reset mode).
            out: one writable array ``[n_envs, *row]`` per observation key (``"frame"`` or
                the Dict space's keys, ``"reward"``, ..., ``"last_action"``), of that key's
                dtype, for instance views into a preallocated buffer. Row k receives what
                env k continues from: its observation at t+1, or the first observation of
                its next episode (``initial_state`` True) when its episode ended.
            final: arrays like ``out``: row k receives the final observation of env k when
                its episode ended at this step; the other rows are left untouched.

        Returns:
            The sorted ids of the envs whose episode ended (int64, empty when none did).
            The observation at t+1 that ``step`` would return is ``out`` with those rows
            taken from ``final``.

        Raises:
            EnvStateError: episode mode (``auto_reset=False``), before ``reset``, or closed.
            ActionError: as for ``step``.
            ObservationError: as for ``step``.
            KeyError: ``out`` or ``final`` lacks an observation key.

        Example:
            >>> import numpy as np
            >>> env = GymVecEnv("CartPole-v1", n_envs=2, seed=0, auto_reset=True)
            >>> obs, _ = env.reset()
            >>> out, final = obs.clone().to_dict(), obs.clone().to_dict()
            >>> env.step_into(DictTensor({"action": np.zeros(2, np.int64)}), out, final)
            array([], dtype=int64)
            >>> out["reward"], out["last_action"]
            (array([1., 1.], dtype=float32), array([0, 0]))
            >>> env.close()
        """
        if self._closed or not self._auto_reset or self._running is None:
            self._step_into_state_error()
        running = self._running
        # every array up front (a missing key is reported before any env steps): the
        # frames, the flags (by name) and the info fields, in the groups of self._keys
        dsts: tuple[npt.NDArray[Any], ...]
        fins: tuple[npt.NDArray[Any], ...]
        try:
            dsts = self._get_arrays(out)
        except KeyError as exc:
            raise self._out_key_error("out", exc) from None
        try:
            fins = self._get_arrays(final)
        except KeyError as exc:
            raise self._out_key_error("final", exc) from None
        flags: Flags[npt.NDArray[Any]] = flags_of(dsts[self._flag_slice])
        values = self._check_action(action, self._n, copy=False)
        observations: Sequence[Any]
        rewards: Sequence[Any]
        infos: Sequence[Any]
        observations, rewards, terminated, truncated, infos, results = self._step_envs(
            values, running, "step_into()"
        )
        try:
            some = any(terminated) or any(truncated)
            if not self._flags_checked:  # once: their types do not change from step to step
                shape = np.array([terminated, truncated], np.bool_).shape
                if shape != (2, len(running)):
                    raise ValueError(shape)
                self._flags_checked = True
        except (TypeError, ValueError):  # an array, not a scalar
            raise scalar_error(results, running) from None
        if some:  # the ended envs: their final row into `final`, then reset them
            ended = [j for j in range(len(running)) if terminated[j] or truncated[j]]
            observations, rewards, infos = self._end_episodes(
                ended, fins, observations, rewards, infos, terminated, truncated, values, results,
                running,
            )
        frame = self._frame
        if frame is not None:  # a single "frame" leaf: the common case, made cheap
            dst, first = dsts[0], observations[0]
            try:  # arrays of the frame's shape: numpy refuses a row of another shape
                ok = type(first) is np.ndarray and first.shape == frame.shape
                if ok:
                    dst[...] = observations
            except (TypeError, ValueError, OverflowError):  # OverflowError: an int too big
                ok = False
            if not ok:  # other values, or a wrong shape (the error names the env)
                dst[...] = stack_leaf(frame, observations, running, "step_into()")
        else:
            for leaf, dst in zip(self._leaves, dsts, strict=False):
                dst[...] = stack_leaf(leaf, gather(observations, leaf.path), running, "step_into()")
        initial, last_action = flags.initial_state, flags.last_action
        try:
            flags.reward[...] = rewards
        except (TypeError, ValueError):
            raise scalar_error(results, running) from None
        last_action[...] = values
        # what an env continues from is never terminal: an ended env starts a new episode
        flags.terminated[...] = False
        flags.truncated[...] = False
        flags.done[...] = False
        initial[...] = False
        if self._info:
            for info, dst in zip(self._info, dsts[self._info_slice], strict=True):
                dst[...] = stack_info(info, infos, running, "step_into()")
        if not some:
            return _NO_IDS
        for j in ended:
            initial[j] = True
            last_action[j] = 0
        return np.array(ended, np.int64)

    def _end_episodes(
        self,
        ended: list[int],
        fins: tuple[npt.NDArray[Any], ...],
        observations: Sequence[Any],
        rewards: Sequence[Any],
        infos: Sequence[Any],
        terminated: Sequence[Any],
        truncated: Sequence[Any],
        values: npt.NDArray[Any],
        results: list[Any],
        running: EnvIds,
    ) -> tuple[list[Any], list[Any], list[Any]]:
        """``step_into``: write the final row of each ended env into ``fins`` and reset it.

        Returns:
            ``observations``, ``rewards`` and ``infos`` as lists where the rows of the ended
            envs hold the first observation of their next episode, a reward of 0 and the
            info of that reset.
        """
        leaves, info_fields = self._leaves, self._info
        final: Flags[npt.NDArray[Any]] = flags_of(fins[self._flag_slice])
        f_reward, f_done, f_action = final.reward, final.done, final.last_action
        f_term, f_trunc, f_initial = final.terminated, final.truncated, final.initial_state
        obs_rows, reward_rows, info_rows = list(observations), list(rewards), list(infos)
        for j in ended:  # every env runs in auto-reset mode: row j is env j
            obs = obs_rows[j]  # its final observation
            for leaf, f_dst in zip(leaves, fins, strict=False):
                f_dst[j] = _row(leaf, get(obs, leaf.path), j, "step_into()")
            try:
                f_reward[j] = reward_rows[j]
                f_term[j] = terminated[j]
                f_trunc[j] = truncated[j]
            except (TypeError, ValueError):
                raise scalar_error(results, running) from None
            f_done[j] = True
            f_initial[j] = False
            f_action[j] = values[j]
            if info_fields:
                for field, f_dst in zip(info_fields, fins[self._info_slice], strict=True):
                    f_dst[j] = _info_row(field, info_rows[j], j, "step_into()")
            obs_rows[j], info_rows[j] = self._reset_env(j)
            reward_rows[j] = 0.0
        return obs_rows, reward_rows, info_rows

    def _env_in(self, exc: BaseException) -> str:
        """Which env raised ``exc``, found in its traceback ("an env" when unknown)."""
        ids = {id(env): k for k, env in enumerate(self._envs)}
        tb = exc.__traceback__
        while tb is not None:
            k = ids.get(id(tb.tb_frame.f_locals.get("self")))
            if k is not None:
                return f"env {k}"
            tb = tb.tb_next
        return "an env"

    def _step_into_state_error(self) -> NoReturn:
        self._check_running()  # closed, or before reset
        raise EnvStateError(
            "step_into() needs auto-reset mode, where every env always runs; this "
            "GymVecEnv is in episode mode. Use step(), or GymVecEnv(..., auto_reset=True)."
        )

    def _out_key_error(self, name: str, exc: KeyError) -> KeyError:
        return KeyError(
            f"step_into(): `{name}` lacks the observation key {exc.args[0]!r}; it needs one "
            f"writable [n_envs, *row] array per key: {list(self._keys)}."
        )

    def _step_envs(
        self, values: npt.NDArray[Any], running: EnvIds, when: str
    ) -> tuple[_Field, _Field, _Field, _Field, _Field, list[Any]]:
        """Step the running envs.

        Returns:
            ``(observations, rewards, terminated, truncated, infos, results)``: one tuple
            per field of the envs' results (one item per running env), and the results.
        """
        try:  # np scalars or rows; values has one row per running env (checked)
            results = [step(a) for step, a in zip(self._running_steps, values, strict=False)]
        except BaseException as exc:  # SystemExit and KeyboardInterrupt get the note too
            add_note(exc, f"raised by {self._env_in(exc)} of GymVecEnv during {when}")
            raise
        try:  # transpose: one tuple per field
            observations, rewards, terminated, truncated, infos = zip(*results, strict=True)
        except (TypeError, ValueError):
            raise step_api_error(self._envs, running, results) from None
        return observations, rewards, terminated, truncated, infos, results

    def _set_running(self, ids: EnvIds) -> None:
        self._running = ids
        self._running_envs = [self._envs[k] for k in ids.tolist()]
        self._running_steps = [env.step for env in self._running_envs]

    def _check_running(self) -> EnvIds:
        self._check_open()
        running = self._running
        if running is None:
            raise EnvStateError("step() was called before reset(); call reset() first.")
        if not len(running):
            raise EnvStateError(
                "step() was called but no env is running: every episode has ended (episode "
                "mode). Call reset() to start new episodes, or use auto_reset=True."
            )
        return running

    def _check_action(self, action: DictTensor, n: int, copy: bool = True) -> npt.NDArray[Any]:
        return check_action(self._action, action, n, copy)

    def _reset_rows(
        self, data: Mapping[str, npt.NDArray[Any]], ids: EnvIds, rows: list[int]
    ) -> None:
        """Auto-reset mode: reset the envs of ``rows`` and write their first observation there.

        Args:
            data: one array ``[n, *row]`` per observation key, written in place.
            ids: the env id of each of the n rows.
            rows: the rows whose episode ended.
        """
        frames = [(leaf, data[leaf.key]) for leaf in self._leaves]
        zeros = (
            data["reward"],
            data["last_action"],
            data["terminated"],
            data["truncated"],
            data["done"],
        )
        initial = data["initial_state"]
        for j in rows:  # usually one or two rows: row-wise is faster
            k = int(ids[j])
            obs, info = self._reset_env(k)
            for leaf, frame in frames:
                frame[j] = _row(leaf, get(obs, leaf.path), k, "an auto-reset")
            for leaf_array in zeros:
                leaf_array[j] = 0
            initial[j] = True
            for field in self._info:
                data[field.key][j] = _info_row(field, info, k, "an auto-reset")

    # ------------------------------------------------------------------ close
    def close(self) -> None:
        """Close every env; calling it again does nothing."""
        if not self._closed:
            self._closed = True
            self._close_envs()

    def _close_envs(self) -> None:
        close_all(self._envs)

    def _check_open(self) -> None:
        if self._closed:
            raise EnvStateError(_CLOSED)

    def __enter__(self) -> GymVecEnv:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


RemovedAttribute.install(GymVecEnv, GYM_VEC_ENV)  # 0.2 names, each naming its replacement
