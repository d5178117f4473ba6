"""`ReplayBuffer`: a ring of transitions in numpy arrays, fed by a batcher, sampled uniformly.

Storage is one array per key of shape ``[rows, n_envs, ...]``: each ``add`` appends the T
steps of a ``[n_envs, T]`` batch as T rows, so the transitions of one env stay in time
order in its column, which is what n-step sampling reads. The oldest rows are overwritten
once ``capacity`` transitions are stored.

Keys stored (by default): ``observation/frame``, every ``action/*`` key, and of the next
observation ``_observation/frame``, ``_observation/reward``, ``_observation/terminated``
and ``_observation/done``. ``terminated`` is what targets need (no bootstrap after a
termination); ``done`` (terminated or truncated) stops n-step sums at episode ends.
Because auto-reset envs keep the final observation in ``_observation/frame``, a truncated
transition is bootstrapped from the right state, and no transition ever leads from one
episode into the next.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from rlstructures.dicttensor import DictTensor, TemporalDictTensor, Trajectories

__all__ = ["DEFAULT_KEYS", "ReplayBuffer"]

#: Stored next to every ``action/*`` key when ``keys`` is None.
DEFAULT_KEYS: Final = (
    "observation/frame",
    "_observation/frame",
    "_observation/reward",
    "_observation/terminated",
    "_observation/done",
)


class ReplayBuffer:
    """Up to ``capacity`` transitions of a batcher's envs (see the module doc).

    Args:
        capacity: transitions kept, all envs together (rounded up to a multiple of the
            number of envs of the first ``add``).
        keys: the step keys to store; None: `DEFAULT_KEYS` and every ``action/*`` key.
            ``_observation/reward``, ``_observation/terminated`` and ``_observation/done``
            are always stored.
        seed: seed of the sampling generator.

    Example:
        >>> import numpy as np
        >>> from rlstructures.dicttensor import TemporalDictTensor
        >>> steps = TemporalDictTensor({
        ...     "observation/frame": np.arange(6, dtype=np.float32).reshape(2, 3, 1),
        ...     "action/action": np.zeros((2, 3), np.int64),
        ...     "_observation/frame": np.arange(1, 7, dtype=np.float32).reshape(2, 3, 1),
        ...     "_observation/reward": np.ones((2, 3), np.float32),
        ...     "_observation/terminated": np.zeros((2, 3), bool),
        ...     "_observation/done": np.zeros((2, 3), bool)})
        >>> buffer = ReplayBuffer(100)
        >>> buffer.add(steps)
        >>> len(buffer), buffer.sample(4).batch_shape
        (6, (4,))
    """

    def __init__(self, capacity: int, *, keys: Sequence[str] | None = None, seed: int = 0):
        given: object = capacity  # checked at runtime: users pass anything
        if isinstance(given, bool) or not isinstance(given, int) or given < 1:
            raise ValueError(f"capacity must be a positive int, got {capacity!r}.")
        self.capacity = capacity
        self._keys = None if keys is None else tuple(dict.fromkeys([*keys, *DEFAULT_KEYS[2:]]))
        self._rng = np.random.default_rng(seed)
        self._data: dict[str, npt.NDArray[Any]] = {}
        self._rows = 0  # rows of storage (capacity / n_envs, rounded up)
        self._pos = 0  # next row to write
        self._full = False

    def __len__(self) -> int:
        """Transitions stored."""
        n_envs = next(iter(self._data.values())).shape[1] if self._data else 0
        return (self._rows if self._full else self._pos) * n_envs

    @property
    def n_envs(self) -> int:
        """Columns of the storage (envs of the batcher), 0 before the first ``add``."""
        return next(iter(self._data.values())).shape[1] if self._data else 0

    def add(self, batch: Trajectories | TemporalDictTensor) -> None:
        """Append the T steps of every env of a ``[n_envs, T]`` batch (numpy or torch).

        Raises:
            ValueError: rows of different lengths (an episode-mode batch: use auto-reset
                envs), another number of envs than before, or a missing key.
        """
        steps = batch.trajectories if isinstance(batch, Trajectories) else batch
        steps = steps.numpy()
        lengths = np.asarray(steps.lengths)
        n_envs = steps.batch_shape[0]
        if n_envs == 0:
            return
        t = int(lengths[0])
        if not np.all(lengths == t):
            raise ValueError(
                f"ReplayBuffer.add needs every env to have made the same number of steps, got "
                f"lengths {lengths.tolist()}; collect with auto-reset envs "
                "(`GymVecEnv(..., auto_reset=True)`)."
            )
        if not self._data:
            self._allocate(steps, n_envs)
        elif n_envs != self.n_envs:
            raise ValueError(f"this buffer stores {self.n_envs} envs, the batch has {n_envs}.")
        rows = (self._pos + np.arange(t)) % self._rows
        for key, store in self._data.items():
            if key not in steps:
                raise ValueError(f"the batch has no key {key!r} (stored keys: {list(self._data)}).")
            store[rows] = np.swapaxes(np.asarray(steps[key])[:, :t], 0, 1)
        self._full = self._full or self._pos + t >= self._rows
        self._pos = int((self._pos + t) % self._rows)

    def _allocate(self, steps: TemporalDictTensor, n_envs: int) -> None:
        keys = self._keys
        if keys is None:
            actions = [k for k in steps.keys() if k.startswith("action/")]
            keys = (*DEFAULT_KEYS[:1], *actions, *DEFAULT_KEYS[1:])
        missing = [k for k in keys if k not in steps]
        if missing:
            raise ValueError(f"the batch has no key(s) {missing}; it has {list(steps.keys())}.")
        self._rows = math.ceil(self.capacity / n_envs)
        specs = steps.specs()
        self._data = {
            k: np.zeros((self._rows, n_envs, *specs[k].shape), specs[k].dtype) for k in keys
        }

    def sample(self, batch_size: int, *, n_step: int = 1, gamma: float = 0.99) -> DictTensor:
        """``batch_size`` transitions drawn uniformly (with replacement), as numpy rows.

        Returns the stored keys plus ``"discount"`` float32: ``gamma ** m``, where m is
        the number of rewards summed. With ``n_step > 1`` a row covers ``m = min(n_step,
        steps to the end of the episode, steps stored after it)`` transitions of one env:
        ``_observation/reward`` is ``sum_k gamma^k r_k``, and ``_observation/frame``,
        ``_observation/terminated`` and ``_observation/done`` are those of its last
        transition. The target of a row is then ``reward + discount * (1 - terminated) *
        V(_observation/frame)`` for any n_step.

        Raises:
            ValueError: the buffer is empty, or a non-positive ``batch_size``/``n_step``.
        """
        if not self._data or len(self) == 0:
            raise ValueError("ReplayBuffer.sample: the buffer is empty; add() a batch first.")
        if batch_size < 1 or n_step < 1:
            raise ValueError(f"batch_size and n_step must be >= 1, got {batch_size}, {n_step}.")
        filled = self._rows if self._full else self._pos
        row = self._rng.integers(0, filled, batch_size)
        env = self._rng.integers(0, self.n_envs, batch_size)
        out = {k: v[row, env] for k, v in self._data.items()}
        if n_step == 1:
            out["discount"] = np.full(batch_size, gamma, np.float32)
            return DictTensor(out, batch_shape=(batch_size,))
        # rows available after `row` in time order: up to the newest row (pos - 1)
        newest = (self._pos - 1) % self._rows
        span = (newest - row) % self._rows + 1 if self._full else filled - row
        reward = self._data["_observation/reward"]
        done = self._data["_observation/done"]
        total = np.zeros(batch_size, np.float64)
        last = np.zeros(batch_size, np.int64)
        alive = np.ones(batch_size, bool)
        for k in range(n_step):
            now = alive & (k < span)
            r = (row + k) % self._rows
            total += np.where(now, gamma**k * reward[r, env], 0.0)
            last = np.where(now, k, last)
            alive = now & ~done[r, env]
        end = (row + last) % self._rows
        for key in ("_observation/frame", "_observation/terminated", "_observation/done"):
            if key in self._data:
                out[key] = self._data[key][end, env]
        out["_observation/reward"] = total.astype(reward.dtype)
        out["discount"] = (gamma ** (last + 1)).astype(np.float32)
        return DictTensor(out, batch_shape=(batch_size,))
