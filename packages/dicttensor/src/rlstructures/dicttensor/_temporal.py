"""`TemporalDictTensor`: a batch of B sequences of various lengths, padded to T steps."""

from __future__ import annotations

from collections.abc import ItemsView, Iterable, Iterator, KeysView, Mapping, Sequence, ValuesView
from typing import TYPE_CHECKING, Any, Final, TypeAlias, overload

import numpy as np
import numpy.typing as npt

from rlstructures.dicttensor import _arrow, _backend
from rlstructures.dicttensor._backend import Backend, is_tensor, require_torch
from rlstructures.dicttensor._checks import (
    batch_positions,
    index_error,
    index_repr,
    int_arg,
    leaf_backend,
    row_key,
    spec_str,
    torch_needs_gather,
)
from rlstructures.dicttensor._dicttensor import DictTensor
from rlstructures.dicttensor._renamed import TEMPORAL, RemovedAttribute
from rlstructures.dicttensor._spec import Spec
from rlstructures.dicttensor.errors import BackendError, BatchIndexError, BatchShapeError

if TYPE_CHECKING:
    import pyarrow as pa
    import torch as _torch

__all__ = ["SeqIndex", "TemporalDictTensor"]

#: What selects sequences: a slice, an int or bool array (numpy or torch) or a list.
SeqIndex: TypeAlias = "slice | npt.NDArray[Any] | _torch.Tensor | list[Any] | range"


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
        elif isinstance(data, Mapping):
            dt = _as_bt(dict(data), None)
        else:
            raise TypeError(
                "TemporalDictTensor(data) takes a mapping of [B, T, ...] arrays or a DictTensor "
                f"of batch_shape (B, T), got {type(data).__name__}."
            )
        self._dt = dt
        self._lengths = _frozen(_check_lengths(lengths, dt))

    @classmethod
    def _trusted(cls, dt: DictTensor, lengths: Any) -> TemporalDictTensor:
        self = object.__new__(cls)
        self._dt = dt
        self._lengths = _frozen(lengths)
        return self

    # ------------------------------------------------------------------ properties
    @property
    def lengths(self) -> Any:
        """``[B]`` int64: the number of valid steps of each sequence.

        A numpy ``lengths`` is read-only (writing to it could break ``0 <= lengths <= T``);
        build a new TemporalDictTensor to change it.
        """
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
    def backend(self) -> Backend:
        """``"numpy"`` or ``"torch"``: the backend of the leaves and of ``lengths``."""
        return "numpy" if isinstance(self._lengths, np.ndarray) else "torch"

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

    def values(self) -> ValuesView[Any]:
        """The ``[B, T, ...]`` leaves."""
        return self._dt.values()

    def items(self) -> ItemsView[str, Any]:
        """``(key, [B, T, ...] leaf)`` pairs."""
        return self._dt.items()

    def __iter__(self) -> Iterator[DictTensor]:
        """Iterate over the sequences: ``tdt[0]``, ``tdt[1]``, ... (valid steps only)."""
        for i in range(len(self)):
            yield self[i]

    def __contains__(self, key: object) -> bool:
        return key in self._dt

    def specs(self) -> dict[str, Spec]:
        """Per-step ``Spec`` of every key."""
        return self._dt.specs()

    def __reduce__(self) -> tuple[Any, tuple[DictTensor, Any]]:
        return _rebuild, (self._dt, self._lengths)

    def __repr__(self) -> str:
        leaves = ", ".join(f"{k!r}: {spec_str(v, 2)}" for k, v in self._dt.items())
        return (
            f"TemporalDictTensor(B={len(self)}, T={self.max_length}, backend={self.backend}, "
            f"{{{leaves}}})"
        )

    # ------------------------------------------------------------------ indexing
    @overload
    def __getitem__(self, index: str) -> Any: ...
    @overload
    def __getitem__(self, index: int | np.integer[Any]) -> DictTensor: ...
    @overload
    def __getitem__(self, index: SeqIndex) -> TemporalDictTensor: ...

    def __getitem__(self, index: Any) -> Any:
        """A leaf, one sequence or a selection of sequences.

        ``tdt["key"]`` is a ``[B, T, ...]`` leaf; ``tdt[i]`` (an int) is a DictTensor of
        the ``lengths[i]`` valid steps of sequence i; a slice, int array (or list) or bool
        mask over B selects sequences and returns a TemporalDictTensor.
        """
        if type(index) is str:
            return self._dt[index]
        b = len(self)
        if (type(index) is int or isinstance(index, np.integer)) and not isinstance(
            index, bool
        ):
            if not -b <= index < b:
                raise BatchIndexError(
                    f"sequence index {index} is out of range for B={b} sequences."
                )
            return self._dt[index][: int(self._lengths[index])]
        if isinstance(index, tuple):
            raise BatchIndexError(
                "TemporalDictTensor takes one index over the sequences; for time use "
                "`temporal_index(t)` or `temporal_slice(start, stop)`, or index "
                "`tdt.dict_tensor[b, t]` (padding included)."
            )
        numpy_backend = self.backend == "numpy"
        key = row_key(index, (b,), numpy_backend)
        if not numpy_backend and torch_needs_gather(key):
            index = batch_positions(index, (b,))  # what torch cannot index: by position
            key = (index, Ellipsis)
        try:
            lengths = self._lengths[key]
        except (IndexError, TypeError, ValueError, RuntimeError) as exc:
            raise index_error(index, (b,), exc) from None
        if lengths.ndim != 1:
            raise BatchIndexError(
                f"index {index_repr(index)} selects sequences with shape {tuple(lengths.shape)}; "
                "use a 1-D int array, a slice or a bool mask of shape (B,)."
            )
        return TemporalDictTensor._trusted(self._dt[index], lengths)

    def __setitem__(self, key: str, value: Any) -> None:
        """Add or replace a ``[B, T, ...]`` leaf (e.g. advantages computed from the batch)."""
        if type(key) is not str:
            raise TypeError(
                f"TemporalDictTensor item assignment takes a str key, got {key!r}; to change "
                "rows, build a new TemporalDictTensor from `tdt.dict_tensor`."
            )
        self._dt[key] = value

    def mask(self) -> Any:
        """``[B, T]`` bool: True on valid steps (``t < lengths[b]``)."""
        t = self.max_length
        steps: Any  # a numpy array or a tensor, like lengths
        if self.backend == "torch":
            require_torch("mask()")
            steps = _backend.torch.arange(t, device=self._lengths.device)
        else:
            steps = np.arange(t)
        return steps[None, :] < self._lengths[:, None]

    def temporal_index(self, t: int) -> DictTensor:
        """The B rows at step t (padding rows included): a DictTensor of batch shape ``(B,)``.

        Raises:
            BatchIndexError: ``t`` is not in ``[0, T)``.
        """
        return self._dt[:, self._step(t)]

    def masked_temporal_index(self, t: int) -> tuple[DictTensor, Any]:
        """The rows at step t of the sequences still running (``t < lengths``).

        Returns:
            ``(rows, indices)``: rows a DictTensor of batch ``(n,)`` and indices the ``[n]``
            int64 positions of those sequences in the batch.
        """
        t = self._step(t)
        running = self._lengths > t
        idx: Any
        if self.backend == "torch":
            require_torch("masked_temporal_index()")
            idx = _backend.torch.nonzero(running).flatten()
        else:
            idx = np.flatnonzero(running).astype(np.int64, copy=False)
        return self._dt[idx, t], idx

    def temporal_slice(self, start: int, stop: int) -> TemporalDictTensor:
        """Steps ``start:stop`` of every sequence (a view).

        Lengths become ``clip(lengths - start, 0, stop - start)``; ``stop`` past T is
        clipped to T.

        Raises:
            BatchIndexError: ``start`` or ``stop`` is negative, or ``start > stop``.
        """
        start = int_arg("temporal_slice start", start)
        stop = int_arg("temporal_slice stop", stop)
        if not 0 <= start <= stop:
            raise BatchIndexError(
                f"temporal_slice needs 0 <= start <= stop, got start={start}, stop={stop}."
            )
        stop = min(stop, self.max_length)
        start = min(start, stop)
        lengths = (self._lengths - start).clip(0, stop - start)
        return TemporalDictTensor._trusted(self._dt[:, start:stop], lengths)

    def shorten(self) -> TemporalDictTensor:
        """Drop the padding steps that no sequence uses: T becomes ``max(lengths)`` (a view)."""
        t = int(self._lengths.max()) if len(self) else 0
        return TemporalDictTensor._trusted(self._dt[:, :t], self._lengths)

    def _step(self, t: object) -> int:
        step = int_arg("step t", t)
        if not 0 <= step < self.max_length:
            raise BatchIndexError(
                f"step {step} is out of range for T={self.max_length}: use 0 <= t < T."
            )
        return step

    # ------------------------------------------------------------------ combining
    @staticmethod
    def cat(seq: Iterable[TemporalDictTensor]) -> TemporalDictTensor:
        """Concatenate along the batch, padding every part with zeros to the longest T.

        Example:
            >>> a = TemporalDictTensor({"r": np.ones((1, 2))})
            >>> b = TemporalDictTensor({"r": np.ones((1, 3))}, lengths=[1])
            >>> c = TemporalDictTensor.cat([a, b])
            >>> c.batch_shape, c.lengths
            ((2, 3), array([2, 1]))
        """
        given: object = seq
        if isinstance(given, TemporalDictTensor) or not isinstance(given, Iterable):
            raise TypeError(
                "TemporalDictTensor.cat takes a sequence of TemporalDictTensors, got a "
                f"{type(given).__name__}; write `TemporalDictTensor.cat([a, b])`."
            )
        parts: list[TemporalDictTensor] = []
        for i, part in enumerate(given):
            if not isinstance(part, TemporalDictTensor):
                raise TypeError(
                    f"TemporalDictTensor.cat: item {i} is a {type(part).__name__}, "
                    "not a TemporalDictTensor."
                )
            parts.append(part)
        if not parts:
            raise ValueError("TemporalDictTensor.cat needs at least one part, got none.")
        for i, part in enumerate(parts):
            if part.backend != parts[0].backend:
                raise BackendError(
                    f"TemporalDictTensor.cat: part {i} is {part.backend}, part 0 is "
                    f"{parts[0].backend}; convert with `.numpy()` or `.torch()` first."
                )
        t = max(p.max_length for p in parts)
        padded = [p._padded(t) for p in parts]
        dt = DictTensor.cat(padded, dim=0)
        lengths: Any
        if parts[0].backend == "torch":
            require_torch("TemporalDictTensor.cat()")
            lengths = _backend.torch.cat([p._lengths for p in parts], dim=0)
        else:
            lengths = np.concatenate([p._lengths for p in parts])
        return TemporalDictTensor._trusted(dt, lengths)

    def _padded(self, t: int) -> DictTensor:
        if t == self.max_length:
            return self._dt
        b, device = len(self), None
        if self._dt.backend == "torch":
            device = next(iter(self._dt.values())).device
        pad = DictTensor.zeros(
            self._dt.specs(), (b, t - self.max_length), self._dt.backend, device=device
        )
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
        """Torch leaves and lengths sharing memory with the numpy ones (zero-copy)."""
        dt = self._dt.torch()
        lengths = self._lengths
        if not is_tensor(lengths):
            require_torch("TemporalDictTensor.torch()")
            lengths = _backend.th.from_numpy({"lengths": lengths})["lengths"]
        return TemporalDictTensor._trusted(dt, lengths)

    def numpy(self) -> TemporalDictTensor:
        """Numpy leaves and lengths (zero-copy for CPU tensors)."""
        lengths = self._lengths
        if is_tensor(lengths):
            lengths = lengths.detach().cpu().numpy()
        return TemporalDictTensor._trusted(self._dt.numpy(), lengths)

    def to(self, device: str | _torch.device, non_blocking: bool = False) -> TemporalDictTensor:
        """Leaves and lengths on a torch device."""
        src = self.torch()
        lengths = src._lengths.to(device, non_blocking=non_blocking)
        return TemporalDictTensor._trusted(src._dt.to(device, non_blocking), lengths)

    def pin_memory(self) -> TemporalDictTensor:
        """Leaves in page-locked memory (unchanged when CUDA is absent)."""
        src = self.torch()
        require_torch("TemporalDictTensor.pin_memory()")
        lengths = _backend.th.pin_memory({"lengths": src._lengths})
        return TemporalDictTensor._trusted(src._dt.pin_memory(), lengths["lengths"])

    def equal(self, other: object) -> bool:
        """Same lengths, keys, row shapes, dtypes and values on valid steps.

        Padding is ignored, the padded length T included: ``cat`` then index gives back the
        parts even when ``cat`` padded them to a longer T.
        """
        if not isinstance(other, TemporalDictTensor) or len(other) != len(self):
            return False
        if self.backend != other.backend or self._dt.keys() != other._dt.keys():
            return False
        a, b = self.numpy(), other.numpy()
        if not np.array_equal(a._lengths, b._lengths):
            return False
        return bool(a._dt[a.mask()].equal(b._dt[b.mask()]))

    # ------------------------------------------------------------------ Arrow
    def to_arrow(self) -> pa.RecordBatch:
        """Long format: one row per valid step, ordered by sequence then step.

        Columns ``trajectory`` and ``t`` (int64) come first, then the leaves (encoded as in
        ``DictTensor.to_arrow``); B and T go to the schema metadata. Needs the ``arrow``
        extra.
        """
        src = self.numpy()
        b, t = src.batch_shape
        return _arrow.temporal_to_arrow(src._dt.to_dict(), src._lengths, b, t)

    @staticmethod
    def from_arrow(batch: pa.RecordBatch | pa.Table) -> TemporalDictTensor:
        """Rebuild from the long format, in any row order.

        B and T come from the schema metadata, else from the largest ``trajectory`` and
        ``t`` (so trailing empty sequences need the metadata). Missing steps are padding
        filled with zeros. Needs the ``arrow`` extra.
        """
        data, shape, lengths = _arrow.temporal_from_arrow(batch)
        return TemporalDictTensor(DictTensor._trusted(data, shape), lengths)



RemovedAttribute.install(TemporalDictTensor, TEMPORAL)  # 0.2 names, each naming its replacement


def _rebuild(dt: DictTensor, lengths: Any) -> TemporalDictTensor:
    return TemporalDictTensor._trusted(dt, lengths)


def _frozen(lengths: Any) -> Any:
    """A read-only view of numpy lengths (tensors are returned unchanged)."""
    if isinstance(lengths, np.ndarray) and lengths.flags.writeable:
        lengths = lengths.view()
        lengths.flags.writeable = False
    return lengths


def _as_bt(data: dict[str, Any], batch_shape: Sequence[int] | None) -> DictTensor:
    """A DictTensor of batch shape (B, T) from leaves shaped [B, T, ...]."""
    if not data:
        dims = tuple(batch_shape or ())
        return DictTensor({}, batch_shape=(*dims, 0, 0)[:2] if len(dims) < 2 else dims[:2])
    key, first = next(iter(data.items()))
    leaf_backend(key, first)
    if first.ndim < 2:
        raise BatchShapeError(
            f"key {key!r} has shape {tuple(first.shape)}, but TemporalDictTensor leaves need "
            "two leading dims [B, T, ...]. Add a time dim, e.g. `x[:, None]`, or pass a "
            "DictTensor with `batch_shape=(B, T)`."
        )
    return DictTensor(data, batch_shape=tuple(first.shape[:2]))


_FEW: Final = 256


def _check_lengths(lengths: Any, dt: DictTensor) -> Any:
    """``lengths`` validated and copied to a new int64 array (or tensor on the leaves' device)."""
    b, t = dt.batch_shape
    if dt.keys():
        torch_backend = dt.backend == "torch"
        like = next(iter(dt.values())) if torch_backend else None
    else:
        torch_backend, like = is_tensor(lengths), lengths
    if lengths is None:
        if torch_backend:
            require_torch("TemporalDictTensor")
            device = None if like is None else like.device
            return _backend.torch.full((b,), t, dtype=_backend.torch.int64, device=device)
        return np.full((b,), t, dtype=np.int64)
    if isinstance(lengths, (str, bytes, Mapping)):
        raise TypeError(
            f"lengths must be a [B] integer array, got a {type(lengths).__name__}."
        )
    if torch_backend:
        require_torch("TemporalDictTensor")
        arr = _backend.th.as_tensor_like(lengths, like, "lengths")
        host = arr.detach().cpu().numpy()
    else:
        host = lengths.detach().cpu().numpy() if is_tensor(lengths) else np.asarray(lengths)
    if host.dtype.kind not in "iu" and not (host.size == 0 and host.dtype.kind == "f"):
        raise TypeError(
            f"lengths must hold integers, got dtype {host.dtype}; cast it, e.g. "
            "`lengths.astype(np.int64)`."
        )
    if host.shape != (b,):
        raise BatchShapeError(
            f"lengths has shape {host.shape}, expected ({b},): one length per sequence (B={b})."
        )
    if host.size <= _FEW:  # Python's min and max beat numpy's reductions on a few values
        values = host.tolist()
        bad = bool(values) and (min(values) < 0 or max(values) > t)
    else:  # two reductions, no temporaries
        bad = bool(host.min() < 0 or host.max() > t)
    if bad:
        i = int(np.flatnonzero((host < 0) | (host > t))[0])
        raise BatchShapeError(
            f"lengths[{i}] = {int(host[i])} is outside [0, T={t}]; every length must be "
            "between 0 and the padded number of steps T."
        )
    if torch_backend:
        return arr.to(dtype=_backend.torch.int64, copy=True)
    return np.array(host, dtype=np.int64)
