"""Arrow conversion of DictTensor and TemporalDictTensor (the ``arrow`` extra).

Column encoding, by per-row shape of a leaf:

* ``()``: a primitive column (``int64``, ``float32``, ``bool``, ...);
* ``(d,)``: ``fixed_size_list<d>`` of the primitive type;
* two or more dims: the ``arrow.fixed_shape_tensor`` extension type, whose storage is a
  flat ``fixed_size_list<prod(shape)>`` (what a reader without the extension sees).

Numeric columns share memory with contiguous numpy leaves in both directions; bool is
bit-packed by Arrow, so it is copied. Arrays read back are read-only views of Arrow memory.
The schema metadata key ``b"rlstructures"`` holds a JSON object: ``{"format": 1, "kind":
"DictTensor", "batch_shape": [...]}`` or ``{"format": 1, "kind": "TemporalDictTensor",
"B": B, "T": T}``.

Functions here take and return numpy leaves and batch shapes (and lengths); the classes
convert torch leaves first and wrap what is read back, so this module knows neither class.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any, Final, TypeAlias

import numpy as np
import numpy.typing as npt

from rlstructures.dicttensor.errors import (
    KeyMismatchError,
    MissingDependencyError,
    SpecMismatchError,
)

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "METADATA_KEY",
    "decode_column",
    "dict_from_arrow",
    "dict_to_arrow",
    "encode_column",
    "temporal_from_arrow",
    "temporal_to_arrow",
]

Leaves: TypeAlias = dict[str, npt.NDArray[Any]]

#: Schema metadata key holding a JSON object written by this module.
METADATA_KEY: Final = b"rlstructures"
FORMAT_VERSION: Final = 1
INDEX_COLUMNS: Final = ("trajectory", "t")
_KINDS: Final = "biuf"  # bool, signed, unsigned, float: the dtypes Arrow stores natively
_CACHE_SIZE: Final = 256
_types: dict[Any, Any] = {}  # numpy dtype / (dtype, row shape) -> Arrow type
_metadata: dict[Any, dict[bytes, bytes]] = {}  # batch shape -> encoded schema metadata
_parsed: dict[bytes, dict[str, Any]] = {}  # encoded metadata -> parsed JSON
_PYARROW: list[Any] = []


def _pa() -> Any:
    """The pyarrow module (imported once); a MissingDependencyError naming the extra."""
    if _PYARROW:
        return _PYARROW[0]
    try:
        import pyarrow
    except ImportError as exc:
        raise MissingDependencyError(
            "Arrow conversion needs pyarrow, which is not installed. Install it with: "
            "pip install 'rlstructures-dicttensor[arrow]'"
        ) from exc
    _PYARROW.append(pyarrow)
    return pyarrow


def _cached(cache: dict[Any, Any], key: Any, value: Any) -> Any:
    if len(cache) >= _CACHE_SIZE:
        cache.clear()
    cache[key] = value
    return value


# ---------------------------------------------------------------------- encode
def _arrow_type(pa: Any, dtype: np.dtype[Any], row_shape: tuple[int, ...]) -> Any:
    """The Arrow type of a column of rows of ``row_shape`` and native ``dtype`` (cached)."""
    key = (dtype.num, row_shape)
    found = _types.get(key)
    if found is not None:
        return found
    value = pa.from_numpy_dtype(dtype)
    if len(row_shape) == 1:
        value = pa.list_(value, row_shape[0])
    elif row_shape:
        value = pa.fixed_shape_tensor(value, list(row_shape))
    return _cached(_types, key, value)


def encode_column(pa: Any, key: str, rows: npt.NDArray[Any]) -> Any:
    """One Arrow array for ``rows`` of shape ``[n, *row_shape]`` (zero-copy if contiguous)."""
    dtype = rows.dtype
    kind = dtype.kind
    if kind not in _KINDS:
        raise SpecMismatchError(
            f"key {key!r} has dtype {dtype}, which has no Arrow equivalent; Arrow export "
            "takes bool, int8-64, uint8-64 and float16/32/64. Cast it first, e.g. "
            "`dt[key] = dt[key].astype(np.float32)`."
        )
    if not dtype.isnative:
        dtype = dtype.newbyteorder("=")
        rows = rows.astype(dtype)
    shape = rows.shape
    if kind == "b":
        flat = pa.array(rows.reshape(-1))  # bit-packed: a copy
    else:
        flat = pa.Array.from_buffers(
            _arrow_type(pa, dtype, ()), rows.size, [None, pa.py_buffer(np.ascontiguousarray(rows))]
        )
    if len(shape) == 1:
        return flat
    arrow_type = _arrow_type(pa, dtype, shape[1:])
    if len(shape) == 2:
        return pa.Array.from_buffers(arrow_type, shape[0], [None], children=[flat])
    storage = pa.Array.from_buffers(arrow_type.storage_type, shape[0], [None], children=[flat])
    return pa.ExtensionArray.from_storage(arrow_type, storage)


def _encode_metadata(key: Any, meta: dict[str, Any]) -> dict[bytes, bytes]:
    found = _metadata.get(key)
    if found is None:
        found = _cached(_metadata, key, {METADATA_KEY: json.dumps(meta).encode()})
    return found


def dict_to_arrow(data: Leaves, shape: tuple[int, ...]) -> pa.RecordBatch:
    """See ``DictTensor.to_arrow``: numpy ``data`` of batch ``shape`` as one RecordBatch."""
    pa = _pa()
    if len(shape) == 1:
        leaves = data
    else:
        n, nb = math.prod(shape), len(shape)
        leaves = {k: v.reshape((n, *v.shape[nb:])) for k, v in data.items()}
    columns = [encode_column(pa, k, v) for k, v in leaves.items()]
    meta = _encode_metadata(
        shape, {"format": FORMAT_VERSION, "kind": "DictTensor", "batch_shape": list(shape)}
    )
    if not columns:  # no leaves: a batch of zero columns that still has prod(shape) rows
        rows = pa.StructArray.from_buffers(pa.struct([]), math.prod(shape), [None])
        return pa.RecordBatch.from_struct_array(rows).replace_schema_metadata(meta)
    return _record_batch(pa, columns, list(leaves), meta)


def _record_batch(pa: Any, columns: list[Any], names: list[str], meta: Any) -> Any:
    """``pa.RecordBatch.from_arrays``; a key Arrow cannot store is a KeyMismatchError."""
    try:
        return pa.RecordBatch.from_arrays(columns, names=names, metadata=meta)
    except UnicodeEncodeError:  # Arrow stores names as UTF-8: find the key that has none
        for key in names:
            try:
                key.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise KeyMismatchError(
                    f"key {key!r} cannot be an Arrow column name: Arrow stores names as UTF-8 "
                    f"and this key holds {exc.object[exc.start : exc.end]!r} at position "
                    f"{exc.start}, a lone surrogate, which has no UTF-8 encoding (what "
                    "`os.fsdecode` gives for undecodable bytes). Rename the key, e.g. "
                    "`key.encode('utf-8', 'surrogateescape').decode('utf-8', 'replace')`."
                ) from None
        raise


# ---------------------------------------------------------------------- decode
def decode_column(pa: Any, name: str, column: Any) -> npt.NDArray[Any]:
    """``[n, *row_shape]`` numpy array of one Arrow column (zero-copy where Arrow allows)."""
    arr = column
    if type(arr) is pa.ChunkedArray:
        chunks = arr.chunks
        arr = chunks[0] if len(chunks) == 1 else arr.combine_chunks()
    arrow_type = arr.type
    kind = type(arrow_type)
    if kind is pa.DataType and not arr.null_count:  # fast path: a primitive column
        values: npt.NDArray[Any] = arr.to_numpy(zero_copy_only=False)
        if values.dtype.kind in _KINDS:
            return values
    if kind is pa.FixedSizeListType and not arr.offset and not arr.null_count:
        size = arrow_type.list_size  # fast path: a fixed-size list, neither sliced nor null
        flat = arr.values
        n = len(arr)
        if len(flat) == n * size and not flat.null_count:
            values = flat.to_numpy(zero_copy_only=False)  # an object array if nested
            if values.dtype.kind in _KINDS:
                return values.reshape((n, size))
    n = len(arr)
    row_shape: tuple[int, ...] = ()
    if isinstance(arrow_type, pa.FixedSizeListType):
        dims = []
        while isinstance(arrow_type, pa.FixedSizeListType):
            dims.append(arrow_type.list_size)
            arr = _list_values(arr, name)
            arrow_type = arr.type
        row_shape = tuple(dims)
    elif isinstance(arrow_type, pa.BaseExtensionType):
        if not isinstance(arrow_type, pa.FixedShapeTensorType):
            raise SpecMismatchError(
                f"column {name!r} has extension type {arrow_type}; DictTensor reads only the "
                "`fixed_shape_tensor` extension."
            )
        if arrow_type.permutation not in (None, list(range(len(arrow_type.shape)))):
            raise SpecMismatchError(
                f"column {name!r} is a permuted fixed_shape_tensor, which DictTensor cannot "
                "read; write it with the default (row-major) layout."
            )
        row_shape = tuple(arrow_type.shape)
        arr = arr.storage
        arr = _list_values(arr, name)
    if arr.null_count:
        raise SpecMismatchError(
            f"column {name!r} holds {arr.null_count} null(s); DictTensor leaves cannot be "
            "null. Fill them first, e.g. `pyarrow.compute.fill_null(column, 0)`."
        )
    values = arr.to_numpy(zero_copy_only=False)
    if values.dtype.kind not in _KINDS:
        raise SpecMismatchError(
            f"column {name!r} has Arrow type {column.type}, which DictTensor cannot hold; "
            "supported: bool, ints, floats, fixed-size lists and fixed_shape_tensor of those."
        )
    if row_shape:
        values = values.reshape((n, *row_shape))
    return values


def _list_values(arr: Any, name: str) -> Any:
    """The child values of a FixedSizeListArray (its offset and length applied)."""
    if arr.null_count:
        raise SpecMismatchError(
            f"column {name!r} holds {arr.null_count} null row(s); DictTensor leaves cannot be "
            "null. Drop or fill them first."
        )
    size = arr.type.list_size
    values = arr.values
    if arr.offset or len(values) != len(arr) * size:
        values = values.slice(arr.offset * size, len(arr) * size)
    return values


def _as_arrow(batch: Any) -> Any:
    """A RecordBatch or Table from Arrow data (a reader, or any Arrow C stream/array)."""
    pa = _pa()
    if isinstance(batch, (pa.RecordBatch, pa.Table)):
        return batch
    if isinstance(batch, pa.RecordBatchReader):
        return batch.read_all()
    if hasattr(batch, "__arrow_c_stream__"):  # polars, DuckDB relations, ...
        return pa.table(batch)
    if hasattr(batch, "__arrow_c_array__"):
        return pa.record_batch(batch)
    raise TypeError(
        "from_arrow takes a pyarrow RecordBatch, Table or RecordBatchReader (or an object "
        f"with the Arrow PyCapsule interface, e.g. a polars DataFrame), got "
        f"{type(batch).__name__}."
    )


def _read_metadata(batch: Any) -> tuple[list[str], dict[str, Any]]:
    """Column names (checked unique) and the parsed ``rlstructures`` metadata ({} if none)."""
    schema = batch.schema
    names: list[str] = schema.names
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise KeyMismatchError(
            f"the Arrow data has duplicate column names {dup}; DictTensor keys are unique. "
            "Rename them first, e.g. `table.rename_columns([...])`."
        )
    metadata = schema.metadata
    raw = None if metadata is None else metadata.get(METADATA_KEY)
    if raw is None:
        return names, {}
    meta = _parsed.get(raw)
    if meta is None:
        try:
            meta = json.loads(raw)
        except ValueError:
            meta = {}
        if not isinstance(meta, dict):
            meta = {}
        dims = meta.get("batch_shape")
        if isinstance(dims, list) and all(type(v) is int and v >= 0 for v in dims):
            meta["_shape"] = tuple(dims)
        _cached(_parsed, raw, meta)
    return names, meta


def dict_from_arrow(batch: pa.RecordBatch | pa.Table) -> tuple[Leaves, tuple[int, ...]]:
    """See ``DictTensor.from_arrow``: the leaves (read-only numpy views) and batch shape."""
    pa = _pa()
    if type(batch) is not pa.RecordBatch:
        batch = _as_arrow(batch)
    names, meta = _read_metadata(batch)
    n = batch.num_rows
    dims = meta.get("_shape")
    shape = (n,) if dims is None or math.prod(dims) != n else dims
    data = {
        name: decode_column(pa, name, col)
        for name, col in zip(names, batch.columns, strict=True)
    }
    if len(shape) != 1:
        data = {k: v.reshape(shape + v.shape[1:]) for k, v in data.items()}
    return data, shape


def temporal_to_arrow(
    data: Leaves, lengths: npt.NDArray[np.int64], b: int, t: int
) -> pa.RecordBatch:
    """See ``TemporalDictTensor.to_arrow``: numpy ``[B, T, ...]`` leaves and ``[B]`` lengths."""
    pa = _pa()
    for reserved in INDEX_COLUMNS:
        if reserved in data:
            raise KeyMismatchError(
                f"key {reserved!r} is reserved for the long-format index columns "
                f"{list(INDEX_COLUMNS)}; rename it, e.g. `tdt.prefix('data/')`."
            )
    if bool((lengths == t).all()):  # every sequence full: flat views, no gather
        traj = np.repeat(np.arange(b, dtype=np.int64), t)
        steps = np.tile(np.arange(t, dtype=np.int64), b)
        leaves = {k: v.reshape((b * t, *v.shape[2:])) for k, v in data.items()}
    else:
        mask = np.arange(t)[None, :] < lengths[:, None]
        traj, steps = (x.astype(np.int64) for x in np.nonzero(mask))
        leaves = {k: v[mask] for k, v in data.items()}
    columns = [pa.array(traj), pa.array(steps)]
    columns += [encode_column(pa, k, v) for k, v in leaves.items()]
    meta = _encode_metadata(
        ("T", b, t), {"format": FORMAT_VERSION, "kind": "TemporalDictTensor", "B": b, "T": t}
    )
    return _record_batch(pa, columns, [*INDEX_COLUMNS, *leaves], meta)


def _index_column(pa: Any, cols: dict[str, Any], name: str) -> npt.NDArray[np.int64]:
    if name not in cols:
        raise KeyMismatchError(
            f"the long-format table lacks the {name!r} column; it needs int columns "
            "'trajectory' and 't' (as written by TemporalDictTensor.to_arrow)."
        )
    values = decode_column(pa, name, cols.pop(name))
    if values.ndim != 1 or values.dtype.kind not in "iu":
        raise SpecMismatchError(
            f"column {name!r} must hold one integer per row, got {values.dtype} rows of shape "
            f"{values.shape[1:]}."
        )
    return values.astype(np.int64, copy=False)


def temporal_from_arrow(
    batch: pa.RecordBatch | pa.Table,
) -> tuple[Leaves, tuple[int, int], npt.NDArray[np.int64]]:
    """See ``TemporalDictTensor.from_arrow``: ``[B, T, ...]`` leaves, ``(B, T)``, lengths."""
    pa = _pa()
    batch = _as_arrow(batch)
    names, meta = _read_metadata(batch)
    cols = dict(zip(names, batch.columns, strict=True))
    traj = _index_column(pa, cols, "trajectory")
    steps = _index_column(pa, cols, "t")
    n = len(traj)
    b_meta, t_meta = meta.get("B"), meta.get("T")
    b = b_meta if type(b_meta) is int and b_meta >= 0 else (int(traj.max()) + 1 if n else 0)
    t = t_meta if type(t_meta) is int and t_meta >= 0 else (int(steps.max()) + 1 if n else 0)
    if n and (traj.min() < 0 or traj.max() >= b or steps.min() < 0 or steps.max() >= t):
        raise SpecMismatchError(
            f"'trajectory' values must lie in [0, B={b}) and 't' values in [0, T={t}); got "
            f"trajectory in [{traj.min()}, {traj.max()}] and t in [{steps.min()}, "
            f"{steps.max()}]."
        )
    lengths = np.bincount(traj, minlength=b).astype(np.int64)
    order = np.lexsort((steps, traj))
    starts = np.cumsum(lengths) - lengths
    expected = np.arange(n, dtype=np.int64) - np.repeat(starts, lengths)
    if not np.array_equal(steps[order], expected):
        raise SpecMismatchError(
            "each trajectory's 't' values must be exactly 0, 1, ..., length-1 (no gaps, no "
            "duplicates); filter rows only by whole trajectories or by a prefix of steps."
        )
    canonical = n == b * t and bool(np.array_equal(order, np.arange(n)))
    data: dict[str, Any] = {}
    for name, col in cols.items():
        rows = decode_column(pa, name, col)
        if canonical:
            data[name] = rows.reshape((b, t, *rows.shape[1:]))  # zero-copy
        else:
            full = np.zeros((b, t, *rows.shape[1:]), dtype=rows.dtype)
            full[traj, steps] = rows
            data[name] = full
    return data, (b, t), lengths
