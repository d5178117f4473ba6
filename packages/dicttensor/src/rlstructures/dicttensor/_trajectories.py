"""`Trajectories`: what a batcher returns, per-sequence info plus the sequences."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rlstructures.dicttensor._dicttensor import DictTensor
from rlstructures.dicttensor._temporal import TemporalDictTensor
from rlstructures.dicttensor.errors import BatchShapeError

if TYPE_CHECKING:
    import torch

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

    Example:
        >>> import numpy as np
        >>> info = DictTensor({"agent_info/eps": np.zeros(2)})
        >>> steps = TemporalDictTensor({"action/action": np.zeros((2, 5), np.int64)})
        >>> len(Trajectories(info, steps))
        2
    """

    __slots__ = ("info", "trajectories")

    def __init__(self, info: DictTensor, trajectories: TemporalDictTensor) -> None:
        if not isinstance(info, DictTensor) or not isinstance(trajectories, TemporalDictTensor):
            raise TypeError(
                "Trajectories(info, trajectories) takes a DictTensor and a TemporalDictTensor, "
                f"got {type(info).__name__} and {type(trajectories).__name__}."
            )
        if info.batch_shape != (len(trajectories),):
            raise BatchShapeError(
                f"info has batch_shape {info.batch_shape} but there are {len(trajectories)} "
                "sequences: info needs one row per sequence."
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

    def __getitem__(self, index: Any) -> Trajectories:
        """Select sequences (a slice, an int array or a bool mask over B)."""
        if isinstance(index, int):
            index = slice(index, index + 1 if index != -1 else None)
        tdt = self.trajectories[index]
        assert isinstance(tdt, TemporalDictTensor)  # non-int indices give sequences
        return Trajectories(self.info[index], tdt)

    @staticmethod
    def cat(seq: list[Trajectories]) -> Trajectories:
        """Concatenate along B (sequences padded to the longest T)."""
        if not seq:
            raise ValueError("Trajectories.cat needs at least one part, got none.")
        return Trajectories(
            DictTensor.cat([s.info for s in seq]),
            TemporalDictTensor.cat([s.trajectories for s in seq]),
        )

    def torch(self) -> Trajectories:
        """Zero-copy torch views."""
        return Trajectories(self.info.torch(), self.trajectories.torch())

    def numpy(self) -> Trajectories:
        """numpy leaves (zero-copy for CPU tensors)."""
        return Trajectories(self.info.numpy(), self.trajectories.numpy())

    def to(self, device: str | torch.device, non_blocking: bool = False) -> Trajectories:
        """Everything on a torch device."""
        return Trajectories(
            self.info.to(device, non_blocking), self.trajectories.to(device, non_blocking)
        )

    def equal(self, other: object) -> bool:
        """Same info and same sequences (padding ignored)."""
        return (
            isinstance(other, Trajectories)
            and self.info.equal(other.info)
            and self.trajectories.equal(other.trajectories)
        )

    def __repr__(self) -> str:
        return f"Trajectories(info={self.info!r}, trajectories={self.trajectories!r})"
