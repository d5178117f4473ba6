"""The end of a step_into slice: the time-major stage becomes the env-major buffer rows.

During a slice in the step_into mode (``EnvSide``, ``_env_side.py``) the VecEnv writes the
observation of step t + 1 into slot t + 1 of the stage (``[T + 1, n, *row]`` per key) and the
final observation of an episode ended at step t straight into ``_observation/*[:, t]``; the
agent side writes its actions (and states) straight into the buffer (``step:*``
``[n, T, *row]``). At the end of the slice, per observation key:

* ``observation/*[k, p]`` = ``stage[s, k]`` and ``_observation/*[k, p]`` = ``stage[s + 1, k]``,
  or the final observation written at ``_observation/*[k, s]`` where env k's episode ended at
  step s (read out first: the copies overwrite it);
* where s runs over the steps of env k that are transitions: every step, or (a VecEnv with
  ``reset_step_ids``) every step but its reset steps, so that env k's transitions are
  rows ``0 .. lengths[k] - 1``; the other ``step:*`` arrays (actions, states) move likewise.

Without reset steps, p = s: two transposed copies per key and the few final rows put back. With
them, one gather per key and destination (``np.take`` with flat indices computed once per
slice) does the transpose and the compaction in the same pass; the rows past a length hold
stale values (``EnvSide.finish`` zeroes them next, ``_padding.py``). Every row is moved as one
element (``_elements``), which numpy copies several times faster than rows of several items.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["SliceEnd", "as_elements", "flat_view"]

Array = npt.NDArray[Any]

# one unsigned (or complex, for 16 bytes) element per row of that byte size: numpy moves
# such elements with its fixed-size copy loops, ~2x faster than rows of several items
_ROW_ELEMENTS: dict[int, np.dtype[Any]] = {
    b: np.dtype(t)
    for b, t in ((1, np.uint8), (2, np.uint16), (4, np.uint32), (8, np.uint64), (16, np.complex128))
}


def as_elements(arr: Array, lead: int) -> Array | None:
    """A view of ``arr`` with its ``lead`` first dims and one element per row, or None.

    Only for copies (the bytes move unchanged); None when the row's byte size has no such
    element type or the row's own dims are not C-contiguous.
    """
    row, row_strides = arr.shape[lead:], arr.strides[lead:]
    element = _ROW_ELEMENTS.get(arr.itemsize * int(np.prod(row, dtype=np.int64)))
    if element is None:
        return None
    if not row:
        return arr.view(element)  # same item size: a view whatever the strides
    expected = arr.itemsize
    for size, stride in zip(reversed(row), reversed(row_strides), strict=True):
        if size > 1 and stride != expected:
            return None
        expected *= size
    merged = arr.reshape(*arr.shape[:lead], -1)  # contiguous row dims: a view
    if not np.shares_memory(merged, arr):  # pragma: no cover - guarded by the loop above
        return None
    return merged.view(element)[..., 0]


def _elements(arr: Array, lead: int) -> Array:
    """``as_elements``, or one opaque (void) element per row for other byte sizes.

    ``arr``'s row dims must be C-contiguous (every stage and buffer array's are).
    """
    view = as_elements(arr, lead)
    if view is not None:
        return view
    merged = arr.reshape(*arr.shape[:lead], -1)
    if not np.shares_memory(merged, arr):  # a batcher's bug: its arrays have contiguous rows
        raise ValueError(f"rows of {arr.shape} with strides {arr.strides} are not contiguous")
    return merged.view(np.dtype((np.void, merged.shape[-1] * arr.itemsize)))[..., 0]


def flat_view(arr: Array) -> Array:
    """A 1-D view of a C-contiguous array (``reshape(-1)`` would copy any other silently)."""
    if not arr.flags.c_contiguous:  # a batcher's bug: buffer arrays are C-contiguous
        raise ValueError(f"an array {arr.shape}, strides {arr.strides}, is not C-contiguous")
    return arr.reshape(-1)


def _flat_slots(stage: Array) -> tuple[Array, int]:
    """A 1-D view of a ``[slots, n]`` element array and its slot stride in elements.

    Element ``(s, k)`` is at ``s * stride + k`` of the view (the stage may be columns of a
    wider shared array: then the stride is that array's width).

    Raises:
        ValueError: the envs of a slot are not adjacent (a batcher's bug: no stage is so).
    """
    slots, n = stage.shape
    item = stage.itemsize
    rows_ok = n <= 1 or stage.strides[1] == item
    if rows_ok and stage.strides[0] % item == 0 and stage.strides[0] >= n * item:
        stride = stage.strides[0] // item if slots > 1 else n
        flat = np.lib.stride_tricks.as_strided(
            stage, shape=((slots - 1) * stride + n,), strides=(item,), writeable=False
        )
        return flat, stride
    raise ValueError(f"a stage of shape {stage.shape}, strides {stage.strides}: the rows of a "
                     "slot must be adjacent")


class _Key:
    """The element views of one observation key (see ``SliceEnd``); rows of bytes > 0."""

    def __init__(self, stage: Array, obs_dst: Array, next_dst: Array) -> None:
        self.stage = _elements(stage, 2)  # [T + 1, n]
        self.obs = _elements(obs_dst, 2)  # [n, T]
        self.next = _elements(next_dst, 2)
        self.obs_flat, self.next_flat = flat_view(self.obs), flat_view(self.next)


class SliceEnd:
    """Writes the buffer rows of a step_into slice from the stage (see the module docstring).

    Args:
        stage: ``{key: [T + 1, n, *row]}``, where the agent read the observations.
        obs: ``{key: (observation/key [n, T, *row], _observation/key [n, T, *row])}``; the
            VecEnv wrote the final observations of step t's ended episodes at
            ``_observation/key[:, t]``.
        others: the other ``step:*`` buffer arrays ``[n, T, *row]`` (moved at compaction).
        lengths: the buffer's ``[n]`` lengths.
        n_timesteps: T.
    """

    def __init__(
        self,
        stage: Mapping[str, Array],
        obs: Mapping[str, tuple[Array, Array]],
        others: Sequence[Array],
        lengths: Array,
        n_timesteps: int,
    ) -> None:
        self._keys = [  # (rows of 0 bytes: nothing to copy)
            _Key(stage[k], o, nx) for k, (o, nx) in obs.items() if math.prod(o.shape[2:])
        ]
        self._others = [flat_view(_elements(a, 2)) for a in others if a.size]
        self._lengths = lengths
        self.n, self.T = n, T = lengths.shape[0], n_timesteps
        self._env_rows = np.arange(n)[:, None]  # [n, 1]
        self._by_env = np.arange(0, n * T, T)  # env k's first flat index in [n, T]
        self._slots = [_flat_slots(key.stage) for key in self._keys]
        self._positions = np.arange(T)[None, :]  # [1, T]
        self._steps = np.broadcast_to(self._positions, (n, T))  # step s at [k, s]

    def plain(self, rows: Array, steps: Array) -> None:
        """No reset steps: every step is a transition. ``(rows, steps)``: the ended episodes."""
        T = self.T
        self._lengths[:] = T
        at = rows * T + steps
        finals = self._finals(at)
        for key in self._keys:
            np.copyto(key.obs, key.stage[:T].swapaxes(0, 1))
            np.copyto(key.next, key.stage[1:].swapaxes(0, 1))
        self._put_finals(at, finals)

    def compact(self, rows: Array, steps: Array, skip_rows: Array, skip_steps: Array) -> None:
        """Drop the reset steps ``(skip_rows, skip_steps)``; ``(rows, steps)``: the ended ones.

        Env k's other steps move up, in order; its length is ``T`` minus its reset steps.
        """
        n, T = self.n, self.T
        kept = np.ones((n, T), np.bool_)
        kept[skip_rows, skip_steps] = False
        rows, steps = rows[kept[rows, steps]], steps[kept[rows, steps]]  # (never in reset steps)
        finals = self._finals(rows * T + steps)
        lengths = kept.sum(axis=1)
        self._lengths[:] = lengths
        src = np.flatnonzero(kept)  # env * T + s of every transition, in order
        filled = self._positions < lengths[:, None]  # [n, T]: the rows that get one
        step = np.full((n, T), T - 1, np.intp)  # the step each row comes from
        step[filled] = self._steps[kept]  # in order: env k's transitions fill its first rows
        gathers: dict[int, Array] = {}  # flat stage indices, per slot stride (one, usually)
        for key, (flat, stride) in zip(self._keys, self._slots, strict=True):
            gather = gathers.get(stride)
            if gather is None:
                gather = gathers[stride] = (step * stride + self._env_rows).reshape(-1)
            np.take(flat, gather, out=key.obs_flat, mode="wrap")
            np.take(flat[stride:], gather, out=key.next_flat, mode="wrap")  # slot s + 1
        if len(rows):
            to = np.empty(n * T, np.intp)  # where each step's row goes
            to[src] = np.flatnonzero(filled)
            self._put_finals(to[rows * T + steps], finals)
        if self._others:
            gather = (step + self._by_env[:, None]).reshape(-1)
            for flat_arr in self._others:
                flat_arr[:] = flat_arr[gather]  # (a copy first: no overlap to fear)

    def _finals(self, at: Array) -> list[Array]:
        """Copies of the final observations at the flat ``[n * T]`` rows ``at``, per key."""
        return [key.next_flat[at] for key in self._keys] if len(at) else []

    def _put_finals(self, at: Array, finals: list[Array]) -> None:
        """Write ``finals`` (from ``_finals``) back at the flat rows ``at``."""
        for key, rows in zip(self._keys, finals, strict=False):
            key.next_flat[at] = rows
