"""Operations that combine leaves: ``cat``, ``stack``, ``where`` and row writes.

They work on leaves and batch shapes (``dict[str, array]`` and ``tuple[int, ...]``) and
return leaves: the DictTensor class checks that its arguments are DictTensors and wraps the
result, so this module knows nothing of the class.

``DictTensor.cat``/``stack`` check what numpy does not (key counts, backends, batch shapes)
in one pass over the parts, then ``combine`` lets numpy's ``casting="no"`` check dtypes and
row shapes; a failure is diagnosed afterwards into a precise message (``raise_part`` for
parts that do not fit, a SpecMismatchError for row specs).
"""

from __future__ import annotations

from typing import Any, Literal, NoReturn, TypeAlias

import numpy as np

from rlstructures.dicttensor import _backend
from rlstructures.dicttensor._backend import Backend, is_tensor, require_torch
from rlstructures.dicttensor._checks import (
    batch_positions,
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

__all__ = ["Leaves", "backend", "combine", "raise_part", "where", "write_rows"]

Op = Literal["cat", "stack"]
#: The leaves of a DictTensor: ``{key: [*batch_shape, *row_shape] array}``.
Leaves: TypeAlias = dict[str, Any]
Shape: TypeAlias = tuple[int, ...]


def backend(data: Leaves) -> Backend:
    """The backend of leaves (``"numpy"`` for no leaves)."""
    for value in data.values():
        return "numpy" if isinstance(value, np.ndarray) else "torch"
    return "numpy"


def raise_part(datas: list[Leaves], shapes: list[Shape], op: Op, cat_dim: int | None) -> NoReturn:
    """Raise the error of the first part that does not fit part 0.

    Args:
        datas: the leaves of every part.
        shapes: the batch shape of every part.
        op: ``"cat"`` or ``"stack"``.
        cat_dim: the dimension of ``cat`` (None for ``stack``: batch shapes must be equal).
    """
    first, shape0 = datas[0], shapes[0]
    for i, (data, bs) in enumerate(zip(datas, shapes, strict=True)):
        same_keys(first, data, f"DictTensor.{op} (part 0 vs part {i})")
        if data and first and backend(data) != backend(first):
            raise BackendError(
                f"DictTensor.{op}: part {i} is {backend(data)}, part 0 is {backend(first)}; "
                "convert with `.numpy()` or `.torch()` first."
            )
        if len(bs) != len(shape0) or (
            bs[:cat_dim] != shape0[:cat_dim] or bs[cat_dim + 1 :] != shape0[cat_dim + 1 :]
            if cat_dim is not None
            else bs != shape0
        ):
            _raise_batch_shapes(shapes, cat_dim, op, i)
    raise AssertionError("raise_part found no faulty part")  # pragma: no cover


def combine(datas: list[Leaves], nb: int, d: int, op: Op) -> Leaves:
    """Concatenate (``op="cat"``) or stack every key of the parts along ``d``.

    The parts have been checked to fit (same keys, backend and batch shapes, but for the
    size on ``d`` for cat), each with ``nb`` batch dimensions: what can still fail is a
    row shape or dtype, diagnosed into a SpecMismatchError naming the key.
    """
    first = datas[0]
    out: Leaves = {}
    if type(next(iter(first.values()))) is np.ndarray or backend(first) == "numpy":
        fn = np.concatenate if op == "cat" else np.stack
        for key, v0 in first.items():
            try:
                arrays = [data[key] for data in datas]
            except KeyError:
                _raise_keys(datas, op)
            try:
                out[key] = fn(arrays, axis=d, dtype=v0.dtype, casting="no")
            except (TypeError, ValueError):
                _diagnose(datas, nb, key, op)
        return out
    require_torch(f"DictTensor.{op}()")
    tfn = _backend.torch.cat if op == "cat" else _backend.torch.stack
    for key, v0 in first.items():
        try:
            tensors = [data[key] for data in datas]
        except KeyError:
            _raise_keys(datas, op)
        dtype, row = v0.dtype, v0.shape[nb:]
        for t in tensors:
            if t.dtype != dtype or t.shape[nb:] != row:
                _diagnose(datas, nb, key, op)
        try:
            out[key] = tfn(tensors, dim=d)
        except RuntimeError as exc:
            devices = sorted({str(t.device) for t in tensors})
            raise BackendError(
                f"DictTensor.{op}: key {key!r} cannot be combined ({exc}); the parts are on "
                f"devices {devices}. Move them to one device first, e.g. `part.to('cpu')`."
            ) from None
    return out


def _raise_keys(datas: list[Leaves], op: Op) -> NoReturn:
    for i, data in enumerate(datas):
        same_keys(datas[0], data, f"DictTensor.{op} (part 0 vs part {i})")
    raise KeyMismatchError(f"DictTensor.{op}: the parts hold different keys.")  # pragma: no cover


def _raise_batch_shapes(shapes: list[Shape], d: int | None, op: Op, i: int) -> NoReturn:
    rule = (
        "all parts must have the same batch shape"
        if d is None
        else f"they may differ only on dim {d}"
    )
    raise BatchShapeError(
        f"DictTensor.{op}: part {i} has batch_shape {shapes[i]}, part 0 has {shapes[0]}; "
        f"{rule}."
    )


def _diagnose(datas: list[Leaves], nb: int, key: str, op: Op) -> NoReturn:
    """Raise the error explaining why combining ``key`` failed (its row specs differ)."""
    arrays = [data[key] for data in datas]
    raise_spec_mismatch(key, arrays, [nb] * len(arrays), f"DictTensor.{op}")


# ---------------------------------------------------------------------- two DictTensors
def write_rows(dst: Leaves, dst_shape: Shape, index: Any, src: Leaves, src_shape: Shape) -> None:
    """``dst[index] = src``: write the rows of the leaves ``src`` into the leaves ``dst``."""
    same_keys(dst, src, "dt[index] = other")
    kind = backend(dst)
    if dst and kind != backend(src):
        raise BackendError(
            f"cannot write {backend(src)} rows into a {kind} DictTensor; "
            f"convert with `other.{kind}()`."
        )
    key = row_key(index, dst_shape, kind == "numpy")
    nb, nv = len(dst_shape), len(src_shape)
    torch_backend = kind == "torch"
    for k, leaf in dst.items():
        value = src[k]
        if leaf.shape[nb:] != value.shape[nv:] or not _can_cast(value, leaf, torch_backend):
            raise SpecMismatchError(
                f"dt[index] = other: key {k!r} is {spec_str(leaf, nb)} here and "
                f"{spec_str(value, nv)} in other; rows must have the same shape and a dtype "
                "of the same kind. Cast other first, e.g. `x.astype(np.float32)`."
            )
        if not torch_backend and not leaf.flags.writeable:
            raise ValueError(
                f"key {k!r} is read-only (e.g. a view of Arrow memory from `from_arrow`); "
                "call `.clone()` to get writable arrays before writing rows."
            )
    gather = torch_backend and torch_needs_gather(key)  # rows torch cannot index like numpy
    if gather:
        require_torch("DictTensor.__setitem__")
        key = batch_positions(index, dst_shape)
    for k, leaf in dst.items():
        try:
            if gather:
                _backend.th.scatter_rows(leaf, key, nb, src[k])
            else:
                leaf[key] = src[k]
        except (IndexError, TypeError, ValueError, RuntimeError) as exc:
            raise BatchShapeError(
                f"cannot write key {k!r}: rows {index_repr(index)} of batch_shape "
                f"{dst_shape} do not take a value of batch_shape {src_shape} ({exc}). The "
                "value must have the shape of the selected rows (or broadcast to it), and the "
                "index must fit the batch."
            ) from None


def _can_cast(src: Any, dst: Any, torch_backend: bool) -> bool:
    if src.dtype == dst.dtype:
        return True
    if torch_backend:
        require_torch("DictTensor.__setitem__")
        return bool(_backend.torch.can_cast(src.dtype, dst.dtype))
    return bool(np.can_cast(src.dtype, dst.dtype, "same_kind"))


def where(a: Leaves, shape: Shape, mask: Any, b: Leaves, b_shape: Shape) -> Leaves:
    """The leaves of ``DictTensor.where``: rows of ``a`` where ``mask``, of ``b`` elsewhere."""
    same_keys(a, b, "where")
    if b_shape != shape:
        raise BatchShapeError(
            f"where: other has batch_shape {b_shape}, expected {shape} (the batch shape of "
            "self)."
        )
    kind = backend(a)
    if a and kind != backend(b):
        raise BackendError(
            f"where: self is {kind} but other is {backend(b)}; convert other with "
            f"`other.{kind}()`."
        )
    torch_backend = kind == "torch"
    if is_tensor(mask):
        if not torch_backend:
            mask = mask.detach().cpu().numpy()
    else:
        mask = np.asarray(mask)
        if mask.size == 0 and mask.dtype == np.float64:
            mask = mask.astype(np.bool_)  # `[]`, which numpy reads as float64
    if torch_backend:
        require_torch("DictTensor.where()")
        mask = _backend.th.as_tensor_like(mask, next(iter(a.values())), "where: mask")
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
    pick = _backend.torch.where if torch_backend else np.where
    out: Leaves = {}
    for key, x in a.items():
        y = b[key]
        if x.dtype != y.dtype or x.shape[nb:] != y.shape[nb:]:
            raise SpecMismatchError(
                f"where: key {key!r} is {spec_str(x, nb)} in self and {spec_str(y, nb)} in "
                "other; rows must share shape and dtype. Cast one side first."
            )
        m = mask.reshape((*mask.shape, *(1,) * (x.ndim - nb)))
        out[key] = pick(m, x, y)
    return out
