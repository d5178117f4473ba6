"""Observations read from the collector's stage, whose torch views are made once per slot.

An agent written the natural way reads ``observation.torch()["frame"]``: ``torch()`` makes a
``torch.from_numpy`` view of every key (~1 us each, seven keys for a gymnasium env) to read
one. On the collector's fast path the observation of step ``t`` always lies in the same
arrays (slot ``t`` of the stage), so the views are made the first time a slot is read as
torch and reused at every later slice: ``torch()`` then costs one shallow copy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy.typing as npt

from rlstructures.dicttensor import DictTensor

__all__ = ["StageSlot", "StagedObservation"]


class StageSlot:
    """The arrays of one slot of the stage (``[n, *row]`` per key) and their torch views.

    Args:
        arrays: the slot's rows of every observation key (views of the stage).
        n: the batch size (rows per key).
    """

    __slots__ = ("arrays", "batch_shape", "tensors")

    def __init__(self, arrays: Mapping[str, npt.NDArray[Any]], n: int) -> None:
        self.arrays = dict(arrays)
        self.batch_shape = (n,)
        self.tensors: DictTensor | None = None  # made on the first `torch()`

    def torch(self) -> DictTensor:
        """The torch views of the slot's arrays (one per key, made once, then reused)."""
        if self.tensors is None:
            self.tensors = DictTensor(self.arrays, batch_shape=self.batch_shape).torch()
        return DictTensor(self.tensors)  # a fresh container over the same tensors


class StagedObservation(DictTensor):
    """The observation the agent gets on the fast path: a DictTensor of one stage slot.

    It is a DictTensor in every respect (its leaves are the slot's ``[n, *row]`` numpy
    arrays; it pickles and copies as a plain DictTensor), except that ``torch()`` returns
    the slot's torch views made once (``StageSlot.torch``) while its leaves are the
    slot's arrays; when they are not (the agent set, replaced or removed a key),
    ``torch()`` views the leaves as they are. The same tensors come back at every step
    that reads the slot (every slice): read them, or write their values (which writes the
    buffer, as ``torch.from_numpy`` views would), but change nothing else of them in place
    (``requires_grad_``, ``resize_``, in-place shape ops): ``.clone()`` or ``.detach()``
    them first.

    Args:
        obs: the slot's observation (its leaves, views of the stage, are not copied).
        slot: the slot, made once from ``obs``'s leaves.
    """

    __slots__ = ("_slot",)

    def __init__(self, obs: DictTensor, slot: StageSlot) -> None:
        super().__init__(obs)  # a shallow copy: a fresh mapping over the same leaves
        self._slot = slot

    def torch(self) -> DictTensor:
        """Torch leaves sharing memory with the numpy leaves (see the class docstring)."""
        slot = self._slot
        arrays = slot.arrays
        if len(self.keys()) == len(arrays):
            for k, v in self.items():
                if arrays.get(k) is not v:
                    break
            else:
                return slot.torch()
        return super().torch()

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickles (and copies) as a plain DictTensor of the same leaves."""
        return (_plain, (self.to_dict(), self.batch_shape))


def _plain(data: dict[str, Any], batch_shape: tuple[int, ...]) -> DictTensor:
    return DictTensor(data, batch_shape=batch_shape)
