"""Operations that combine DictTensors: ``cat``, ``stack``, ``where`` and row writes.

The fast path of ``cat``/``stack`` checks only what numpy does not (part types, key counts,
backends, number of batch dims); numpy's ``casting="no"`` checks dtypes and shapes, and a
failure is diagnosed afterwards into a precise message.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal, NoReturn

import numpy as np

from rlstructures.dicttensor._backend import is_tensor, torch_helpers
from rlstructures.dicttensor._checks import (
    batch_positions,
    dim_arg,
    index_repr,
    raise_spec_mismatch,
    row_key,
    same_keys,
    spec_str,
    torch_needs_gather,
)
from rlstructures.dicttensor.errors import (
    BackendError,
    BatchShapeError,
    KeyMismatchError,
    SpecMismatchError,
)

if TYPE_CHECKING:
    from rlstructures.dicttensor._dicttensor import DictTensor

__all__ = ["cat", "stack", "where", "write_rows"]

Op = Literal["cat", "stack"]


def cat(
    cls: type[DictTensor], seq: Iterable[DictTensor], dim: object
) -> tuple[dict[str, Any], tuple[int, ...]]:
    """Leaves and batch shape of ``DictTensor.cat(seq, dim)`` (``cls`` is DictTensor)."""
    parts = _parts(cls, seq, "cat")
    shape0 = parts[0]._batch_shape
    nb = len(shape0)
    if nb == 0:
        raise BatchShapeError(
            "DictTensor.cat: the parts have batch_shape () (single rows), so there is no "
            "dimension to concatenate along; use `DictTensor.stack(parts)` instead."
        )
    d = dim if type(dim) is int and 0 <= dim < nb else dim_arg(dim, nb, "DictTensor.cat")
    datas, total = _check_parts(cls, parts, "cat", d)
    shape = (*shape0[:d], total, *shape0[d + 1 :])
    if not datas[0]:  # no leaves: numpy cannot check the other batch dims
        for i, part in enumerate(parts):
            bs = part._batch_shape
            if bs[:d] != shape0[:d] or bs[d + 1 :] != shape0[d + 1 :]:
                _raise_batch_shapes(parts, d, "cat", i)
        return {}, shape
    return _combine(parts, datas, d, "cat"), shape


def stack(
    cls: type[DictTensor], seq: Iterable[DictTensor], dim: object
) -> tuple[dict[str, Any], tuple[int, ...]]:
    """Leaves and batch shape of ``DictTensor.stack(seq, dim)`` (``cls`` is DictTensor)."""
    parts = _parts(cls, seq, "stack")
    shape0 = parts[0]._batch_shape
    nb = len(shape0)
    d = dim if type(dim) is int and 0 <= dim <= nb else dim_arg(dim, nb + 1, "DictTensor.stack")
    datas, _ = _check_parts(cls, parts, "stack", None)
    shape = (*shape0[:d], len(parts), *shape0[d:])
    if not datas[0]:
        return {}, shape
    return _combine(parts, datas, d, "stack"), shape


def _parts(cls: type[DictTensor], seq: Iterable[DictTensor], op: Op) -> list[DictTensor]:
    """The parts as a non-empty list whose first item is a DictTensor."""
    if type(seq) is list:
        parts = seq
    else:
        given: object = seq
        if isinstance(given, cls) or not isinstance(given, Iterable):
            raise TypeError(
                f"DictTensor.{op} takes a sequence of DictTensors, got a "
                f"{type(given).__name__}; write `DictTensor.{op}([a, b])`."
            )
        parts = list(seq)
    if not parts:
        raise ValueError(f"DictTensor.{op} needs at least one DictTensor, got an empty sequence.")
    if not isinstance(parts[0], cls):
        raise TypeError(
            f"DictTensor.{op}: item 0 is a {type(parts[0]).__name__}, not a DictTensor."
        )
    return parts


def _check_parts(
    cls: type[DictTensor], parts: list[DictTensor], op: Op, cat_dim: int | None
) -> tuple[list[dict[str, Any]], int]:
    """Check what numpy does not, and return the leaf dicts and the total size on ``cat_dim``.

    Every part must be a DictTensor with as many keys, batch dims (for stack: the same batch
    shape) and the backend of part 0.
    """
    first = parts[0]
    keys, shape0 = first._data, first._batch_shape
    nkeys, nb = len(keys), len(shape0)
    k0 = next(iter(keys), "")
    leaf_type = type(keys.get(k0))
    datas = []
    total = 0
    for part in parts:
        if type(part) is not cls and not isinstance(part, cls):
            _raise_part(cls, parts, op, cat_dim)
        data, bs = part._data, part._batch_shape
        if len(data) != nkeys or type(data.get(k0)) is not leaf_type:
            _raise_part(cls, parts, op, cat_dim)
        if cat_dim is None:
            if bs != shape0:
                _raise_part(cls, parts, op, cat_dim)
        elif len(bs) == nb:
            total += bs[cat_dim]
        else:
            _raise_part(cls, parts, op, cat_dim)
        datas.append(data)
    return datas, total


def _raise_part(
    cls: type[DictTensor], parts: list[DictTensor], op: Op, cat_dim: int | None
) -> NoReturn:
    """Raise the error of the first part that does not fit part 0."""
    first = parts[0]
    for i, part in enumerate(parts):
        if not isinstance(part, cls):
            raise TypeError(
                f"DictTensor.{op}: item {i} is a {type(part).__name__}, not a DictTensor."
            )
        same_keys(first._data, part._data, f"DictTensor.{op} (part 0 vs part {i})")
        if part._data and first._data and part.backend != first.backend:
            raise BackendError(
                f"DictTensor.{op}: part {i} is {part.backend}, part 0 is {first.backend}; "
                "convert with `.numpy()` or `.torch()` first."
            )
        bs = part._batch_shape
        if len(bs) != len(first._batch_shape) or (cat_dim is None and bs != first._batch_shape):
            _raise_batch_shapes(parts, cat_dim, op, i)
    raise AssertionError("_raise_part found no faulty part")  # pragma: no cover


def _combine(
    parts: list[DictTensor], datas: list[dict[str, Any]], d: int, op: Op
) -> dict[str, Any]:
    """Concatenate (``op="cat"``) or stack every key of ``parts`` along ``d``."""
    first = datas[0]
    out: dict[str, Any] = {}
    if type(next(iter(first.values()))) is np.ndarray or parts[0].backend == "numpy":
        fn = np.concatenate if op == "cat" else np.stack
        for key, v0 in first.items():
            try:
                arrays = [data[key] for data in datas]
            except KeyError:
                _raise_keys(parts, op)
            try:
                out[key] = fn(arrays, axis=d, dtype=v0.dtype, casting="no")
            except (TypeError, ValueError):
                _diagnose(parts, key, d, op)
        return out
    th = torch_helpers(f"DictTensor.{op}()")
    tfn = th.cat if op == "cat" else th.stack
    nb = len(parts[0]._batch_shape)
    for key, v0 in first.items():
        try:
            arrays = [data[key] for data in datas]
        except KeyError:
            _raise_keys(parts, op)
        dtype, row = v0.dtype, v0.shape[nb:]
        for a in arrays:
            if a.dtype != dtype or a.shape[nb:] != row:
                _diagnose(parts, key, d, op)
        try:
            out[key] = tfn(arrays, d)
        except RuntimeError as exc:
            devices = sorted({str(a.device) for a in arrays})
            raise BackendError(
                f"DictTensor.{op}: key {key!r} cannot be combined ({exc}); the parts are on "
                f"devices {devices}. Move them to one device first, e.g. `part.to('cpu')`."
            ) from None
    return out


def _raise_keys(parts: list[DictTensor], op: Op) -> NoReturn:
    for i, part in enumerate(parts):
        same_keys(parts[0]._data, part._data, f"DictTensor.{op} (part 0 vs part {i})")
    raise KeyMismatchError(f"DictTensor.{op}: the parts hold different keys.")  # pragma: no cover


def _raise_batch_shapes(parts: list[DictTensor], d: int | None, op: Op, i: int) -> NoReturn:
    shape0, bs = parts[0]._batch_shape, parts[i]._batch_shape
    rule = (
        "all parts must have the same batch shape"
        if d is None
        else f"they may differ only on dim {d}"
    )
    raise BatchShapeError(
        f"DictTensor.{op}: part {i} has batch_shape {bs}, part 0 has {shape0}; {rule}."
    )


def _diagnose(parts: list[DictTensor], key: str, d: int, op: Op) -> NoReturn:
    """Raise the error explaining why combining ``key`` failed."""
    shape0 = parts[0]._batch_shape
    for i, part in enumerate(parts):
        bs = part._batch_shape
        if op == "cat" and (bs[:d] != shape0[:d] or bs[d + 1 :] != shape0[d + 1 :]):
            _raise_batch_shapes(parts, d, op, i)
    arrays = [p._data[key] for p in parts]
    raise_spec_mismatch(key, arrays, [len(p._batch_shape) for p in parts], f"DictTensor.{op}")


# ---------------------------------------------------------------------- two DictTensors
def write_rows(dst: DictTensor, index: Any, value: object) -> None:
    """``dst[index] = value``: write the rows of ``value`` into ``dst`` in place."""
    if not isinstance(value, type(dst)):
        raise TypeError(
            f"`dt[index] = value` needs a DictTensor value, got {type(value).__name__}. "
            'To set a leaf use a str key: `dt["key"] = array`.'
        )
    same_keys(dst._data, value._data, "dt[index] = other")
    backend = dst.backend
    if dst._data and backend != value.backend:
        raise BackendError(
            f"cannot write {value.backend} rows into a {backend} DictTensor; "
            f"convert with `other.{backend}()`."
        )
    key = row_key(index, dst._batch_shape, backend == "numpy")
    nb, nv = len(dst._batch_shape), len(value._batch_shape)
    torch_backend = backend == "torch"
    for k, leaf in dst._data.items():
        src = value._data[k]
        if leaf.shape[nb:] != src.shape[nv:] or not _can_cast(src, leaf, torch_backend):
            raise SpecMismatchError(
                f"dt[index] = other: key {k!r} is {spec_str(leaf, nb)} here and "
                f"{spec_str(src, nv)} in other; rows must have the same shape and a dtype "
                "of the same kind. Cast other first, e.g. `x.astype(np.float32)`."
            )
        if not torch_backend and not leaf.flags.writeable:
            raise ValueError(
                f"key {k!r} is read-only (e.g. a view of Arrow memory from `from_arrow`); "
                "call `.clone()` to get writable arrays before writing rows."
            )
    if torch_backend and torch_needs_gather(key):  # rows torch cannot index like numpy
        positions = batch_positions(index, dst._batch_shape)
        th = torch_helpers("DictTensor.__setitem__")
        key, write = positions, th.scatter_rows
    else:
        write = None
    for k, leaf in dst._data.items():
        try:
            if write is None:
                leaf[key] = value._data[k]
            else:
                write(leaf, key, nb, value._data[k])
        except (IndexError, TypeError, ValueError, RuntimeError) as exc:
            raise BatchShapeError(
                f"cannot write key {k!r}: rows {index_repr(index)} of batch_shape "
                f"{dst._batch_shape} do not take a value of batch_shape "
                f"{value._batch_shape} ({exc}). The value must have the shape of the "
                "selected rows (or broadcast to it), and the index must fit the batch."
            ) from None


def _can_cast(src: Any, dst: Any, torch_backend: bool) -> bool:
    if src.dtype == dst.dtype:
        return True
    if torch_backend:
        return bool(torch_helpers("DictTensor.__setitem__").can_cast(src.dtype, dst.dtype))
    return bool(np.can_cast(src.dtype, dst.dtype, "same_kind"))


def where(a: DictTensor, mask: Any, other: object) -> dict[str, Any]:
    """The leaves of ``a.where(mask, other)``."""
    if not isinstance(other, type(a)):
        raise TypeError(f"where: other must be a DictTensor, got {type(other).__name__}.")
    same_keys(a._data, other._data, "where")
    shape = a._batch_shape
    if other._batch_shape != shape:
        raise BatchShapeError(
            f"where: other has batch_shape {other._batch_shape}, expected {shape} (the batch "
            "shape of self)."
        )
    if a._data and a.backend != other.backend:
        raise BackendError(
            f"where: self is {a.backend} but other is {other.backend}; convert other with "
            f"`other.{a.backend}()`."
        )
    torch_backend = a.backend == "torch"
    if is_tensor(mask):
        if not torch_backend:
            mask = mask.detach().cpu().numpy()
    else:
        mask = np.asarray(mask)
        if mask.size == 0 and mask.dtype == np.float64:
            mask = mask.astype(np.bool_)  # `[]`, which numpy reads as float64
    th: Any = None
    if torch_backend:
        th = torch_helpers("DictTensor.where()")
        mask = th.as_tensor_like(mask, next(iter(a._data.values())), "where: mask")
    if str(mask.dtype) not in ("bool", "torch.bool"):
        raise TypeError(
            f"where: mask must be a bool array of shape {shape}, got dtype "
            f"{str(mask.dtype).replace('torch.', '')}; compare first, e.g. `x > 0`."
        )
    if tuple(mask.shape) != shape:
        raise BatchShapeError(
            f"where: mask must have the batch shape {shape}, got shape {tuple(mask.shape)}."
        )
    nb = len(shape)
    out: dict[str, Any] = {}
    for key, x in a._data.items():
        y = other._data[key]
        if x.dtype != y.dtype or x.shape[nb:] != y.shape[nb:]:
            raise SpecMismatchError(
                f"where: key {key!r} is {spec_str(x, nb)} in self and {spec_str(y, nb)} in "
                "other; rows must share shape and dtype. Cast one side first."
            )
        m = mask.reshape((*mask.shape, *(1,) * (x.ndim - nb)))
        out[key] = th.where(m, x, y) if torch_backend else np.where(m, x, y)
    return out
