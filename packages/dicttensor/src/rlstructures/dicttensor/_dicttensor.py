"""`DictTensor`: a dict of arrays that share leading batch dimensions."""

from __future__ import annotations

from collections.abc import ItemsView, Iterable, Iterator, KeysView, Mapping, Sequence, ValuesView
from typing import TYPE_CHECKING, Any, Literal, NoReturn, SupportsIndex, TypeAlias, overload

import numpy as np
import numpy.typing as npt

from rlstructures.dicttensor import _arrow, _backend, _combine
from rlstructures.dicttensor._backend import Backend, require_torch
from rlstructures.dicttensor._checks import (
    batch_positions,
    batch_shape_arg,
    check_leaves,
    dim_arg,
    hot_batch_shape,
    index_error,
    leaf_backend,
    missing_key_msg,
    row_key,
    spec_str,
    torch_needs_gather,
)
from rlstructures.dicttensor._renamed import ADD_MESSAGE, DICT_TENSOR, RemovedAttribute
from rlstructures.dicttensor._spec import Spec
from rlstructures.dicttensor.errors import (
    BackendError,
    BatchIndexError,
    BatchShapeError,
    KeyMismatchError,
)

if TYPE_CHECKING:
    import pyarrow as pa
    import torch as _torch

__all__ = ["DictTensor", "Index"]

#: What selects rows: an int, a slice, an int or bool array (numpy or torch) or list, or a
#: tuple of those over the batch dimensions.
Index: TypeAlias = (
    "int | np.integer[Any] | slice | npt.NDArray[Any] | _torch.Tensor | list[Any] | range"
    " | tuple[Any, ...]"
)
_LEAF_ERRORS = (IndexError, TypeError, ValueError, RuntimeError)


class DictTensor:
    """A dict of arrays sharing leading batch dimensions (``batch_shape``).

    Leaves are all numpy arrays or all torch tensors (``backend``); each leaf has shape
    ``[*batch_shape, *row_shape]``. Indexing with a str returns a leaf; any other index
    selects rows of every leaf at once, with numpy semantics (slices are views, int arrays
    and bool masks copy; an int removes that batch dimension). The container is mutable:
    ``dt["k"] = array`` adds or replaces a leaf and ``dt[idx] = other`` writes rows in place.
    Iterating yields rows (like a numpy array), not keys: use ``keys()`` for keys.

    Args:
        data: a mapping from str keys to arrays or tensors (the mapping is copied, the
            arrays are not), or a DictTensor (its batch shape is kept).
        batch_shape: the leading dimensions shared by all leaves, an int or a tuple.
            Defaults to the first leaf's ``shape[:1]``, or ``(0,)`` when ``data`` is empty.

    Raises:
        BatchShapeError: a leaf does not start with ``batch_shape``.
        BackendError: a leaf is not an array, or numpy and torch leaves are mixed.
        TypeError: a key is not a str, ``data`` is not a mapping.

    Example:
        >>> import numpy as np
        >>> dt = DictTensor({"obs": np.zeros((3, 4), np.float32), "action": np.arange(3)})
        >>> dt.batch_shape, len(dt), dt["obs"].shape
        ((3,), 3, (3, 4))
        >>> dt[1:]["action"]
        array([1, 2])
        >>> dt[0]
        DictTensor(batch_shape=(), backend=numpy, {'obs': float32[4], 'action': int64[]})
    """

    __slots__ = ("_batch_shape", "_data")

    _data: dict[str, Any]
    _batch_shape: tuple[int, ...]

    def __init__(
        self,
        data: Mapping[str, Any] | DictTensor | None = None,
        *,
        batch_shape: SupportsIndex | Sequence[SupportsIndex] | None = None,
    ) -> None:
        if type(data) is DictTensor and batch_shape is None:  # a shallow copy: no checks
            self._data = dict(data._data)
            self._batch_shape = data._batch_shape
            return
        if type(data) is dict:
            items: dict[str, Any] = dict(data)
            hot = hot_batch_shape(items, batch_shape)  # numpy or torch leaves, one batch dim
            if hot is not None:
                self._data = items
                self._batch_shape = hot
                return
        elif data is None:
            items = {}
        elif isinstance(data, DictTensor):
            items = dict(data._data)
            same = batch_shape is None or (
                type(batch_shape) is tuple
                and all(type(d) is int for d in batch_shape)
                and batch_shape == data._batch_shape
            )
            if same:  # a shallow copy of a DictTensor: its leaves are already validated
                self._data = items
                self._batch_shape = data._batch_shape
                return
        elif isinstance(data, Mapping):
            items = dict(data)
        else:
            raise TypeError(
                f"DictTensor(data) takes a mapping from str keys to arrays, got "
                f"{type(data).__name__}. Example: `DictTensor({{'obs': np.zeros((8, 4))}})`."
            )
        if batch_shape is None:
            if items:
                key, first = next(iter(items.items()))
                leaf_backend(key, first)
                if first.ndim == 0:
                    raise BatchShapeError(
                        f"key {key!r} is 0-dimensional, so it has no batch dimension. Give "
                        "every leaf a leading batch dimension (e.g. `x[None]`), or pass "
                        "`batch_shape=()` for a single row."
                    )
                shape: tuple[int, ...] = (int(first.shape[0]),)
            else:
                shape = (0,)
        else:
            shape = batch_shape_arg(batch_shape)
        check_leaves(items, shape)
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
        """``"numpy"`` or ``"torch"`` (a DictTensor without keys is ``"numpy"``)."""
        for value in self._data.values():
            return "numpy" if isinstance(value, np.ndarray) else "torch"
        return "numpy"

    def __len__(self) -> int:
        """``batch_shape[0]``; a TypeError when there is no batch dimension left."""
        if not self._batch_shape:
            raise TypeError(
                "len() of a DictTensor with batch_shape () (a single row, e.g. from `dt[i]`): "
                "it has no batch dimension to count or iterate. Keep one with `dt[i : i + 1]` "
                "or `dt[[i]]`."
            )
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
        """A new plain dict of the leaves (the arrays are not copied)."""
        return dict(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[DictTensor]:
        """Iterate over the first batch dimension, like a numpy array (not over keys)."""
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        nb = len(self._batch_shape)
        leaves = ", ".join(f"{k!r}: {spec_str(v, nb)}" for k, v in self._data.items())
        return f"DictTensor(batch_shape={self._batch_shape}, backend={self.backend}, {{{leaves}}})"

    # ------------------------------------------------------------------ indexing
    @overload
    def __getitem__(self, index: str) -> Any: ...
    @overload
    def __getitem__(self, index: Index) -> DictTensor: ...

    def __getitem__(self, index: Any) -> Any:
        """``dt["key"]`` returns a leaf; any other index selects rows (a DictTensor).

        Row indices follow numpy: an int removes that batch dimension, a slice keeps it
        (as a view), an int array or a bool mask over the batch dimensions copies rows.

        Raises:
            KeyError: a str key that is not present (the message lists the keys).
            BatchIndexError: the row index is out of range or not a row index.
        """
        if type(index) is str:
            try:
                return self._data[index]
            except KeyError:
                raise KeyError(missing_key_msg(index, self._data)) from None
        return self._index(index)

    def _index(self, index: Any) -> DictTensor:
        shape = self._batch_shape
        kind = type(index)
        if kind is int and shape:
            key: Any = (index, Ellipsis)
        elif kind is slice and shape:
            key = index
        elif (
            kind is np.ndarray
            and index.ndim == 1
            and index.dtype.kind in "bi"
            and shape
            and self.backend == "numpy"
            and self._data
        ):
            return self._take(index)
        else:
            key = row_key(index, shape, self.backend == "numpy")
        data = self._data
        try:
            if not data:
                return DictTensor._trusted({}, np.empty(shape, dtype=np.bool_)[key].shape)
            if kind is not int and type(next(iter(data.values()))) is not np.ndarray:
                if self.backend == "torch" and torch_needs_gather(key):
                    return self._gather(index)
            out = {k: v[key] for k, v in data.items()}
        except _LEAF_ERRORS as exc:
            raise index_error(index, shape, exc) from None
        k, first = next(iter(data.items()))  # batch dims = what the index left of them
        row = out[k]
        n_batch = row.ndim - first.ndim + len(shape)
        return DictTensor._trusted(out, tuple(row.shape[:n_batch]))

    def _gather(self, index: Any) -> DictTensor:
        """Torch rows that torch cannot index like numpy: gather them by position (a copy)."""
        shape = self._batch_shape
        positions = batch_positions(index, shape)
        require_torch("DictTensor indexing")
        gather = _backend.th.gather_rows
        out = {k: gather(v, positions, len(shape)) for k, v in self._data.items()}
        return DictTensor._trusted(out, positions.shape)

    def _take(self, index: npt.NDArray[Any]) -> DictTensor:
        """Rows of numpy leaves at a 1-D int array or bool mask (``take`` is the fast path)."""
        shape = self._batch_shape
        if index.dtype.kind == "b":
            if index.shape[0] != shape[0]:
                raise BatchIndexError(
                    f"a bool mask of shape {index.shape} does not fit the batch shape {shape}: "
                    "a mask over the first batch dim needs one entry per row."
                )
            index = np.flatnonzero(index)
        try:
            out = {k: v.take(index, axis=0) for k, v in self._data.items()}
        except _LEAF_ERRORS as exc:
            raise index_error(index, shape, exc) from None
        return DictTensor._trusted(out, (index.shape[0], *shape[1:]))

    def __setitem__(self, index: Any, value: Any) -> None:
        """``dt["key"] = leaf`` sets a leaf; ``dt[idx] = other`` writes rows in place.

        Row writes follow numpy assignment (``other`` may broadcast over the selected rows)
        but row shapes must match and dtypes may only be cast within their kind (numpy's
        ``same_kind``: float64 into float32 is fine, float into int is an error).

        Raises:
            BatchShapeError: the new leaf does not start with ``batch_shape``, or ``other``
                does not fit the selected rows.
            BackendError: the new leaf or ``other`` has the other backend.
            KeyMismatchError: ``other`` does not hold exactly the keys of this DictTensor.
            SpecMismatchError: a row shape differs, or a dtype cannot be cast.
            ValueError: a leaf is read-only (e.g. a view of Arrow memory).
        """
        if type(index) is str:
            self._set_leaf(index, value)
            return
        if not isinstance(value, DictTensor):
            raise TypeError(
                f"`dt[index] = value` needs a DictTensor value, got {type(value).__name__}. "
                'To set a leaf use a str key: `dt["key"] = array`.'
            )
        _combine.write_rows(self._data, self._batch_shape, index, value._data, value._batch_shape)

    def _set_leaf(self, key: str, value: Any) -> None:
        kind = check_leaves({key: value}, self._batch_shape)
        for other_key, other in self._data.items():
            if other_key == key:
                continue  # replacing the only leaf may change the backend
            if leaf_backend(other_key, other) != kind:
                raise BackendError(
                    f"key {key!r} is a {kind} leaf but this DictTensor holds "
                    f"{self.backend} leaves (e.g. {other_key!r}); convert it first "
                    "(`torch.from_numpy(x)` or `t.numpy()`)."
                )
            break
        self._data[key] = value

    # ------------------------------------------------------------------ combining
    @staticmethod
    def cat(seq: Iterable[DictTensor], dim: int = 0) -> DictTensor:
        """Concatenate along an existing batch dimension.

        Args:
            seq: DictTensors with the same keys, row specs and batch shapes except on ``dim``.
            dim: the batch dimension to concatenate along (negative counts from the last).

        Returns:
            A new DictTensor (copied leaves), ``batch_shape[dim]`` the sum of the parts'.

        Raises:
            ValueError: ``seq`` is empty. KeyMismatchError, SpecMismatchError,
                BatchShapeError, BackendError: the parts disagree (the message names the key
                and the parts).

        Example:
            >>> a = DictTensor({"x": np.zeros(2)})
            >>> DictTensor.cat([a, a[:1]]).batch_shape
            (3,)
        """
        parts = _parts(seq, "cat")
        shape0 = parts[0]._batch_shape
        nb = len(shape0)
        if nb == 0:
            raise BatchShapeError(
                "DictTensor.cat: the parts have batch_shape () (single rows), so there is no "
                "dimension to concatenate along; use `DictTensor.stack(parts)` instead."
            )
        d = dim if type(dim) is int and 0 <= dim < nb else dim_arg(dim, nb, "DictTensor.cat")
        datas, total = _fitting_leaves(parts, "cat", d)
        data = _combine.combine(datas, nb, d, "cat") if datas[0] else {}
        return DictTensor._trusted(data, (*shape0[:d], total, *shape0[d + 1 :]))

    @staticmethod
    def stack(seq: Iterable[DictTensor], dim: int = 0) -> DictTensor:
        """Stack along a new batch dimension inserted at ``dim``.

        Args:
            seq: DictTensors with the same keys, row specs and batch shape.
            dim: where the new batch dimension goes, in ``[-len(batch_shape)-1,
                len(batch_shape)]``.

        Returns:
            A new DictTensor of batch shape ``batch_shape[:dim] + (len(seq),) +
            batch_shape[dim:]``.

        Example:
            >>> a = DictTensor({"x": np.zeros((2, 3))})
            >>> DictTensor.stack([a, a, a, a]).batch_shape
            (4, 2)
        """
        parts = _parts(seq, "stack")
        shape0 = parts[0]._batch_shape
        nb = len(shape0)
        d = dim if type(dim) is int and 0 <= dim <= nb else dim_arg(dim, nb + 1, "DictTensor.stack")
        datas, _ = _fitting_leaves(parts, "stack", None)
        data = _combine.combine(datas, nb, d, "stack") if datas[0] else {}
        return DictTensor._trusted(data, (*shape0[:d], len(parts), *shape0[d:]))

    def clone(self) -> DictTensor:
        """A deep copy: new (writable, contiguous) arrays; same keys, values and dtypes."""
        data, shape = self._data, self._batch_shape
        for first in data.values():
            if type(first) is np.ndarray or isinstance(first, np.ndarray):
                return DictTensor._trusted({k: v.copy() for k, v in data.items()}, shape)
            return DictTensor._trusted({k: v.clone() for k, v in data.items()}, shape)
        return DictTensor._trusted({}, shape)

    def where(self, mask: Any, other: DictTensor) -> DictTensor:
        """Row-wise select: rows of ``self`` where ``mask`` is True, of ``other`` elsewhere.

        Args:
            mask: bool array (or list) of shape ``batch_shape``.
            other: a DictTensor with the same keys, row specs, batch shape and backend.

        Example:
            >>> a, b = DictTensor({"x": np.zeros(3)}), DictTensor({"x": np.ones(3)})
            >>> a.where(np.array([True, False, True]), b)["x"]
            array([0., 1., 0.])
        """
        given: object = other
        if not isinstance(given, DictTensor):
            raise TypeError(f"where: other must be a DictTensor, got {type(given).__name__}.")
        shape = self._batch_shape
        data = _combine.where(self._data, shape, mask, given._data, given._batch_shape)
        return DictTensor._trusted(data, shape)

    def specs(self) -> dict[str, Spec]:
        """The per-row ``Spec(shape, dtype)`` of every leaf (numpy dtypes for both backends).

        Example:
            >>> DictTensor({"obs": np.zeros((5, 4), np.float32)}).specs()
            {'obs': Spec(shape=(4,), dtype=dtype('float32'))}
        """
        nb = len(self._batch_shape)
        if self.backend == "numpy":
            return {k: Spec(v.shape[nb:], v.dtype) for k, v in self._data.items()}
        require_torch("DictTensor.specs()")
        dtype = _backend.th.numpy_dtype
        return {k: Spec(tuple(v.shape[nb:]), dtype(v.dtype, k)) for k, v in self._data.items()}

    @staticmethod
    def zeros(
        specs: Mapping[str, Spec],
        batch_shape: SupportsIndex | Sequence[SupportsIndex],
        backend: Backend = "numpy",
        *,
        device: str | _torch.device | None = None,
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
        shape = batch_shape_arg(batch_shape)
        if not isinstance(specs, Mapping):
            raise TypeError(
                f"zeros: specs must be a mapping {{key: Spec}}, got {type(specs).__name__}."
            )
        for key, spec in specs.items():
            if not isinstance(spec, Spec):
                raise TypeError(
                    f"zeros: specs[{key!r}] is a {type(spec).__name__}, not a Spec; write "
                    f"`Spec(shape, dtype)`, e.g. `Spec((4,), 'float32')`."
                )
        full = {k: ((*shape, *s.shape), s.dtype) for k, s in specs.items()}
        if backend == "numpy":
            if device is not None:
                raise ValueError(
                    f"zeros: device={device!r} needs backend='torch' (numpy arrays live on "
                    "the CPU)."
                )
            return DictTensor._trusted({k: np.zeros(s, d) for k, (s, d) in full.items()}, shape)
        if backend == "torch":
            require_torch("DictTensor.zeros()")
            return DictTensor._trusted(_backend.th.zeros(full, device), shape)
        raise ValueError(f"zeros: backend must be 'numpy' or 'torch', got {backend!r}.")

    # ------------------------------------------------------------------ key namespaces
    def prefix(self, prefix: str) -> DictTensor:
        """A DictTensor whose keys are ``prefix + key`` (leaves shared).

        Example:
            >>> list(DictTensor({"x": np.zeros(2)}).prefix("obs/").keys())
            ['obs/x']
        """
        _check_prefix(prefix)
        data = {prefix + k: v for k, v in self._data.items()}
        return DictTensor._trusted(data, self._batch_shape)

    def select_prefix(self, prefix: str) -> DictTensor:
        """Keep the keys that start with ``prefix``, with the prefix removed (leaves shared).

        Example:
            >>> dt = DictTensor({"a/x": np.zeros(2), "b": np.ones(2)})
            >>> list(dt.select_prefix("a/").keys())
            ['x']
        """
        _check_prefix(prefix)
        n = len(prefix)
        return DictTensor._trusted(
            {k[n:]: v for k, v in self._data.items() if k.startswith(prefix)}, self._batch_shape
        )

    def select(self, keys: Iterable[str]) -> DictTensor:
        """Keep only ``keys`` (in the order given; a single str is one key).

        Raises:
            KeyError: a key is not present.
        """
        if isinstance(keys, str):
            keys = [keys]
        out = {}
        for key in keys:
            if key not in self._data:
                raise KeyError(missing_key_msg(key, self._data))
            out[key] = self._data[key]
        return DictTensor._trusted(out, self._batch_shape)

    def exclude(self, keys: Iterable[str]) -> DictTensor:
        """Drop ``keys`` (a single str is one key).

        Raises:
            KeyError: a key is not present (like ``pandas.DataFrame.drop``).
        """
        drop = {keys} if isinstance(keys, str) else set(keys)
        for key in drop:
            if key not in self._data:
                raise KeyError(missing_key_msg(key, self._data))
        return DictTensor._trusted(
            {k: v for k, v in self._data.items() if k not in drop}, self._batch_shape
        )

    def __or__(self, other: DictTensor) -> DictTensor:
        """Merge two DictTensors with the same batch shape and disjoint keys.

        Example:
            >>> merged = DictTensor({"a": np.zeros(2)}) | DictTensor({"b": np.ones(2)})
            >>> sorted(merged.keys())
            ['a', 'b']
        """
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
                f"cannot merge batch_shape {self._batch_shape} with {other._batch_shape}; "
                "both sides need the same batch shape."
            )
        if self._data and other._data and self.backend != other.backend:
            raise BackendError(
                f"cannot merge a {self.backend} DictTensor with a {other.backend} one; convert "
                "one side with `.numpy()` or `.torch()`."
            )
        return DictTensor._trusted({**self._data, **other._data}, self._batch_shape)

    # ------------------------------------------------------------------ backends
    def torch(self) -> DictTensor:
        """Torch leaves sharing memory with the numpy leaves (``torch.from_numpy``; zero-copy).

        Arrays with negative strides are copied (torch has none); read-only arrays give
        tensors that must not be written. A torch DictTensor is returned as a new container
        with the same tensors. Needs the ``torch`` extra.
        """
        for first in self._data.values():
            if type(first) is np.ndarray or isinstance(first, np.ndarray):
                require_torch("DictTensor.torch()")
                return DictTensor._trusted(_backend.th.from_numpy(self._data), self._batch_shape)
            break
        return DictTensor._trusted(dict(self._data), self._batch_shape)

    def numpy(self) -> DictTensor:
        """Numpy leaves: zero-copy views of CPU tensors (detached), a copy of CUDA tensors."""
        if self.backend == "numpy":
            return DictTensor._trusted(dict(self._data), self._batch_shape)
        require_torch("DictTensor.numpy()")
        return DictTensor._trusted(_backend.th.to_numpy(self._data), self._batch_shape)

    def to(self, device: str | _torch.device, non_blocking: bool = False) -> DictTensor:
        """Torch leaves on ``device`` (numpy leaves are first viewed as torch, zero-copy).

        Leaves already on ``device`` are not copied. Needs the ``torch`` extra.
        """
        src = self.torch()
        require_torch("DictTensor.to()")
        data = _backend.th.to_device(src._data, device, non_blocking)
        return DictTensor._trusted(data, self._batch_shape)

    def pin_memory(self) -> DictTensor:
        """Torch leaves in page-locked memory, for fast non-blocking copies to CUDA.

        Without a CUDA device (e.g. a CPU-only torch build) pinning is impossible and the
        result holds the zero-copy torch views of ``torch()``. Needs the ``torch`` extra.
        """
        src = self.torch()
        require_torch("DictTensor.pin_memory()")
        return DictTensor._trusted(_backend.th.pin_memory(src._data), self._batch_shape)

    # ------------------------------------------------------------------ comparison, Arrow
    def equal(self, other: object) -> bool:
        """Same batch shape, backend, keys, shapes, dtypes and values (NaN equals NaN).

        Example:
            >>> a = DictTensor({"x": np.array([1.0, np.nan])})
            >>> a.equal(a.clone()), a.equal(DictTensor({"x": np.array([1.0, 2.0])}))
            (True, False)
        """
        if not isinstance(other, DictTensor) or other._batch_shape != self._batch_shape:
            return False
        if self._data.keys() != other._data.keys() or (
            self._data and self.backend != other.backend
        ):
            return False
        if self.backend == "torch":
            require_torch("DictTensor.equal()")
            same = _backend.th.tensor_equal
            return all(same(v, other._data[k]) for k, v in self._data.items())
        for key, a in self._data.items():
            b = other._data[key]
            if a.shape != b.shape or a.dtype != b.dtype:
                return False
            if not np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"):
                return False
        return True

    def to_arrow(self) -> pa.RecordBatch:
        """One Arrow row per batch element (batch dims flattened, row-major).

        A leaf of row shape ``()`` becomes a primitive column, ``(d,)`` a fixed-size list
        column and 2+ dims a ``fixed_shape_tensor`` column; the batch shape goes to the
        schema metadata. Numeric columns share memory with contiguous leaves (bool is
        bit-packed by Arrow, so copied). Torch leaves are read through ``numpy()``. Needs
        the ``arrow`` extra.
        """
        src = self if self.backend == "numpy" else self.numpy()
        return _arrow.dict_to_arrow(src._data, src._batch_shape)

    @staticmethod
    def from_arrow(batch: pa.RecordBatch | pa.Table) -> DictTensor:
        """Read back what ``to_arrow`` wrote, or any table of numeric (list) columns.

        Numeric leaves are read-only zero-copy views of the Arrow memory (``clone()`` to
        write); bool columns are unpacked (copied). Without metadata the batch shape is
        ``(num_rows,)``. Needs the ``arrow`` extra.
        """
        return DictTensor._trusted(*_arrow.dict_from_arrow(batch))


    if not TYPE_CHECKING:  # hidden from the type checker: `a + b` stays a type error there

        def __add__(self, other: object) -> NoReturn:
            """RLStructures 0.2's merge: an error naming ``|``."""
            raise TypeError(ADD_MESSAGE)


RemovedAttribute.install(DictTensor, DICT_TENSOR)  # 0.2 names, each naming its replacement


# ---------------------------------------------------------------------- helpers
def _parts(seq: Iterable[DictTensor], op: str) -> list[Any]:
    """The parts of ``cat``/``stack`` as a non-empty list whose first item is a DictTensor.

    Typed ``list[Any]``: the other items are checked by ``_fitting_leaves``.
    """
    if type(seq) is list:
        parts: list[Any] = seq
    else:
        given: object = seq
        if isinstance(given, DictTensor) or not isinstance(given, Iterable):
            raise TypeError(
                f"DictTensor.{op} takes a sequence of DictTensors, got a "
                f"{type(given).__name__}; write `DictTensor.{op}([a, b])`."
            )
        parts = list(given)
    if not parts:
        raise ValueError(f"DictTensor.{op} needs at least one DictTensor, got an empty sequence.")
    if not isinstance(parts[0], DictTensor):
        raise TypeError(
            f"DictTensor.{op}: item 0 is a {type(parts[0]).__name__}, not a DictTensor."
        )
    return parts


def _fitting_leaves(
    parts: list[Any], op: Literal["cat", "stack"], cat_dim: int | None
) -> tuple[list[dict[str, Any]], int]:
    """The leaves of every part, checked to fit part 0, and the total size on ``cat_dim``.

    One pass over the parts checks what numpy does not: each is a DictTensor with as many
    keys and the leaf type of part 0, and a batch shape that may differ from part 0's only
    on ``cat_dim`` (for stack, not at all). Dtypes and row shapes are numpy's to check.
    """
    first = parts[0]
    keys, shape0 = first._data, first._batch_shape
    nkeys, nb = len(keys), len(shape0)
    k0 = next(iter(keys), "")
    leaf_type = type(keys.get(k0))
    datas = []
    total = 0
    for part in parts:
        if type(part) is not DictTensor and not isinstance(part, DictTensor):
            break
        data, bs = part._data, part._batch_shape
        if len(data) != nkeys or type(data.get(k0)) is not leaf_type:
            break
        if cat_dim is None:
            if bs != shape0:
                break
        elif len(bs) != nb or (nb > 1 and (bs[:cat_dim], bs[cat_dim + 1 :]) != (
            shape0[:cat_dim], shape0[cat_dim + 1 :]
        )):
            break
        else:
            total += bs[cat_dim]
        datas.append(data)
    else:
        return datas, total
    for i, part in enumerate(parts):  # the error path: say which part and why
        if not isinstance(part, DictTensor):
            raise TypeError(
                f"DictTensor.{op}: item {i} is a {type(part).__name__}, not a DictTensor."
            )
    _combine.raise_part([p._data for p in parts], [p._batch_shape for p in parts], op, cat_dim)


def _check_prefix(prefix: object) -> None:
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a str, got {prefix!r} ({type(prefix).__name__}).")

