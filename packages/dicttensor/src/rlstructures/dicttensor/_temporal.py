"""`TemporalDictTensor`: a batch of B sequences of various lengths, padded to T steps."""

from __future__ import annotations

from collections.abc import ItemsView, Iterable, KeysView, Mapping, Sequence
from typing import TYPE_CHECKING, Any, overload

import numpy as np

from rlstructures.dicttensor._backend import is_tensor, torch_helpers
from rlstructures.dicttensor._dicttensor import DictTensor, Index
from rlstructures.dicttensor._spec import Spec
from rlstructures.dicttensor.errors import BatchShapeError

if TYPE_CHECKING:
    import pyarrow as pa
    import torch

__all__ = ["TemporalDictTensor"]


class TemporalDictTensor:
    """B sequences of DictTensor rows, of lengths ``lengths``, padded to ``max_length`` T.

    Invariants, kept by every operation: every leaf has shape ``[B, T, *row_shape]``;
    ``lengths`` is an int64 array (a tensor for the torch backend) of shape ``[B]`` with
    ``0 <= lengths <= T``. Steps ``t >= lengths[b]`` are padding: their values are
    unspecified and ``equal`` ignores them.

    Args:
        data: ``{key: [B, T, ...] array}`` or a DictTensor with ``batch_shape == (B, T)``.
        lengths: ``[B]`` integers; None means every sequence is full (length T).

    Raises:
        BatchShapeError: leaves lack the two leading dims, or ``lengths`` has the wrong shape
            or values outside ``[0, T]``.
        TypeError: ``lengths`` is not integer.

    Example:
        >>> import numpy as np
        >>> tdt = TemporalDictTensor({"r": np.ones((2, 3), np.float32)}, lengths=np.array([3, 1]))
        >>> tdt.mask()
        array([[ True,  True,  True],
               [ True, False, False]])
        >>> tdt[1]["r"]  # an int gives the valid steps of one sequence
        array([1.], dtype=float32)
    """

    __slots__ = ("_dt", "_lengths")

    _dt: DictTensor
    _lengths: Any

    def __init__(self, data: Mapping[str, Any] | DictTensor, lengths: Any = None) -> None:
        if isinstance(data, DictTensor):
            dt = data
            if len(dt.batch_shape) != 2:
                dt = _as_bt(dt.to_dict(), dt.batch_shape)
        else:
            dt = _as_bt(dict(data), None)
        self._dt = dt
        self._lengths = _check_lengths(lengths, dt)

    @classmethod
    def _trusted(cls, dt: DictTensor, lengths: Any) -> TemporalDictTensor:
        self = object.__new__(cls)
        self._dt = dt
        self._lengths = lengths
        return self

    # ------------------------------------------------------------------ properties
    @property
    def lengths(self) -> Any:
        """``[B]`` int64: the number of valid steps of each sequence."""
        return self._lengths

    @property
    def max_length(self) -> int:
        """T, the padded number of steps."""
        return self._dt.batch_shape[1]

    @property
    def batch_shape(self) -> tuple[int, int]:
        """``(B, T)``."""
        b, t = self._dt.batch_shape
        return b, t

    @property
    def backend(self) -> str:
        """``"numpy"`` or ``"torch"``."""
        return self._dt.backend

    @property
    def dict_tensor(self) -> DictTensor:
        """The underlying DictTensor of batch shape ``(B, T)`` (padding included)."""
        return self._dt

    def __len__(self) -> int:
        """B, the number of sequences."""
        return self._dt.batch_shape[0]

    def keys(self) -> KeysView[str]:
        """The keys."""
        return self._dt.keys()

    def items(self) -> ItemsView[str, Any]:
        """``(key, [B, T, ...] leaf)`` pairs."""
        return self._dt.items()

    def __contains__(self, key: object) -> bool:
        return key in self._dt

    def specs(self) -> dict[str, Spec]:
        """Per-step ``Spec`` of every key."""
        return self._dt.specs()

    def __repr__(self) -> str:
        inner = repr(self._dt).split(", backend=", 1)[1]
        return f"TemporalDictTensor(B={len(self)}, T={self.max_length}, backend={inner}"

    # ------------------------------------------------------------------ indexing
    @overload
    def __getitem__(self, index: str) -> Any: ...
    @overload
    def __getitem__(self, index: int) -> DictTensor: ...
    @overload
    def __getitem__(self, index: Index) -> TemporalDictTensor | DictTensor: ...

    def __getitem__(self, index: Any) -> Any:
        """``tdt["key"]`` is a ``[B, T, ...]`` leaf; ``tdt[i]`` (an int) is a DictTensor of the
        ``lengths[i]`` valid steps of sequence i; a slice, int array or bool mask selects
        sequences and returns a TemporalDictTensor."""
        if type(index) is str:
            return self._dt[index]
        if isinstance(index, (int, np.integer)):
            b = len(self)
            if not -b <= index < b:
                raise IndexError(f"sequence index {index} is out of range for B={b}.")
            return self._dt[index][: int(self._lengths[index])]
        if isinstance(index, tuple):
            raise IndexError(
                "TemporalDictTensor takes one index over the sequences; for time use "
                "`temporal_index(t)` or `temporal_slice(start, stop)`."
            )
        dt = self._dt[index]
        return TemporalDictTensor._trusted(dt, self._lengths[index])

    def __setitem__(self, key: str, value: Any) -> None:
        """Add or replace a ``[B, T, ...]`` leaf (e.g. advantages computed from the batch)."""
        if type(key) is not str:
            raise TypeError("TemporalDictTensor item assignment takes a str key.")
        self._dt[key] = value

    def mask(self) -> Any:
        """``[B, T]`` bool: True on valid steps (``t < lengths[b]``)."""
        t = self.max_length
        if self.backend == "torch":
            steps = torch_helpers("mask()").arange(t, self._lengths)
        else:
            steps = np.arange(t)
        return steps[None, :] < self._lengths[:, None]

    def temporal_index(self, t: int) -> DictTensor:
        """The B rows at step t (padding rows included): a DictTensor of batch shape ``(B,)``."""
        self._check_step(t)
        return self._dt[:, t]

    def masked_temporal_index(self, t: int) -> tuple[DictTensor, Any]:
        """The rows at step t of the sequences still running (``t < lengths``).

        Returns:
            ``(rows, indices)``: rows a DictTensor of batch ``(n,)`` and indices the ``[n]``
            int64 positions of those sequences in the batch.
        """
        self._check_step(t)
        running = self._lengths > t
        if self.backend == "torch":
            idx = torch_helpers("masked_temporal_index()").nonzero(running)
        else:
            idx = np.flatnonzero(running)
        return self._dt[idx, t], idx

    def temporal_slice(self, start: int, stop: int) -> TemporalDictTensor:
        """Steps ``start:stop`` of every sequence; lengths become
        ``clip(lengths - start, 0, stop - start)``. ``stop`` past T is clipped to T."""
        t = self.max_length
        if not 0 <= start <= stop:
            raise BatchShapeError(
                f"temporal_slice needs 0 <= start <= stop, got start={start}, stop={stop}."
            )
        stop = min(stop, t)
        start = min(start, stop)
        lengths = (self._lengths - start).clip(0, stop - start)
        return TemporalDictTensor._trusted(self._dt[:, start:stop], lengths)

    def shorten(self) -> TemporalDictTensor:
        """Drop the padding steps that no sequence uses: T becomes ``max(lengths)``."""
        t = int(self._lengths.max()) if len(self) else 0
        return TemporalDictTensor._trusted(self._dt[:, :t], self._lengths)

    def _check_step(self, t: int) -> None:
        if not 0 <= t < self.max_length:
            raise IndexError(f"step {t} is out of range for T={self.max_length}.")

    # ------------------------------------------------------------------ combining
    @staticmethod
    def cat(seq: Iterable[TemporalDictTensor]) -> TemporalDictTensor:
        """Concatenate along the batch, padding every part with zeros to the longest T."""
        parts = list(seq)
        if not parts:
            raise ValueError("TemporalDictTensor.cat needs at least one part, got none.")
        for i, part in enumerate(parts):
            if not isinstance(part, TemporalDictTensor):
                raise TypeError(
                    f"TemporalDictTensor.cat: item {i} is a {type(part).__name__}, "
                    "not a TemporalDictTensor."
                )
        t = max(p.max_length for p in parts)
        padded = [p._padded(t) for p in parts]
        dt = DictTensor.cat(padded, dim=0)
        if parts[0].backend == "torch":
            th = torch_helpers("TemporalDictTensor.cat()")
            lengths = th.cat([p._lengths for p in parts], 0)
        else:
            lengths = np.concatenate([p._lengths for p in parts])
        return TemporalDictTensor._trusted(dt, lengths)

    def _padded(self, t: int) -> DictTensor:
        if t == self.max_length:
            return self._dt
        b = len(self)
        pad = DictTensor.zeros(self._dt.specs(), (b, t - self.max_length), self._dt.backend)
        if self.backend == "torch" and self._dt.keys():
            pad = pad.to(next(iter(self._dt.values())).device)
        return DictTensor.cat([self._dt, pad], dim=1)

    def clone(self) -> TemporalDictTensor:
        """A deep copy."""
        lengths = self._lengths.clone() if is_tensor(self._lengths) else self._lengths.copy()
        return TemporalDictTensor._trusted(self._dt.clone(), lengths)

    # ------------------------------------------------------------------ key namespaces
    def prefix(self, prefix: str) -> TemporalDictTensor:
        """Keys become ``prefix + key``."""
        return TemporalDictTensor._trusted(self._dt.prefix(prefix), self._lengths)

    def select_prefix(self, prefix: str) -> TemporalDictTensor:
        """Keep the keys under ``prefix``, prefix removed."""
        return TemporalDictTensor._trusted(self._dt.select_prefix(prefix), self._lengths)

    def select(self, keys: Iterable[str]) -> TemporalDictTensor:
        """Keep only ``keys``."""
        return TemporalDictTensor._trusted(self._dt.select(keys), self._lengths)

    def exclude(self, keys: Iterable[str]) -> TemporalDictTensor:
        """Drop ``keys``."""
        return TemporalDictTensor._trusted(self._dt.exclude(keys), self._lengths)

    # ------------------------------------------------------------------ backends
    def torch(self) -> TemporalDictTensor:
        """torch leaves and lengths sharing memory with the numpy ones (zero-copy)."""
        dt = self._dt.torch()
        lengths = self._lengths
        if not is_tensor(lengths):
            lengths = torch_helpers("torch()").from_numpy({"lengths": lengths})["lengths"]
        return TemporalDictTensor._trusted(dt, lengths)

    def numpy(self) -> TemporalDictTensor:
        """numpy leaves and lengths (zero-copy for CPU tensors)."""
        lengths = self._lengths
        if is_tensor(lengths):
            lengths = lengths.detach().cpu().numpy()
        return TemporalDictTensor._trusted(self._dt.numpy(), lengths)

    def to(self, device: str | torch.device, non_blocking: bool = False) -> TemporalDictTensor:
        """Leaves and lengths on a torch device."""
        src = self.torch()
        lengths = src._lengths.to(device, non_blocking=non_blocking)
        return TemporalDictTensor._trusted(src._dt.to(device, non_blocking), lengths)

    def pin_memory(self) -> TemporalDictTensor:
        """Leaves in page-locked memory (unchanged when CUDA is absent)."""
        src = self.torch()
        return TemporalDictTensor._trusted(src._dt.pin_memory(), src._lengths)

    def equal(self, other: object) -> bool:
        """Same lengths, keys, shapes, dtypes and values on valid steps (padding ignored)."""
        if not isinstance(other, TemporalDictTensor) or other.batch_shape != self.batch_shape:
            return False
        if self.backend != other.backend or self._dt.keys() != other._dt.keys():
            return False
        a, b = self.numpy(), other.numpy()
        if not np.array_equal(a._lengths, b._lengths):
            return False
        valid = a.mask()
        return a._dt[valid].equal(b._dt[valid])

    # ------------------------------------------------------------------ Arrow
    def to_arrow(self) -> pa.RecordBatch:
        """Long format: one row per valid step with ``trajectory`` and ``t`` (int64) columns
        first, then the leaves. Needs the ``arrow`` extra."""
        from rlstructures.dicttensor._arrow import temporal_to_arrow

        return temporal_to_arrow(self)

    @staticmethod
    def from_arrow(batch: pa.RecordBatch | pa.Table) -> TemporalDictTensor:
        """Rebuild from the long format (B and T from the schema metadata, else inferred)."""
        from rlstructures.dicttensor._arrow import temporal_from_arrow

        return temporal_from_arrow(batch)


def _as_bt(data: dict[str, Any], batch_shape: Sequence[int] | None) -> DictTensor:
    """A DictTensor of batch shape (B, T) from leaves shaped [B, T, ...]."""
    if not data:
        if batch_shape is not None and len(batch_shape) >= 2:
            return DictTensor({}, batch_shape=tuple(batch_shape)[:2])
        return DictTensor({}, batch_shape=(0, 0))
    key, first = next(iter(data.items()))
    if getattr(first, "ndim", 0) < 2:
        raise BatchShapeError(
            f"key {key!r} has shape {tuple(getattr(first, 'shape', ()))}, but TemporalDictTensor "
            "leaves need at least two leading dims [B, T, ...]. Add a time dim, e.g. `x[:, None]`."
        )
    return DictTensor(data, batch_shape=tuple(first.shape[:2]))


def _check_lengths(lengths: Any, dt: DictTensor) -> Any:
    b, t = dt.batch_shape
    torch_backend = dt.backend == "torch" and bool(dt.keys())
    like = next(iter(dt.values())) if torch_backend else None
    if lengths is None:
        if torch_backend:
            return torch_helpers("TemporalDictTensor").full((b,), t, like)
        return np.full((b,), t, dtype=np.int64)
    if torch_backend:
        th = torch_helpers("TemporalDictTensor")
        arr = th.as_tensor_like(lengths, like)
        kind_ok = not (arr.is_floating_point() or arr.is_complex() or str(arr.dtype) == "torch.bool")
        shape = tuple(arr.shape)
    else:
        arr = lengths.detach().cpu().numpy() if is_tensor(lengths) else np.asarray(lengths)
        kind_ok = arr.dtype.kind in "iu"
        shape = arr.shape
    if not kind_ok:
        raise TypeError(f"lengths must hold integers, got dtype {arr.dtype}.")
    if shape != (b,):
        raise BatchShapeError(
            f"lengths has shape {shape}, expected ({b},): one length per sequence (B={b})."
        )
    arr = arr.long() if torch_backend else arr.astype(np.int64, copy=False)
    if b and (int(arr.min()) < 0 or int(arr.max()) > t):
        bad = int(np.flatnonzero((np.asarray(arr.tolist()) < 0) | (np.asarray(arr.tolist()) > t))[0])
        raise BatchShapeError(
            f"lengths[{bad}] = {int(arr[bad])} is outside [0, T={t}]; every length must be "
            "between 0 and the padded number of steps."
        )
    return arr
