"""The torch helpers that are more than one torch call: dtype maps, zero-copy views, devices.

Imported lazily, the first time a torch feature is used (``_backend.require_torch``); other
modules call torch itself through ``_backend.torch``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from rlstructures.dicttensor.errors import BackendError

__all__ = [
    "as_tensor_like",
    "from_numpy",
    "gather_rows",
    "numpy_dtype",
    "pin_memory",
    "scatter_rows",
    "tensor_equal",
    "to_device",
    "to_numpy",
    "torch_dtype",
    "zeros",
]

_TO_NUMPY: dict[torch.dtype, np.dtype[Any]] = {
    torch.bool: np.dtype(np.bool_),
    torch.uint8: np.dtype(np.uint8),
    torch.int8: np.dtype(np.int8),
    torch.int16: np.dtype(np.int16),
    torch.int32: np.dtype(np.int32),
    torch.int64: np.dtype(np.int64),
    torch.float16: np.dtype(np.float16),
    torch.float32: np.dtype(np.float32),
    torch.float64: np.dtype(np.float64),
    torch.complex64: np.dtype(np.complex64),
    torch.complex128: np.dtype(np.complex128),
}
for _name, _np in (("uint16", np.uint16), ("uint32", np.uint32), ("uint64", np.uint64)):
    if hasattr(torch, _name):  # unsigned types beyond uint8 exist since torch 2.3
        _TO_NUMPY[getattr(torch, _name)] = np.dtype(_np)
_TO_TORCH: dict[np.dtype[Any], torch.dtype] = {v: k for k, v in _TO_NUMPY.items()}


def numpy_dtype(dtype: torch.dtype, key: str = "?") -> np.dtype[Any]:
    """The numpy dtype of a torch dtype (bfloat16 has none: a BackendError)."""
    try:
        return _TO_NUMPY[dtype]
    except KeyError:
        raise BackendError(
            f"key {key!r} has torch dtype {dtype}, which has no numpy equivalent. "
            "Convert it first, e.g. `tensor.float()`."
        ) from None


def torch_dtype(dtype: np.dtype[Any], key: str = "?") -> torch.dtype:
    """The torch dtype of a numpy dtype."""
    try:
        return _TO_TORCH[np.dtype(dtype)]
    except KeyError:
        raise BackendError(
            f"key {key!r} has numpy dtype {dtype}, which torch does not support. "
            "Cast it first, e.g. `array.astype(np.int64)`."
        ) from None


def from_numpy(data: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Zero-copy torch views of numpy arrays (arrays with negative strides are copied)."""
    out: dict[str, torch.Tensor] = {}
    _from_numpy = torch.from_numpy
    try:
        for key, arr in data.items():
            if arr.flags.writeable:
                out[key] = _from_numpy(arr)
            else:
                out[key] = _from_read_only(arr)
    except (TypeError, ValueError):
        return {key: _one_from_numpy(key, arr) for key, arr in data.items()}
    return out


def _from_read_only(arr: Any) -> torch.Tensor:
    # torch has no read-only tensors: a view of read-only memory (an Arrow buffer, a
    # memory-mapped file) looks writable, and an in-place op on it can crash the process
    # (a segfault on a read-only mapping). Such leaves are copied into writable memory.
    return torch.from_numpy(np.array(arr, order="C"))


def _one_from_numpy(key: str, arr: Any) -> torch.Tensor:
    """The slow path of ``from_numpy``: copies where torch needs it, clear errors."""
    native = arr.dtype.newbyteorder("=")
    torch_dtype(native, key)  # a BackendError naming the key for dtypes torch lacks
    if any(s < 0 for s in arr.strides) or not arr.dtype.isnative:
        arr = np.array(arr, dtype=native, order="C")  # a copy (even of size 1)
    return _from_read_only(arr) if not arr.flags.writeable else torch.from_numpy(arr)


def to_numpy(data: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """Numpy arrays of tensors: zero-copy for CPU tensors, a device-to-host copy otherwise."""
    out: dict[str, Any] = {}
    for key, t in data.items():
        if t.dtype not in _TO_NUMPY:
            numpy_dtype(t.dtype, key)
        if t.is_cpu and not t.requires_grad:
            out[key] = t.numpy()  # the usual leaf: half the cost of detach().cpu().numpy()
        else:
            out[key] = t.detach().cpu().numpy()
    return out


def to_device(
    data: Mapping[str, torch.Tensor], device: str | torch.device, non_blocking: bool
) -> dict[str, torch.Tensor]:
    """Move every tensor to ``device``."""
    out = {}
    for key, t in data.items():
        try:
            out[key] = t.to(device, non_blocking=non_blocking)
        except (AssertionError, RuntimeError, TypeError, ValueError) as exc:
            raise BackendError(
                f"cannot move key {key!r} to device {device!r}: {exc}. Check the device "
                "name and that it exists, e.g. `torch.cuda.is_available()`."
            ) from None
    return out


def pin_memory(data: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Page-locked copies of CPU tensors; unchanged when no CUDA device is present."""
    if not torch.cuda.is_available():
        return dict(data)
    return {
        k: t if t.is_cuda or t.is_pinned() else t.pin_memory() for k, t in data.items()
    }


def zeros(
    shapes: Mapping[str, tuple[tuple[int, ...], np.dtype[Any]]], device: str | torch.device | None
) -> dict[str, torch.Tensor]:
    """Zero tensors of the given full shapes and numpy dtypes."""
    return {
        k: torch.zeros(shape, dtype=torch_dtype(dtype, k), device=device)
        for k, (shape, dtype) in shapes.items()
    }


def gather_rows(leaf: torch.Tensor, positions: Any, nb: int) -> torch.Tensor:
    """The rows of ``leaf`` (``nb`` batch dims) at flat batch ``positions`` (a copy)."""
    row = tuple(leaf.shape[nb:])
    flat = leaf.reshape(math.prod(leaf.shape[:nb]), *row)
    index = torch.from_numpy(positions.reshape(-1).copy()).to(leaf.device)
    return flat[index].reshape(*positions.shape, *row)


def scatter_rows(leaf: torch.Tensor, positions: Any, nb: int, value: torch.Tensor) -> None:
    """Write ``value`` (broadcast to the selected rows) at flat batch ``positions``."""
    row = tuple(leaf.shape[nb:])
    # a RuntimeError when the batch dims cannot be flattened without a copy
    flat = leaf.view(math.prod(leaf.shape[:nb]), *row)
    index = torch.from_numpy(positions.reshape(-1).copy()).to(leaf.device)
    rows = torch.broadcast_to(value.to(leaf.dtype), (*positions.shape, *row))
    flat[index] = rows.reshape(index.shape[0], *row)




def tensor_equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Same shape, dtype and values (NaN equals NaN), on any devices."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    a, b = a.detach().cpu(), b.detach().cpu()
    if a.is_floating_point() or a.is_complex():
        return bool(((a == b) | (torch.isnan(a) & torch.isnan(b))).all())
    return bool(torch.equal(a, b))


def as_tensor_like(x: Any, like: torch.Tensor | None, what: str = "value") -> torch.Tensor:
    """``x`` (array-like or tensor) as a tensor on the device of ``like`` (CPU if None)."""
    device = None if like is None else like.device
    try:
        if isinstance(x, np.ndarray):  # a small copy (masks, lengths): native, writable
            x = torch.from_numpy(np.array(x, dtype=x.dtype.newbyteorder("=")))
        return torch.as_tensor(x, device=device)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise BackendError(f"{what} cannot be converted to a torch tensor: {exc}.") from None
