"""Arrow conversion of DictTensor and TemporalDictTensor (the ``arrow`` extra).

Column encoding, by per-row shape of a leaf:

* ``()``: a primitive column (``int64``, ``float32``, ``bool``, ...);
* ``(d,)``: ``fixed_size_list<d>`` of the primitive type;
* two or more dims: the ``arrow.fixed_shape_tensor`` extension type, whose storage is a
  flat ``fixed_size_list`` (what a reader without the extension sees).

Numeric columns share memory with the numpy leaves in both directions; bool is bit-packed
by Arrow, so it is copied. Arrays read back are read-only views of Arrow memory.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt

from rlstructures.dicttensor._dicttensor import DictTensor
from rlstructures.dicttensor.errors import MissingDependencyError, SpecMismatchError

if TYPE_CHECKING:
    import pyarrow as pa

    from rlstructures.dicttensor._temporal import TemporalDictTensor

__all__ = [
    "METADATA_KEY",
    "dict_tensor_from_arrow",
    "dict_tensor_to_arrow",
    "temporal_from_arrow",
    "temporal_to_arrow",
]

#: Schema metadata key holding a JSON object written by this module.
METADATA_KEY: Final = b"rlstructures"
FORMAT_VERSION: Final = 1
_KINDS: Final = "biuf"  # bool, signed, unsigned, float: the dtypes Arrow stores natively


def _pa() -> Any:
    try:
        import pyarrow
    except ImportError as exc:
        raise MissingDependencyError(
            "Arrow conversion needs pyarrow, which is not installed. Install it with: "
            "pip install 'rlstructures-dicttensor[arrow]'"
        ) from exc
    return pyarrow


# ---------------------------------------------------------------------- encode
def encode_column(pa: Any, key: str, rows: npt.NDArray[Any]) -> Any:
    """One Arrow array for ``rows`` of shape ``[n, *row_shape]``."""
    if rows.dtype.kind not in _KINDS or rows.dtype.byteorder == ">":
        raise SpecMismatchError(
            f"key {key!r} has dtype {rows.dtype}, which has no Arrow equivalent; Arrow export "
            "takes bool, int8-64, uint8-64 and float16/32/64. Cast it first."
        )
    n, row_shape = rows.shape[0], rows.shape[1:]
    if not row_shape:
        return pa.array(np.ascontiguousarray(rows))
    size = math.prod(row_shape)
    flat = pa.array(np.ascontiguousarray(rows).reshape(-1))
    storage = pa.Array.from_buffers(pa.list_(flat.type, size), n, [None], children=[flat])
    if len(row_shape) == 1:
        return storage
    tensor_type = pa.fixed_shape_tensor(flat.type, list(row_shape))
    return pa.ExtensionArray.from_storage(tensor_type, storage)


def _record_batch(pa: Any, columns: dict[str, Any], meta: dict[str, Any]) -> Any:
    schema = pa.schema(
        [pa.field(k, c.type, nullable=False) for k, c in columns.items()],
        metadata={METADATA_KEY: json.dumps(meta).encode()},
    )
    return pa.RecordBatch.from_arrays(list(columns.values()), schema=schema)


def dict_tensor_to_arrow(dt: DictTensor) -> pa.RecordBatch:
    """See ``DictTensor.to_arrow``."""
    pa = _pa()
    src = dt.numpy()
    n = math.prod(src.batch_shape)
    nb = len(src.batch_shape)
    columns = {
        k: encode_column(pa, k, v.reshape((n, *v.shape[nb:]))) for k, v in src.items()
    }
    meta = {"format": FORMAT_VERSION, "kind": "DictTensor", "batch_shape": list(src.batch_shape)}
    return _record_batch(pa, columns, meta)


# ---------------------------------------------------------------------- decode
def _single_array(column: Any) -> Any:
    """A contiguous Array from an Array or a ChunkedArray (zero-copy when one chunk)."""
    chunks = getattr(column, "chunks", None)
    if chunks is None:
        return column
    if len(chunks) == 1:
        return chunks[0]
    return column.combine_chunks()


def decode_column(pa: Any, name: str, column: Any) -> npt.NDArray[Any]:
    """``[n, *row_shape]`` numpy array of one Arrow column (zero-copy where Arrow allows)."""
    arr = _single_array(column)
    if arr.null_count:
        raise SpecMismatchError(
            f"column {name!r} holds {arr.null_count} nulls; DictTensor leaves cannot be null."
        )
    n = len(arr)
    row_shape: list[int] = []
    if isinstance(arr.type, pa.BaseExtensionType):
        ext = arr.type
        if getattr(ext, "permutation", None) not in (None, list(range(len(ext.shape)))):
            raise SpecMismatchError(f"column {name!r}: permuted tensor columns are not supported.")
        row_shape = list(ext.shape)
        arr = arr.storage
        while pa.types.is_fixed_size_list(arr.type):
            arr = arr.flatten()
    else:
        while pa.types.is_fixed_size_list(arr.type):
            row_shape.append(arr.type.list_size)
            arr = arr.flatten()
    if not (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type)
            or pa.types.is_boolean(arr.type)):
        raise SpecMismatchError(
            f"column {name!r} has Arrow type {column.type}, which DictTensor cannot hold; "
            "supported: bool, ints, floats, fixed-size lists and fixed_shape_tensor of those."
        )
    if arr.null_count:
        raise SpecMismatchError(f"column {name!r} holds nulls in its values.")
    values = arr.to_numpy(zero_copy_only=False)
    return values.reshape((n, *row_shape))


def _as_columns(batch: Any) -> tuple[list[str], list[Any], dict[str, Any]]:
    pa = _pa()
    if not isinstance(batch, (pa.RecordBatch, pa.Table)):
        raise TypeError(
            f"from_arrow takes a pyarrow RecordBatch or Table, got {type(batch).__name__}."
        )
    raw = (batch.schema.metadata or {}).get(METADATA_KEY)
    meta: dict[str, Any] = json.loads(raw) if raw else {}
    return list(batch.schema.names), list(batch.columns), meta


def dict_tensor_from_arrow(batch: pa.RecordBatch | pa.Table) -> DictTensor:
    """See ``DictTensor.from_arrow``."""
    pa = _pa()
    names, columns, meta = _as_columns(batch)
    n = batch.num_rows
    shape = tuple(meta.get("batch_shape", (n,)))
    if math.prod(shape) != n and names:
        shape = (n,)
    data = {}
    for name, col in zip(names, columns, strict=True):
        rows = decode_column(pa, name, col)
        data[name] = rows.reshape(shape + rows.shape[1:])
    return DictTensor(data, batch_shape=shape)


def temporal_to_arrow(tdt: TemporalDictTensor) -> pa.RecordBatch:
    """See ``TemporalDictTensor.to_arrow``."""
    pa = _pa()
    src = tdt.numpy()
    b, t = src.batch_shape
    lengths = src.lengths
    if bool((lengths == t).all()):  # every sequence full: flat views, no gather
        traj = np.repeat(np.arange(b, dtype=np.int64), t)
        steps = np.tile(np.arange(t, dtype=np.int64), b)
        leaves = {k: v.reshape((b * t, *v.shape[2:])) for k, v in src.items()}
    else:
        mask = src.mask()
        traj, steps = (x.astype(np.int64) for x in np.nonzero(mask))
        leaves = {k: v[mask] for k, v in src.items()}
    for reserved in ("trajectory", "t"):
        if reserved in leaves:
            raise SpecMismatchError(
                f"key {reserved!r} is reserved for the long-format index columns; rename it."
            )
    columns = {"trajectory": pa.array(traj), "t": pa.array(steps)}
    columns.update({k: encode_column(pa, k, v) for k, v in leaves.items()})
    meta = {"format": FORMAT_VERSION, "kind": "TemporalDictTensor", "B": b, "T": t}
    return _record_batch(pa, columns, meta)


def temporal_from_arrow(batch: pa.RecordBatch | pa.Table) -> TemporalDictTensor:
    """See ``TemporalDictTensor.from_arrow``."""
    from rlstructures.dicttensor._temporal import TemporalDictTensor

    pa = _pa()
    names, columns, meta = _as_columns(batch)
    cols = dict(zip(names, columns, strict=True))
    for required in ("trajectory", "t"):
        if required not in cols:
            raise SpecMismatchError(
                f"long-format table lacks the {required!r} column; it needs int columns "
                "'trajectory' and 't' (as written by TemporalDictTensor.to_arrow)."
            )
    traj = decode_column(pa, "trajectory", cols.pop("trajectory")).astype(np.int64, copy=False)
    steps = decode_column(pa, "t", cols.pop("t")).astype(np.int64, copy=False)
    n = len(traj)
    b = int(meta.get("B", int(traj.max()) + 1 if n else 0))
    t = int(meta.get("T", int(steps.max()) + 1 if n else 0))
    if n and (traj.min() < 0 or traj.max() >= b or steps.min() < 0 or steps.max() >= t):
        raise SpecMismatchError(
            f"'trajectory' / 't' values fall outside B={b}, T={t} given by the metadata."
        )
    lengths = np.bincount(traj, minlength=b).astype(np.int64)
    order = np.lexsort((steps, traj))
    starts = np.cumsum(lengths) - lengths
    expected = np.arange(n, dtype=np.int64) - np.repeat(starts, lengths)
    if not np.array_equal(steps[order], expected):
        raise SpecMismatchError(
            "each trajectory's 't' values must be exactly 0..length-1 (no gaps, no duplicates)."
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
    dt = DictTensor(data, batch_shape=(b, t))
    return TemporalDictTensor(dt, lengths)
