"""`EpisodeTracker`: returns and lengths of the episodes that end in successive batches."""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import numpy.typing as npt

from rlstructures.agents.errors import EpisodeTrackerError
from rlstructures.dicttensor import DictTensor, TemporalDictTensor, Trajectories

__all__ = ["EpisodeTracker"]

#: The trajectory keys the tracker reads (what every batcher stores for a VecEnv).
_KEYS: Final = (
    "observation/initial_state",
    "_observation/reward",
    "_observation/done",
    "_observation/terminated",
)


class EpisodeTracker:
    """Episode returns and lengths from the successive batches of one batcher.

    Feed it every ``Trajectories`` that a batcher's ``get()`` returns, in order; each
    ``update`` returns one row per episode that ended in that batch. Running sums are
    carried from batch to batch, so an episode may span any number of batches (auto-reset
    mode, or episode mode with ``n_timesteps`` shorter than an episode).

    Row b of every batch is env b (what batchers return: one row per env, of length 0
    when it is not running). In row b, an episode starts at a step whose
    ``"observation/initial_state"`` is True and ends at a step whose
    ``"_observation/done"`` is True (its final transition); its return is the sum of
    ``"_observation/reward"`` over its steps (in float64) and its length the number of
    steps. Several episodes may end in one row of one batch (auto-reset mode).

    Episodes whose start was not seen are not reported: the first one of each env when the
    tracker is created after collection began (its first step is not ``initial_state``),
    or one cut short by a ``reset()`` of the batcher (a new ``initial_state`` step before
    its ``done`` step), whose steps are dropped. Padding steps (``t >= lengths``) are
    ignored, so envs that stopped in episode mode simply add nothing.

    Example:
        >>> import numpy as np
        >>> steps = TemporalDictTensor({
        ...     "observation/initial_state": np.array([[True, False, True, False]]),
        ...     "_observation/reward": np.ones((1, 4), np.float32),
        ...     "_observation/done": np.array([[False, True, False, False]]),
        ...     "_observation/terminated": np.array([[False, True, False, False]]),
        ... })
        >>> tracker = EpisodeTracker()
        >>> ended = tracker.update(steps)  # the first episode ends at step 1
        >>> ended["return"], ended["length"], ended["env"], ended["terminated"]
        (array([2.]), array([2]), array([0]), array([ True]))
        >>> more = TemporalDictTensor({
        ...     "observation/initial_state": np.array([[False, True]]),
        ...     "_observation/reward": np.full((1, 2), 0.5, np.float32),
        ...     "_observation/done": np.array([[True, False]]),
        ...     "_observation/terminated": np.array([[False, False]]),
        ... })
        >>> tracker.update(more)["return"]  # 2 steps in the first batch, 1 in this one
        array([2.5])
    """

    __slots__ = ("_active", "_length", "_return")

    def __init__(self) -> None:
        self._return: npt.NDArray[np.float64] | None = None
        self._length: npt.NDArray[np.int64] = np.zeros(0, np.int64)
        self._active: npt.NDArray[np.bool_] = np.zeros(0, np.bool_)

    def reset(self) -> None:
        """Forget the running episodes (e.g. before tracking another batcher)."""
        self._return = None

    def update(self, trajectories: Trajectories | TemporalDictTensor) -> DictTensor:
        """Account for one batch and return the episodes that ended in it.

        Args:
            trajectories: what ``batcher.get()`` returned (or its ``trajectories``): B
                sequences ``[B, T]`` holding ``"observation/initial_state"``,
                ``"_observation/reward"``, ``"_observation/done"`` and
                ``"_observation/terminated"`` (numpy or torch, any device).

        Returns:
            A numpy DictTensor of batch ``(n,)``, one row per episode that ended in this
            batch, ordered by env then step: ``"return"`` float64, ``"length"`` int64,
            ``"env"`` int64 (the row of the batch) and ``"terminated"`` bool (False for a
            truncated episode, e.g. by a time limit).

        Raises:
            EpisodeTrackerError: not trajectories, a key is missing, or B differs from the
                earlier batches.
        """
        reward, initial, done, terminated, lengths = _read(trajectories)
        b, t_max = reward.shape
        if self._return is None:
            self._return = np.zeros(b, np.float64)
            self._length = np.zeros(b, np.int64)
            self._active = np.zeros(b, np.bool_)
        elif len(self._return) != b:
            raise EpisodeTrackerError(
                f"EpisodeTracker.update got {b} sequences after batches of "
                f"{len(self._return)}: it follows the envs of one batcher (row b is env b). "
                "Use one EpisodeTracker per batcher, or call `tracker.reset()` first."
            )
        running, length, active = self._return, self._length, self._active
        valid = np.arange(t_max) < lengths[:, None]
        start, end = initial & valid, done & valid
        # Row b is cut into segments of consecutive steps; a segment begins at a start step
        # and after an end step. Column 0 is a pseudo-step holding what runs on from the
        # earlier batches, so the first segment of a row continues that episode. Sums are
        # taken by bincount, which adds in step order, as a loop over the steps would.
        width = t_max + 1
        begins = np.zeros((b, width), np.bool_)
        begins[:, 0] = True
        begins[:, 1:] = start
        begins[:, 2:] |= end[:, :-1]
        segment = np.cumsum(begins, axis=1) - 1 + (np.arange(b) * width)[:, None]
        rewards = np.zeros((b, width), np.float64)
        rewards[:, 0] = np.where(active, running, 0.0)
        rewards[:, 1:] = np.where(valid, reward, 0.0)
        counts = np.zeros((b, width), np.float64)
        counts[:, 0] = np.where(active, length, 0)
        counts[:, 1:] = valid
        flat = segment.reshape(-1)
        sums = np.bincount(flat, rewards.reshape(-1), minlength=b * width)
        steps = np.bincount(flat, counts.reshape(-1), minlength=b * width).astype(np.int64)
        started = np.zeros(b * width, np.bool_)  # the segments whose start was seen
        started[segment[:, 1:][start]] = True
        started[segment[active, 0]] = True

        rows, t = np.nonzero(end)
        ending = segment[rows, t + 1]
        keep = started[ending]
        rows, t, ending = rows[keep], t[keep], ending[keep]
        ended = {
            "return": sums[ending],
            "length": steps[ending],
            "env": rows.astype(np.int64),
            "terminated": terminated[rows, t],
        }

        last = segment[np.arange(b), lengths]  # the segment of each row's last valid step
        closed = np.zeros(b, np.bool_)
        ran = lengths > 0
        closed[ran] = end[ran, lengths[ran] - 1]
        still = started[last] & ~closed
        active[:] = still
        running[:] = np.where(still, sums[last], 0.0)
        length[:] = np.where(still, steps[last], 0)
        return DictTensor(ended, batch_shape=(len(rows),))

    def __repr__(self) -> str:
        running = 0 if self._return is None else int(self._active.sum())
        return f"EpisodeTracker(running_episodes={running})"


def _read(
    trajectories: Trajectories | TemporalDictTensor,
) -> tuple[
    npt.NDArray[np.float64],
    npt.NDArray[np.bool_],
    npt.NDArray[np.bool_],
    npt.NDArray[np.bool_],
    npt.NDArray[np.int64],
]:
    """``reward`` (float64), ``initial``, ``done``, ``terminated`` ``[B, T]``, ``lengths``."""
    given: object = trajectories
    if isinstance(given, Trajectories):
        tdt = given.trajectories
    elif isinstance(given, TemporalDictTensor):
        tdt = given
    else:
        raise EpisodeTrackerError(
            "EpisodeTracker.update takes the Trajectories returned by a batcher's get() (or "
            f"its TemporalDictTensor `trajectories`), got {type(given).__name__}."
        )
    missing = [k for k in _KEYS if k not in tdt]
    if missing:
        raise EpisodeTrackerError(
            f"EpisodeTracker.update needs the trajectory keys {list(_KEYS)}; {missing} are "
            f"missing (the keys are {sorted(tdt.keys())}). A batcher stores them for every "
            "VecEnv; a VecEnv of your own must return 'reward', 'done', 'terminated' and "
            "'initial_state' in its observations."
        )
    src = tdt.select(list(_KEYS)).numpy()
    values: list[Any] = [src[k] for k in _KEYS]
    b, t_max = src.batch_shape
    for key, value in zip(_KEYS, values, strict=True):
        if value.shape != (b, t_max):
            raise EpisodeTrackerError(
                f"trajectory key {key!r} has shape {value.shape}, expected ({b}, {t_max}): "
                "one scalar per step."
            )
    initial, reward, done, terminated = values
    return (
        reward.astype(np.float64),
        initial.astype(np.bool_, copy=False),
        done.astype(np.bool_, copy=False),
        terminated.astype(np.bool_, copy=False),
        np.asarray(src.lengths, dtype=np.int64),
    )
