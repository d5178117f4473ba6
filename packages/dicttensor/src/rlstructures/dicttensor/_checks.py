"""Validation shared by DictTensor and TemporalDictTensor: leaves, batch shapes, indices.

Every function here raises an error of ``errors.py`` whose message names the key (or the
argument), the expected and the actual value, and how to fix it.
"""

from __future__ import annotations

import math
import operator
import sys
from collections.abc import Iterable, Mapping
from typing import Any, Final, NoReturn

import numpy as np

from rlstructures.dicttensor._backend import Backend, is_tensor
from rlstructures.dicttensor.errors import (
    BackendError,
    BatchIndexError,
    BatchShapeError,
    KeyMismatchError,
    SpecMismatchError,
)

__all__ = [
    "batch_positions",
    "batch_shape_arg",
    "torch_needs_gather",
    "index_error",
    "index_repr",
    "check_leaves",
    "dim_arg",
    "hot_batch_shape",
    "int_arg",
    "leaf_backend",
    "missing_key_msg",
    "raise_spec_mismatch",
    "row_key",
    "same_keys",
    "spec_str",
]

NOT_LEAF: Final = (
    "key {key!r} holds a {kind}, but DictTensor leaves must be numpy arrays or torch tensors. "
    "Wrap it, e.g. `np.asarray(value)`."
)
INDEX_KINDS: Final = (
    "use a str key, an int, a slice, an int or bool array (or list), or a tuple of those over "
    "the batch dimensions"
)


def int_arg(name: str, value: object) -> int:
    """``value`` as an int (Python or numpy integer); bools and floats are a TypeError."""
    if type(value) is int:
        return value
    if isinstance(value, (bool, np.bool_)) or not hasattr(value, "__index__"):
        raise TypeError(f"{name} must be an int, got {value!r} ({type(value).__name__}).")
    return operator.index(value)


def batch_shape_arg(batch_shape: object, name: str = "batch_shape") -> tuple[int, ...]:
    """Normalise an int or a sequence of ints to a tuple of non-negative ints."""
    if type(batch_shape) is tuple and len(batch_shape) == 1:  # the hot case: (n,), no ABC checks
        (first,) = batch_shape
        if type(first) is int and first >= 0:
            return batch_shape
    if isinstance(batch_shape, (str, bytes)) or not (
        hasattr(batch_shape, "__index__") or isinstance(batch_shape, Iterable)
    ):
        raise TypeError(
            f"{name} must be an int or a tuple of ints, got {batch_shape!r} "
            f"({type(batch_shape).__name__})."
        )
    if isinstance(batch_shape, Iterable):
        dims = tuple(int_arg(f"{name} entry", d) for d in batch_shape)
    else:
        dims = (int_arg(name, batch_shape),)
    if any(d < 0 for d in dims):
        raise BatchShapeError(f"{name} must hold non-negative sizes, got {dims}.")
    return dims


def dim_arg(dim: object, ndim: int, op: str) -> int:
    """A batch dimension in ``[-ndim, ndim)``, normalised to ``[0, ndim)``."""
    d = int_arg(f"{op} dim", dim)
    if not -ndim <= d < ndim:
        raise BatchShapeError(
            f"{op}: dim={d} is out of range for {ndim} batch dimension(s); "
            f"use a dim in [{-ndim}, {ndim - 1}]."
        )
    return d + ndim if d < 0 else d


def leaf_backend(key: str, value: object) -> Backend:
    """``"numpy"`` or ``"torch"`` for a leaf; a BackendError for anything else."""
    if isinstance(value, np.ndarray):
        return "numpy"
    if is_tensor(value):
        return "torch"
    raise BackendError(NOT_LEAF.format(key=key, kind=type(value).__name__))


def hot_batch_shape(items: dict[str, Any], batch_shape: object) -> tuple[int] | None:
    """The batch shape of ``items`` when they are plainly valid with one batch dim, else None.

    The hot case of ``DictTensor(dict, batch_shape=None | (n,))``, checked in a few
    attribute reads per leaf: str keys, leaves all of type ``np.ndarray`` or all of type
    ``torch.Tensor`` (exactly, no subclass), each starting with ``batch_shape`` (None: the
    first leaf's first dimension). None sends the caller to ``check_leaves``, which says
    what is wrong (or accepts the rarer valid cases).
    """
    kind: Any = None
    if batch_shape is None:
        for first in items.values():
            kind = type(first)
            if kind is not np.ndarray and not _is_tensor_type(kind):
                return None
            if not first.shape:
                return None
            want: tuple[int] = (int(first.shape[0]),)
            break
        else:
            return None  # no leaf: the general path gives (0,)
    elif (
        type(batch_shape) is tuple
        and len(batch_shape) == 1
        and type(batch_shape[0]) is int
        and batch_shape[0] >= 0
    ):
        want = batch_shape
    else:
        return None
    for key, value in items.items():
        if kind is None:
            kind = type(value)
            if kind is not np.ndarray and not _is_tensor_type(kind):
                return None
        if type(key) is not str or type(value) is not kind or value.shape[:1] != want:
            return None
    return want


def _is_tensor_type(kind: type) -> bool:
    """Whether ``kind`` is ``torch.Tensor`` itself (never imports torch)."""
    mod = sys.modules.get("torch")
    return mod is not None and kind is mod.Tensor


def check_leaves(data: Mapping[str, Any], batch_shape: tuple[int, ...]) -> Backend | None:
    """Validate keys, leaf types, a single backend and the batch shape of every leaf.

    Returns:
        The backend of the leaves, None when ``data`` is empty.
    """
    nb = len(batch_shape)
    backend: Backend | None = None
    first_key = ""
    for key, value in data.items():
        if type(key) is not str:
            raise TypeError(
                f"DictTensor keys must be str, got {key!r} ({type(key).__name__}). "
                "Convert it, e.g. `str(key)`."
            )
        kind: Backend = "numpy" if type(value) is np.ndarray else leaf_backend(key, value)
        if backend is None:
            backend, first_key = kind, key
        elif kind != backend:
            raise BackendError(
                f"key {key!r} is a {kind} leaf but key {first_key!r} is a {backend} leaf: a "
                "DictTensor holds one backend. Convert one side with `DictTensor.torch()` or "
                "`.numpy()` first."
            )
        if value.shape[:nb] != batch_shape or value.ndim < nb:
            raise BatchShapeError(
                f"key {key!r} has shape {tuple(value.shape)}, which does not start with the "
                f"batch shape {batch_shape}. Every leaf must have the batch dimensions first "
                "(give `batch_shape=` explicitly, or reshape the leaf); store per-sequence "
                "values in a separate DictTensor."
            )
    return backend


def missing_key_msg(key: object, keys: Iterable[str]) -> str:
    """The message of a KeyError for ``key``."""
    return f"no key {key!r} in this DictTensor; its keys are {sorted(keys)}."


def same_keys(a: Mapping[str, Any], b: Mapping[str, Any], op: str) -> None:
    """A KeyMismatchError unless ``a`` and ``b`` hold the same keys."""
    if a.keys() != b.keys():
        missing = sorted(a.keys() - b.keys())
        extra = sorted(b.keys() - a.keys())
        raise KeyMismatchError(
            f"{op}: the DictTensors hold different keys (missing from the other: {missing}; "
            f"extra in the other: {extra}). Use `.select(...)` or `.exclude(...)` to align them."
        )


def spec_str(value: Any, nb: int) -> str:
    """``float32[4]``: the dtype and per-row shape of a leaf with ``nb`` batch dims."""
    return f"{str(value.dtype).replace('torch.', '')}{list(value.shape[nb:])}"


def raise_spec_mismatch(key: str, arrays: list[Any], nbs: list[int], op: str) -> NoReturn:
    """Raise the SpecMismatchError of ``op`` for leaves that do not share a row spec."""
    specs = [spec_str(a, nb) for a, nb in zip(arrays, nbs, strict=True)]
    raise SpecMismatchError(
        f"{op}: key {key!r} has different row specs (dtype[row shape]) across parts: {specs}. "
        "All parts must share per-row shape and dtype; cast them first (e.g. "
        "`x.astype(np.float32)`)."
    )


# ---------------------------------------------------------------------- row indices
def _entry(entry: Any, numpy_backend: bool) -> tuple[Any, int]:
    """One index entry ready for the leaves, and how many batch dims it consumes."""
    kind = type(entry)
    if kind is int or kind is slice:
        return entry, 1
    if kind is bool or kind is np.bool_ or entry is None or entry is Ellipsis or kind is str:
        raise BatchIndexError(
            f"unsupported DictTensor row index {entry!r} ({kind.__name__}): {INDEX_KINDS}. "
            "A bool selects nothing here; for a leaf use `dt[key]`."
        )
    if isinstance(entry, np.integer):
        return entry, 1
    if isinstance(entry, (list, range)):
        arr = np.asarray(entry)
        entry = arr.astype(np.intp) if arr.size == 0 else arr
    elif is_tensor(entry):
        if not numpy_backend:
            return entry, _mask_dims(entry) if entry.dtype == sys.modules["torch"].bool else 1
        entry = entry.detach().cpu().numpy()
    if isinstance(entry, np.ndarray):
        if entry.dtype.kind == "b":
            return entry, _mask_dims(entry)
        if entry.dtype.kind in "USO":
            raise BatchIndexError(
                f"row indices must be ints or bools, got an array of {entry.dtype}; to keep "
                "some keys use `dt.select([...])`, to read one leaf `dt[key]`."
            )
    return entry, 1  # an int array, or something the leaves reject (the caller wraps it)


def _mask_dims(entry: Any) -> int:
    """The number of batch dims a bool mask covers (a 0-d mask is an error)."""
    if entry.ndim == 0:
        raise BatchIndexError(f"a 0-d bool index selects nothing along the batch: {INDEX_KINDS}.")
    return int(entry.ndim)


def row_key(index: Any, batch_shape: tuple[int, ...], numpy_backend: bool) -> Any:
    """The index to apply to each leaf for the DictTensor row index ``index``.

    Integer entries get a trailing ``...`` so that rows stay arrays (never numpy scalars),
    torch indices become numpy for numpy leaves, and an index may not reach into the rows.

    Raises:
        BatchIndexError: the index has an unsupported type or more dims than the batch.
    """
    nb = len(batch_shape)
    if nb == 0:
        raise BatchIndexError(
            f"cannot index rows with {index_repr(index)}: this DictTensor has batch_shape () "
            "(a single row, e.g. from an int index). Index a leaf instead: `dt[key][...]`."
        )
    if type(index) is tuple:
        if len(index) > nb:
            raise BatchIndexError(
                f"index {index_repr(index)} has {len(index)} entries but this DictTensor has "
                f"only {nb} batch dimension(s) {batch_shape}; to index inside a leaf use "
                "`dt[key][...]`."
            )
        entries, used = [], 0
        for item in index:
            entry, n = _entry(item, numpy_backend)
            entries.append(entry)
            used += n
        key: Any = (*entries, Ellipsis)
    else:
        entry, used = _entry(index, numpy_backend)
        key = entry if type(entry) is slice else (entry, Ellipsis)
    if used > nb:
        raise BatchIndexError(
            f"index {index_repr(index)} covers {used} dimensions but the batch shape is "
            f"{batch_shape}; a bool mask must have at most the batch dimensions."
        )
    return key


def index_repr(index: Any) -> str:
    """A short description of an index (arrays by dtype and shape, not by value)."""
    if isinstance(index, tuple):
        return "(" + ", ".join(index_repr(i) for i in index) + ")"
    shape = getattr(index, "shape", None)
    if shape is not None and len(shape) > 0:
        return f"{type(index).__name__} of {index.dtype} {tuple(shape)}"
    text = repr(index)
    return text if len(text) <= 60 else text[:57] + "..."


def index_error(index: Any, batch_shape: tuple[int, ...], exc: Exception) -> BatchIndexError:
    """The BatchIndexError for an index that the leaves rejected with ``exc``."""
    return BatchIndexError(
        f"cannot select rows {index_repr(index)} of a DictTensor with batch_shape "
        f"{batch_shape}: {exc}. Indices must fit the batch shape; {INDEX_KINDS}."
    )


def torch_needs_gather(key: Any) -> bool:
    """True when torch would not select the rows numpy selects with the leaf index ``key``.

    Torch has no negative strides (a slice with a negative step fails), and it treats an int
    as a basic index where numpy treats it as an advanced one when arrays are present: with
    an int, a slice and an array in one index, numpy moves the array dims first, torch not.
    """
    entries = key if type(key) is tuple else (key,)
    has_int = has_slice = has_array = False
    for entry in entries:
        kind = type(entry)
        if kind is slice:
            if entry.step is not None and entry.step < 0:
                return True
            has_slice = True
        elif kind is int or isinstance(entry, np.integer) or getattr(entry, "ndim", 1) == 0:
            has_int = True
        elif entry is not Ellipsis:
            has_array = True
    return has_int and has_slice and has_array


def batch_positions(index: Any, batch_shape: tuple[int, ...]) -> Any:
    """The flat row-major positions of the rows that numpy selects with ``index``.

    Returns:
        An intp array of the shape of the selected batch (what ``dt[index].batch_shape``
        is); used to gather or scatter torch rows for indices torch cannot take.
    """
    key = row_key(index, batch_shape, True)
    try:
        positions = np.arange(math.prod(batch_shape)).reshape(batch_shape)[key]
    except (IndexError, TypeError, ValueError) as exc:
        raise index_error(index, batch_shape, exc) from None
    return positions.copy()  # fresh memory: torch rejects negative strides, even of size 1
