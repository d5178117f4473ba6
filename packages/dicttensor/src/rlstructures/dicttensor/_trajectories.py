"""`Trajectories`: what a batcher returns, per-sequence info plus the sequences."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from rlstructures.dicttensor._dicttensor import DictTensor
from rlstructures.dicttensor._renamed import TRAJECTORIES, RemovedAttribute
from rlstructures.dicttensor._temporal import SeqIndex, TemporalDictTensor
from rlstructures.dicttensor.errors import BackendError, BatchIndexError, BatchShapeError

if TYPE_CHECKING:
    import torch as _torch

__all__ = ["Trajectories"]


class Trajectories:
    """B sequences with their per-sequence information.

    Attributes:
        info: DictTensor of batch shape ``(B,)``: values fixed for a whole sequence
            (``"agent_info/..."``, ``"env_info/..."``, ``"agent_state/..."`` at its start).
        trajectories: TemporalDictTensor of B sequences (``"observation/..."``,
            ``"action/..."``, ``"_observation/..."``, ...).

    Raises:
        BatchShapeError: ``info`` and ``trajectories`` disagree on B.
        BackendError: one is numpy and the other torch.

    Example:
        >>> import numpy as np
        >>> info = DictTensor({"agent_info/eps": np.zeros(2)})
        >>> steps = TemporalDictTensor({"action/action": np.zeros((2, 5), np.int64)})
        >>> len(Trajectories(info, steps))
        2
    """

    __slots__ = ("info", "trajectories")

    info: DictTensor
    trajectories: TemporalDictTensor

    def __init__(self, info: DictTensor, trajectories: TemporalDictTensor) -> None:
        given: tuple[object, object] = (info, trajectories)
        if not isinstance(given[0], DictTensor) or not isinstance(given[1], TemporalDictTensor):
            raise TypeError(
                "Trajectories(info, trajectories) takes a DictTensor and a TemporalDictTensor, "
                f"got {type(given[0]).__name__} and {type(given[1]).__name__}."
            )
        if info.batch_shape != (len(trajectories),):
            raise BatchShapeError(
                f"info has batch_shape {info.batch_shape} but there are {len(trajectories)} "
                "sequences: info needs one row per sequence (batch_shape "
                f"({len(trajectories)},))."
            )
        if info.keys() and trajectories.keys() and info.backend != trajectories.backend:
            raise BackendError(
                f"info is {info.backend} but trajectories is {trajectories.backend}; convert "
                "one side with `.numpy()` or `.torch()`."
            )
        self.info = info
        self.trajectories = trajectories

    def __len__(self) -> int:
        """B, the number of sequences."""
        return len(self.trajectories)

    @property
    def lengths(self) -> Any:
        """``[B]`` int64 lengths of the sequences."""
        return self.trajectories.lengths

    def __getitem__(self, index: int | np.integer[Any] | SeqIndex) -> Trajectories:
        """Select sequences: an int keeps a batch of one, a slice, int array or bool mask.

        Example:
            >>> info = DictTensor({"id": np.arange(3)})
            >>> tr = Trajectories(info, TemporalDictTensor({"r": np.zeros((3, 2))}))
            >>> tr[-1].info["id"], len(tr[::2])
            (array([2]), 2)
        """
        b = len(self)
        if (type(index) is int or isinstance(index, np.integer)) and not isinstance(
            index, bool
        ):
            i = int(index)
            if not -b <= i < b:
                raise BatchIndexError(
                    f"sequence index {i} is out of range for B={b} sequences."
                )
            index = slice(i % b, i % b + 1)
        tdt = self.trajectories[index]
        if not isinstance(tdt, TemporalDictTensor):
            raise BatchIndexError(f"index {index!r} does not select sequences.")
        return Trajectories(self.info[index], tdt)

    @staticmethod
    def cat(seq: Iterable[Trajectories]) -> Trajectories:
        """Concatenate along B (sequences padded with zeros to the longest T)."""
        parts: list[Trajectories] = []
        for i, part in enumerate(seq):
            if not isinstance(part, Trajectories):
                raise TypeError(
                    f"Trajectories.cat: item {i} is a {type(part).__name__}, not Trajectories."
                )
            parts.append(part)
        if not parts:
            raise ValueError("Trajectories.cat needs at least one part, got none.")
        return Trajectories(
            DictTensor.cat([s.info for s in parts]),
            TemporalDictTensor.cat([s.trajectories for s in parts]),
        )

    def clone(self) -> Trajectories:
        """A deep copy."""
        return Trajectories(self.info.clone(), self.trajectories.clone())

    def torch(self) -> Trajectories:
        """Zero-copy torch views."""
        return Trajectories(self.info.torch(), self.trajectories.torch())

    def numpy(self) -> Trajectories:
        """Numpy leaves (zero-copy for CPU tensors)."""
        return Trajectories(self.info.numpy(), self.trajectories.numpy())

    def to(self, device: str | _torch.device, non_blocking: bool = False) -> Trajectories:
        """Everything on a torch device."""
        return Trajectories(
            self.info.to(device, non_blocking), self.trajectories.to(device, non_blocking)
        )

    def pin_memory(self) -> Trajectories:
        """Everything in page-locked memory (torch views when CUDA is absent)."""
        return Trajectories(self.info.pin_memory(), self.trajectories.pin_memory())

    def equal(self, other: object) -> bool:
        """Same info and same sequences (padding ignored)."""
        return (
            isinstance(other, Trajectories)
            and self.info.equal(other.info)
            and self.trajectories.equal(other.trajectories)
        )

    def __repr__(self) -> str:
        return f"Trajectories(info={self.info!r}, trajectories={self.trajectories!r})"


RemovedAttribute.install(Trajectories, TRAJECTORIES)  # 0.2 names, each naming its replacement
