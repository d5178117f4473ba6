"""`DictTensor`: a dict of arrays that share leading batch dimensions."""

from __future__ import annotations

from collections.abc import ItemsView, Iterable, Iterator, KeysView, Mapping, Sequence, ValuesView
from typing import TYPE_CHECKING, Any, Final, overload

import numpy as np

from rlstructures.dicttensor._backend import Backend, is_tensor, torch_helpers
from rlstructures.dicttensor._spec import Spec
from rlstructures.dicttensor.errors import (
    BackendError,
    BatchShapeError,
    KeyMismatchError,
    SpecMismatchError,
)

if TYPE_CHECKING:
    import pyarrow as pa
    import torch

__all__ = ["DictTensor", "Index"]

#: What selects rows: an int, a slice, an int or bool array (numpy or torch), or a tuple of
#: those over the batch dimensions.
Index = Any

_NOT_LEAF: Final = (
    "key {key!r} holds a {kind}, but DictTensor leaves must be numpy arrays or torch tensors. "
    "Wrap it, e.g. `np.asarray(value)`."
)


def _batch_shape_arg(batch_shape: int | Sequence[int]) -> tuple[int, ...]:
    if isinstance(batch_shape, (int, np.integer)):
        dims: tuple[int, ...] = (int(batch_shape),)
    else:
        dims = tuple(int(d) for d in batch_shape)
    if any(d < 0 for d in dims):
        raise BatchShapeError(f"batch_shape must hold non-negative sizes, got {batch_shape!r}.")
    return dims


def _check_leaves(data: dict[str, Any], batch_shape: tuple[int, ...]) -> None:
    """Validate keys, leaf types, a single backend and the batch shape of every leaf."""
    nb = len(batch_shape)
    backend: type | None = None
    first_key = ""
    for key, value in data.items():
        if type(key) is not str:
            raise TypeError(f"DictTensor keys must be str, got {key!r} ({type(key).__name__}).")
        kind = type(value)
        if kind is not np.ndarray:
            if isinstance(value, np.ndarray):
                kind = np.ndarray
            elif is_tensor(value):
                kind = type(value).__mro__[-2]  # torch.Tensor (subclasses included)
            else:
                raise BackendError(_NOT_LEAF.format(key=key, kind=type(value).__name__))
        if backend is None:
            backend, first_key = kind, key
        elif kind is not backend:
            raise BackendError(
                f"key {key!r} is a {kind.__name__} but key {first_key!r} is a "
                f"{backend.__name__}: a DictTensor holds one backend. Convert with "
                "`DictTensor.torch()` / `.numpy()` before merging."
            )
        if tuple(value.shape[:nb]) != batch_shape or value.ndim < nb:
            raise BatchShapeError(
                f"key {key!r} has shape {tuple(value.shape)}, which does not start with the "
                f"batch shape {batch_shape}. Every leaf must have the batch dimensions first; "
                "store per-sequence values in a separate DictTensor."
            )


class DictTensor:
    """A dict of arrays sharing leading batch dimensions (``batch_shape``).

    Leaves are all numpy arrays or all torch tensors (``backend``); each leaf has shape
    ``[*batch_shape, *row_shape]``. Indexing with a string returns a leaf; any other index
    selects rows of every leaf at once, with numpy semantics (slices are views, fancy
    indices copy). The container is mutable: ``dt["k"] = array`` adds or replaces a leaf
    and ``dt[idx] = other`` writes rows in place.

    Args:
        data: a mapping from str keys to arrays or tensors (the mapping is copied, the
            arrays are not).
        batch_shape: the leading dimensions shared by all leaves. Defaults to the first
            leaf's ``shape[:1]``, or ``(0,)`` when ``data`` is empty.

    Raises:
        BatchShapeError: a leaf does not start with ``batch_shape``.
        BackendError: a leaf is not an array, or numpy and torch leaves are mixed.
        TypeError: a key is not a str.

    Example:
        >>> import numpy as np
        >>> dt = DictTensor({"obs": np.zeros((3, 4), np.float32), "action": np.arange(3)})
        >>> dt.batch_shape, len(dt), dt["obs"].shape
        ((3,), 3, (3, 4))
        >>> dt[1:]["action"]
        array([1, 2])
    """

    __slots__ = ("_batch_shape", "_data")

    _data: dict[str, Any]
    _batch_shape: tuple[int, ...]

    def __init__(
        self,
        data: Mapping[str, Any] | None = None,
        *,
        batch_shape: int | Sequence[int] | None = None,
    ) -> None:
        items: dict[str, Any] = {} if data is None else dict(data)
        if batch_shape is None:
            if items:
                first_key, first = next(iter(items.items()))
                if getattr(first, "ndim", 1) == 0:
                    raise BatchShapeError(
                        f"key {first_key!r} is 0-dimensional, so it has no batch dimension. "
                        "Give every leaf a leading batch dimension, e.g. `x[None]`."
                    )
                shape: tuple[int, ...] = (int(first.shape[0]),) if hasattr(first, "shape") else ()
            else:
                shape = (0,)
        else:
            shape = _batch_shape_arg(batch_shape)
        _check_leaves(items, shape)
        self._data = items
        self._batch_shape = shape

    @classmethod
    def _trusted(cls, data: dict[str, Any], batch_shape: tuple[int, ...]) -> DictTensor:
        """Build without validation: only for data produced by this package's own ops."""
        self = object.__new__(cls)
        self._data = data
        self._batch_shape = batch_shape
        return self

    # ------------------------------------------------------------------ basic properties
    @property
    def batch_shape(self) -> tuple[int, ...]:
        """The leading dimensions shared by every leaf."""
        return self._batch_shape

    @property
    def backend(self) -> Backend:
        """``"numpy"`` or ``"torch"`` (an empty DictTensor is ``"numpy"``)."""
        for value in self._data.values():
            return "numpy" if isinstance(value, np.ndarray) else "torch"
        return "numpy"

    def __len__(self) -> int:
        """``batch_shape[0]``; a TypeError when there is no batch dimension left."""
        if not self._batch_shape:
            raise TypeError("len() of a DictTensor with batch_shape () (a single row).")
        return self._batch_shape[0]

    def n_elems(self) -> int:
        """Alias of ``len(self)``, kept from rlstructures 0.x."""
        return len(self)

    def keys(self) -> KeysView[str]:
        """The keys, in insertion order."""
        return self._data.keys()

    def values(self) -> ValuesView[Any]:
        """The leaves, in key order."""
        return self._data.values()

    def items(self) -> ItemsView[str, Any]:
        """``(key, leaf)`` pairs, in key order."""
        return self._data.items()

    def to_dict(self) -> dict[str, Any]:
        """A new plain dict of the leaves (not copied)."""
        return dict(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[DictTensor]:
        """Iterate over the first batch dimension, like a numpy array (not over keys)."""
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        leaves = ", ".join(
            f"{k!r}: {_dtype_name(v)}{list(v.shape[len(self._batch_shape):])}"
            for k, v in self._data.items()
        )
        return f"DictTensor(batch_shape={self._batch_shape}, backend={self.backend}, {{{leaves}}})"

    # ------------------------------------------------------------------ indexing
    @overload
    def __getitem__(self, index: str) -> Any: ...
    @overload
    def __getitem__(self, index: Index) -> DictTensor: ...

    def __getitem__(self, index: Any) -> Any:
        """``dt["key"]`` returns a leaf; any other index selects rows (returns a DictTensor).

        Row indices follow numpy: an int removes that batch dimension, a slice keeps it
        (as a view), an int array or a bool mask over the batch dimensions copies rows.
        """
        if type(index) is str:
            try:
                return self._data[index]
            except KeyError:
                raise KeyError(_missing_key_msg(index, self._data)) from None
        return self._index(index)

    def _index(self, index: Any) -> DictTensor:
        nb = len(self._batch_shape)
        if type(index) is tuple:
            if len(index) > nb:
                raise IndexError(
                    f"index {index!r} has {len(index)} entries but this DictTensor has only "
                    f"{nb} batch dimension(s) {self._batch_shape}; to index inside a leaf use "
                    "`dt[key][...]`."
                )
            if any(i is None or i is Ellipsis for i in index):
                raise IndexError("DictTensor indices take no `None` or `...`.")
            index = (*index, Ellipsis)
        elif isinstance(index, (int, np.integer)):
            index = (index, Ellipsis)  # keeps 0-d rows arrays, not numpy scalars
        elif index is None or index is Ellipsis or isinstance(index, str):
            raise IndexError(
                f"unsupported DictTensor index {index!r}: use a str key, an int, a slice, an "
                "int or bool array, or a tuple of those over the batch dimensions."
            )
        data = self._data
        if not data:
            shape = np.empty(self._batch_shape, dtype=np.bool_)[_as_numpy_index(index)].shape
            return DictTensor._trusted({}, shape)
        out = {k: v[index] for k, v in data.items()}
        key, first = next(iter(data.items()))
        row = out[key]
        n_batch = row.ndim - (first.ndim - nb)
        return DictTensor._trusted(out, tuple(row.shape[:n_batch]))

    def __setitem__(self, index: Any, value: Any) -> None:
        """``dt["key"] = leaf`` sets a leaf; ``dt[idx] = other`` writes rows in place.

        Raises:
            BatchShapeError: the new leaf does not start with ``batch_shape``.
            KeyMismatchError: ``other`` does not hold exactly the keys of this DictTensor.
        """
        if type(index) is str:
            probe = {index: value}
            _check_leaves(probe, self._batch_shape)
            if self._data:
                other_key = next(iter(self._data))
                _check_leaves({other_key: self._data[other_key], **probe}, self._batch_shape)
            self._data[index] = value
            return
        if not isinstance(value, DictTensor):
            raise TypeError(
                f"`dt[index] = value` needs a DictTensor value, got {type(value).__name__}. "
                'To set a leaf use a str key: `dt["key"] = array`.'
            )
        _same_keys(self, value, "dt[index] = other")
        if self._data and value._data and self.backend != value.backend:
            raise BackendError(
                f"cannot write {value.backend} rows into a {self.backend} DictTensor; "
                f"convert with `other.{self.backend}()`."
            )
        if isinstance(index, tuple):
            index = (*index, Ellipsis)
        elif isinstance(index, (int, np.integer)):
            index = (index, Ellipsis)
        for key, dst in self._data.items():
            try:
                dst[index] = value._data[key]
            except (ValueError, RuntimeError) as exc:
                raise BatchShapeError(
                    f"cannot write key {key!r}: destination rows {dst[index].shape}, value "
                    f"{tuple(value._data[key].shape)} ({exc})"
                ) from None

    # ------------------------------------------------------------------ combining
    @staticmethod
    def cat(seq: Iterable[DictTensor], dim: int = 0) -> DictTensor:
        """Concatenate along an existing batch dimension.

        Args:
            seq: DictTensors with the same keys, row specs and batch shapes except on ``dim``.
            dim: the batch dimension to concatenate along.

        Returns:
            A new DictTensor, ``batch_shape[dim]`` the sum of the parts'.

        Raises:
            ValueError: ``seq`` is empty. KeyMismatchError, SpecMismatchError,
                BatchShapeError: the parts disagree (the message names the key and part).
        """
        parts = _as_parts(seq, "cat")
        first = parts[0]
        nb = len(first._batch_shape)
        if not 0 <= dim < nb:
            raise BatchShapeError(f"cat dim={dim} is out of range for batch_shape {first._batch_shape}.")
        rest = first._batch_shape[:dim] + first._batch_shape[dim + 1 :]
        total = 0
        for i, part in enumerate(parts):
            bs = part._batch_shape
            if len(bs) != nb or bs[:dim] + bs[dim + 1 :] != rest:
                raise BatchShapeError(
                    f"cat along dim {dim}: part {i} has batch_shape {bs}, part 0 has "
                    f"{first._batch_shape}; they may differ only on dim {dim}."
                )
            total += bs[dim]
        shape = first._batch_shape[:dim] + (total,) + first._batch_shape[dim + 1 :]
        return DictTensor._trusted(_combine(parts, dim, "cat"), shape)

    @staticmethod
    def stack(seq: Iterable[DictTensor], dim: int = 0) -> DictTensor:
        """Stack along a new batch dimension inserted at ``dim``.

        Args:
            seq: DictTensors with the same keys, row specs and batch shape.
            dim: where the new batch dimension goes (``0 <= dim <= len(batch_shape)``).

        Returns:
            A new DictTensor of batch shape ``batch_shape[:dim] + (len(seq),) + batch_shape[dim:]``.
        """
        parts = _as_parts(seq, "stack")
        first = parts[0]
        if not 0 <= dim <= len(first._batch_shape):
            raise BatchShapeError(
                f"stack dim={dim} is out of range for batch_shape {first._batch_shape}."
            )
        for i, part in enumerate(parts):
            if part._batch_shape != first._batch_shape:
                raise BatchShapeError(
                    f"stack: part {i} has batch_shape {part._batch_shape}, part 0 has "
                    f"{first._batch_shape}; all parts must have the same batch shape."
                )
        bs = first._batch_shape
        return DictTensor._trusted(
            _combine(parts, dim, "stack"), bs[:dim] + (len(parts),) + bs[dim:]
        )

    def clone(self) -> DictTensor:
        """A deep copy: new arrays, same keys, values, dtypes and backend."""
        if self.backend == "numpy":
            return DictTensor._trusted({k: v.copy() for k, v in self._data.items()}, self._batch_shape)
        return DictTensor._trusted({k: v.clone() for k, v in self._data.items()}, self._batch_shape)

    def where(self, mask: Any, other: DictTensor) -> DictTensor:
        """Row-wise select: rows of ``self`` where ``mask`` is True, of ``other`` elsewhere.

        Args:
            mask: bool array of shape ``batch_shape`` (same backend as the leaves).
            other: a DictTensor with the same keys, specs and batch shape.
        """
        _same_keys(self, other, "where")
        if other._batch_shape != self._batch_shape:
            raise BatchShapeError(
                f"where: other has batch_shape {other._batch_shape}, expected {self._batch_shape}."
            )
        if tuple(mask.shape) != self._batch_shape or str(mask.dtype) not in ("bool", "torch.bool"):
            raise BatchShapeError(
                f"where: mask must be a bool array of shape {self._batch_shape}, got "
                f"{mask.dtype} of shape {tuple(mask.shape)}."
            )
        torch_backend = self.backend == "torch"
        out: dict[str, Any] = {}
        for key, a in self._data.items():
            b = other._data[key]
            _same_spec(key, a, b, len(self._batch_shape), "where")
            m = mask.reshape(tuple(mask.shape) + (1,) * (a.ndim - len(self._batch_shape)))
            out[key] = torch_helpers("where").where(m, a, b) if torch_backend else np.where(m, a, b)
        return DictTensor._trusted(out, self._batch_shape)

    def specs(self) -> dict[str, Spec]:
        """The per-row ``Spec(shape, dtype)`` of every leaf (numpy dtypes for both backends)."""
        nb = len(self._batch_shape)
        if self.backend == "numpy":
            return {k: Spec(v.shape[nb:], v.dtype) for k, v in self._data.items()}
        th = torch_helpers("specs()")
        return {k: Spec(tuple(v.shape[nb:]), th.numpy_dtype(v.dtype, k)) for k, v in self._data.items()}

    @staticmethod
    def zeros(
        specs: Mapping[str, Spec],
        batch_shape: int | Sequence[int],
        backend: Backend = "numpy",
        *,
        device: str | None = None,
    ) -> DictTensor:
        """A DictTensor of zeros with the given per-row specs.

        Args:
            specs: ``{key: Spec(row_shape, dtype)}``, e.g. from ``other.specs()``.
            batch_shape: the batch dimensions (an int or a tuple).
            backend: ``"numpy"`` or ``"torch"``.
            device: torch device for the torch backend (default CPU).

        Example:
            >>> DictTensor.zeros({"x": Spec((2,), "float32")}, 3)["x"].shape
            (3, 2)
        """
        shape = _batch_shape_arg(batch_shape)
        full = {k: (shape + s.shape, s.dtype) for k, s in specs.items()}
        if backend == "numpy":
            return DictTensor._trusted({k: np.zeros(s, d) for k, (s, d) in full.items()}, shape)
        if backend == "torch":
            return DictTensor._trusted(torch_helpers("zeros()").zeros(full, device), shape)
        raise ValueError(f"backend must be 'numpy' or 'torch', got {backend!r}.")

    # ------------------------------------------------------------------ key namespaces
    def prefix(self, prefix: str) -> DictTensor:
        """A DictTensor whose keys are ``prefix + key`` (leaves shared)."""
        return DictTensor._trusted({prefix + k: v for k, v in self._data.items()}, self._batch_shape)

    def select_prefix(self, prefix: str) -> DictTensor:
        """Keep the keys that start with ``prefix``, with the prefix removed (leaves shared).

        Example:
            >>> dt = DictTensor({"a/x": np.zeros(2), "b": np.ones(2)})
            >>> list(dt.select_prefix("a/").keys())
            ['x']
        """
        n = len(prefix)
        return DictTensor._trusted(
            {k[n:]: v for k, v in self._data.items() if k.startswith(prefix)}, self._batch_shape
        )

    def select(self, keys: Iterable[str]) -> DictTensor:
        """Keep only ``keys`` (in the order given). A missing key is a KeyError."""
        if isinstance(keys, str):
            keys = [keys]
        out = {}
        for key in keys:
            if key not in self._data:
                raise KeyError(_missing_key_msg(key, self._data))
            out[key] = self._data[key]
        return DictTensor._trusted(out, self._batch_shape)

    def exclude(self, keys: Iterable[str]) -> DictTensor:
        """Drop ``keys``. A key that is not present is a KeyError (like ``pandas.drop``)."""
        drop = {keys} if isinstance(keys, str) else set(keys)
        for key in drop:
            if key not in self._data:
                raise KeyError(_missing_key_msg(key, self._data))
        return DictTensor._trusted(
            {k: v for k, v in self._data.items() if k not in drop}, self._batch_shape
        )

    def __or__(self, other: DictTensor) -> DictTensor:
        """Merge two DictTensors with the same batch shape and disjoint keys."""
        if not isinstance(other, DictTensor):
            return NotImplemented
        common = self._data.keys() & other._data.keys()
        if common:
            raise KeyMismatchError(
                f"cannot merge: keys {sorted(common)} are in both DictTensors. Rename one side "
                "first, e.g. `a | b.prefix('b/')`."
            )
        if other._batch_shape != self._batch_shape:
            raise BatchShapeError(
                f"cannot merge batch_shape {self._batch_shape} with {other._batch_shape}."
            )
        if self._data and other._data and self.backend != other.backend:
            raise BackendError(
                f"cannot merge a {self.backend} DictTensor with a {other.backend} one; convert "
                "one side with `.numpy()` or `.torch()`."
            )
        return DictTensor._trusted({**self._data, **other._data}, self._batch_shape)

    # ------------------------------------------------------------------ backends
    def torch(self) -> DictTensor:
        """torch leaves sharing memory with the numpy leaves (``torch.from_numpy``; zero-copy).

        A DictTensor that is already torch is returned as a new shallow container.
        """
        if self.backend == "torch":
            return DictTensor._trusted(dict(self._data), self._batch_shape)
        th = torch_helpers("DictTensor.torch()")
        return DictTensor._trusted(th.from_numpy(self._data), self._batch_shape)

    def numpy(self) -> DictTensor:
        """numpy leaves: zero-copy views of CPU tensors (detached), a copy of CUDA tensors."""
        if self.backend == "numpy":
            return DictTensor._trusted(dict(self._data), self._batch_shape)
        th = torch_helpers("DictTensor.numpy()")
        return DictTensor._trusted(th.to_numpy(self._data), self._batch_shape)

    def to(self, device: str | torch.device, non_blocking: bool = False) -> DictTensor:
        """torch leaves on ``device`` (numpy leaves are first viewed as torch, zero-copy)."""
        src = self.torch()
        th = torch_helpers("DictTensor.to()")
        return DictTensor._trusted(th.to_device(src._data, device, non_blocking), self._batch_shape)

    def pin_memory(self) -> DictTensor:
        """torch leaves in page-locked memory; unchanged torch views when CUDA is absent."""
        src = self.torch()
        th = torch_helpers("DictTensor.pin_memory()")
        return DictTensor._trusted(th.pin_memory(src._data), self._batch_shape)

    # ------------------------------------------------------------------ comparison, Arrow
    def equal(self, other: object) -> bool:
        """True when ``other`` is a DictTensor with the same batch shape, backend, keys,
        shapes, dtypes and values (NaN equals NaN)."""
        if not isinstance(other, DictTensor) or other._batch_shape != self._batch_shape:
            return False
        if self._data.keys() != other._data.keys() or (
            self._data and self.backend != other.backend
        ):
            return False
        if self.backend == "torch":
            th = torch_helpers("equal()")
            return all(th.tensor_equal(v, other._data[k]) for k, v in self._data.items())
        for key, a in self._data.items():
            b = other._data[key]
            if a.shape != b.shape or a.dtype != b.dtype:
                return False
            nan_ok = a.dtype.kind in "fc"
            if not np.array_equal(a, b, equal_nan=nan_ok):
                return False
        return True

    def to_arrow(self) -> pa.RecordBatch:
        """One Arrow row per batch element (batch dims flattened, row-major).

        A leaf of row shape ``()`` becomes a primitive column, ``(d,)`` a fixed-size list
        column and 2+ dims a ``fixed_shape_tensor`` column. Numeric columns share memory with
        the leaves (bool is bit-packed by Arrow and copied). Needs the ``arrow`` extra.
        """
        from rlstructures.dicttensor._arrow import dict_tensor_to_arrow

        return dict_tensor_to_arrow(self)

    @staticmethod
    def from_arrow(batch: pa.RecordBatch | pa.Table) -> DictTensor:
        """Read back what ``to_arrow`` wrote (zero-copy for numeric columns where Arrow allows)."""
        from rlstructures.dicttensor._arrow import dict_tensor_from_arrow

        return dict_tensor_from_arrow(batch)


# ---------------------------------------------------------------------- helpers
def _dtype_name(value: Any) -> str:
    return str(value.dtype).replace("torch.", "")


def _missing_key_msg(key: str, data: Mapping[str, Any]) -> str:
    return f"no key {key!r} in this DictTensor; its keys are {sorted(data)}."


def _as_numpy_index(index: Any) -> Any:
    if isinstance(index, tuple):
        return tuple(_as_numpy_index(i) for i in index)
    if is_tensor(index):
        return index.cpu().numpy()
    return index


def _same_keys(a: DictTensor, b: DictTensor, op: str) -> None:
    if a._data.keys() != b._data.keys():
        missing = sorted(a._data.keys() - b._data.keys())
        extra = sorted(b._data.keys() - a._data.keys())
        raise KeyMismatchError(
            f"{op}: the DictTensors hold different keys (missing from the other: {missing}; "
            f"extra in the other: {extra}). Use `.select(...)` or `.exclude(...)` to align them."
        )


def _same_spec(key: str, a: Any, b: Any, nb: int, op: str) -> None:
    if a.dtype != b.dtype or tuple(a.shape[nb:]) != tuple(b.shape[nb:]):
        raise SpecMismatchError(
            f"{op}: key {key!r} is {_dtype_name(a)}{list(a.shape[nb:])} on one side and "
            f"{_dtype_name(b)}{list(b.shape[nb:])} on the other; rows must share shape and "
            "dtype. Cast one side first."
        )


def _as_parts(seq: Iterable[DictTensor], op: str) -> list[DictTensor]:
    parts = list(seq)
    if not parts:
        raise ValueError(f"DictTensor.{op} needs at least one DictTensor, got an empty sequence.")
    first = parts[0]
    keys = first._data.keys() if isinstance(first, DictTensor) else None
    for i, part in enumerate(parts):
        if not isinstance(part, DictTensor):
            raise TypeError(f"DictTensor.{op}: item {i} is a {type(part).__name__}, not a DictTensor.")
        if part._data.keys() != keys:
            _same_keys(first, part, f"DictTensor.{op} (part 0 vs part {i})")
    return parts


def _combine(parts: list[DictTensor], dim: int, op: str) -> dict[str, Any]:
    """Concatenate (``op="cat"``) or stack every key of ``parts``; validates specs."""
    first = parts[0]
    if not first._data:
        return {}
    backend = first.backend
    for i, part in enumerate(parts):
        if part.backend != backend:
            raise BackendError(
                f"DictTensor.{op}: part {i} is {part.backend}, part 0 is {backend}; convert "
                "with `.numpy()` or `.torch()` first."
            )
    out: dict[str, Any] = {}
    nb = len(first._batch_shape)
    if backend == "numpy":
        fn = np.concatenate if op == "cat" else np.stack
        for key, v0 in first._data.items():
            arrays = [p._data[key] for p in parts]
            try:
                out[key] = fn(arrays, axis=dim, dtype=v0.dtype, casting="no")
            except (TypeError, ValueError):
                _raise_spec_mismatch(key, arrays, nb, op)
        return out
    th = torch_helpers(f"DictTensor.{op}()")
    tfn = th.cat if op == "cat" else th.stack
    for key, v0 in first._data.items():
        arrays = [p._data[key] for p in parts]
        for a in arrays:
            if a.dtype != v0.dtype or a.shape[nb:] != v0.shape[nb:]:
                _raise_spec_mismatch(key, arrays, nb, op)
        out[key] = tfn(arrays, dim)
    return out


def _raise_spec_mismatch(key: str, arrays: list[Any], nb: int, op: str) -> None:
    specs = [f"{_dtype_name(a)}{list(a.shape[nb:])}" for a in arrays]
    raise SpecMismatchError(
        f"DictTensor.{op}: key {key!r} has different row specs across parts: {specs}. All parts "
        "must share per-row shape and dtype; cast them first (e.g. `x.astype(np.float32)`)."
    )

