"""Shared hypothesis strategies for the whole repository.

Keyword-only knobs; shapes are drawn before data (as in xarray's ``testing/strategies``).
``batch_sizes`` is shared (``key="batch"``): every strategy of one test case that uses it
draws the same batch size, so independently drawn DictTensors can be combined.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, Literal

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as npst

from rlstructures.dicttensor import DictTensor, Spec, TemporalDictTensor, Trajectories

__all__ = [
    "ARROW_DTYPES",
    "RL_DTYPES",
    "arrow_dtypes",
    "batch_shapes",
    "batch_sizes",
    "dict_tensors",
    "feature_shapes",
    "key_names",
    "leaf_arrays",
    "rl_dtypes",
    "row_indices",
    "specs",
    "temporal_dict_tensors",
    "trajectories",
]

#: The dtypes RL data uses (what a batcher stores).
RL_DTYPES: Final = tuple(np.dtype(d) for d in ("float32", "float64", "int64", "bool", "uint8"))
#: Every numpy dtype that Arrow stores natively (DESIGN.md section 2).
ARROW_DTYPES: Final = tuple(
    np.dtype(d)
    for d in (
        "bool",
        "int8",
        "int16",
        "int32",
        "int64",
        "uint8",
        "uint16",
        "uint32",
        "uint64",
        "float16",
        "float32",
        "float64",
    )
)

#: One batch size per test case, shared by every strategy that uses it.
batch_sizes: st.SearchStrategy[int] = st.shared(st.integers(0, 6), key="batch")


def key_names() -> st.SearchStrategy[str]:
    """Short keys, possibly namespaced with "/"; never "t" or "trajectory" (Arrow index)."""
    return st.text(alphabet="abcdxyz_/", min_size=1, max_size=6)


def feature_shapes(*, min_dims: int = 0, max_dims: int = 2) -> st.SearchStrategy[tuple[int, ...]]:
    """Per-row shapes with small sides, zero included."""
    return npst.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=0, max_side=3)


def batch_shapes(*, min_dims: int = 0, max_dims: int = 3) -> st.SearchStrategy[tuple[int, ...]]:
    """Batch shapes of 0 to 3 dims (sides 0..4)."""
    return npst.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=0, max_side=4)


def rl_dtypes() -> st.SearchStrategy[np.dtype[Any]]:
    """float32, float64, int64, bool, uint8."""
    return st.sampled_from(RL_DTYPES)


def arrow_dtypes() -> st.SearchStrategy[np.dtype[Any]]:
    """Every dtype Arrow round-trips: bool, int8..64, uint8..64, float16/32/64."""
    return st.sampled_from(ARROW_DTYPES)


def specs(
    *,
    min_keys: int = 0,
    max_keys: int = 3,
    dtypes: st.SearchStrategy[np.dtype[Any]] | None = None,
    max_row_dims: int = 2,
) -> st.SearchStrategy[dict[str, Spec]]:
    """``{key: Spec(row_shape, dtype)}`` with unique keys."""
    spec = st.builds(
        Spec, feature_shapes(max_dims=max_row_dims), rl_dtypes() if dtypes is None else dtypes
    )
    return st.dictionaries(key_names(), spec, min_size=min_keys, max_size=max_keys)


def leaf_arrays(dtype: np.dtype[Any], shape: tuple[int, ...]) -> st.SearchStrategy[Any]:
    """Arrays of ``dtype`` and ``shape``; floats include NaN and infinities."""
    return npst.arrays(dtype, shape)


@st.composite
def dict_tensors(
    draw: st.DrawFn,
    *,
    batch_shape: tuple[int, ...] | st.SearchStrategy[tuple[int, ...]] | None = None,
    keys: Sequence[str] | None = None,
    spec: dict[str, Spec] | st.SearchStrategy[dict[str, Spec]] | None = None,
    dtypes: st.SearchStrategy[np.dtype[Any]] | None = None,
    max_row_dims: int = 2,
    backend: Literal["numpy", "torch"] = "numpy",
) -> DictTensor:
    """A DictTensor; batch shape ``(shared batch size,)`` unless given.

    Args:
        batch_shape: a fixed batch shape or a strategy of batch shapes.
        keys: fixed keys (their specs are drawn); exclusive with ``spec``.
        spec: fixed ``{key: Spec}`` or a strategy of those.
        dtypes: strategy of leaf dtypes (default ``rl_dtypes()``).
        max_row_dims: most dims of a row.
        backend: "numpy" or "torch" (torch leaves are zero-copy views of numpy ones).
    """
    if batch_shape is None:
        shape: tuple[int, ...] = (draw(batch_sizes),)
    elif isinstance(batch_shape, tuple):
        shape = batch_shape
    else:
        shape = draw(batch_shape)
    dtype_st = rl_dtypes() if dtypes is None else dtypes
    if spec is None:
        if keys is None:
            spec = draw(specs(dtypes=dtype_st, max_row_dims=max_row_dims))
        else:
            row = st.builds(Spec, feature_shapes(max_dims=max_row_dims), dtype_st)
            spec = {k: draw(row) for k in keys}
    elif not isinstance(spec, dict):
        spec = draw(spec)
    data = {k: draw(leaf_arrays(s.dtype, shape + s.shape)) for k, s in spec.items()}
    dt = DictTensor(data, batch_shape=shape)
    return dt.torch() if backend == "torch" else dt


@st.composite
def temporal_dict_tensors(
    draw: st.DrawFn,
    *,
    max_length: int = 6,
    batch_size: int | None = None,
    spec: dict[str, Spec] | st.SearchStrategy[dict[str, Spec]] | None = None,
    backend: Literal["numpy", "torch"] = "numpy",
) -> TemporalDictTensor:
    """B sequences (B the shared batch size unless given) padded to T <= ``max_length``."""
    b = draw(batch_sizes) if batch_size is None else batch_size
    t = draw(st.integers(0, max_length))
    lengths = draw(npst.arrays(np.int64, (b,), elements=st.integers(0, t)))
    dt = draw(dict_tensors(batch_shape=(b, t), spec=spec))
    tdt = TemporalDictTensor(dt, lengths)
    return tdt.torch() if backend == "torch" else tdt


@st.composite
def trajectories(
    draw: st.DrawFn, *, max_length: int = 6, backend: Literal["numpy", "torch"] = "numpy"
) -> Trajectories:
    """Per-sequence info (keys under "agent_info/") and B sequences, B the shared size."""
    b = draw(batch_sizes)
    info = draw(dict_tensors(batch_shape=(b,))).prefix("agent_info/")
    steps = draw(temporal_dict_tensors(max_length=max_length, batch_size=b))
    traj = Trajectories(info, steps)
    return traj.torch() if backend == "torch" else traj


@st.composite
def row_indices(draw: st.DrawFn, batch_shape: tuple[int, ...]) -> Any:
    """A valid numpy-style row index over ``batch_shape``.

    An int, a slice (any step), an int array (negatives, repeats and empty included), a
    bool mask over the leading batch dims, or a tuple of ints and slices with an optional
    array.
    """
    assert batch_shape, "row_indices needs at least one batch dimension"  # test misuse

    def basic(n: int) -> st.SearchStrategy[Any]:
        return st.one_of(st.slices(n), st.integers(-n, n - 1)) if n else st.slices(n)

    def array(n: int) -> st.SearchStrategy[Any]:
        if not n:
            return st.just(np.zeros(0, np.intp))
        return npst.arrays(np.intp, st.integers(0, 4), elements=st.integers(-n, n - 1))

    kind = draw(st.sampled_from(["basic", "array", "mask", "tuple"]))
    if kind == "basic":
        return draw(basic(batch_shape[0]))
    if kind == "array":
        return draw(array(batch_shape[0]))
    if kind == "mask":
        k = draw(st.integers(1, len(batch_shape)))
        return draw(npst.arrays(np.bool_, batch_shape[:k]))
    k = draw(st.integers(1, len(batch_shape)))
    entries = [draw(basic(n)) for n in batch_shape[:k]]
    if draw(st.booleans()):  # at most one advanced entry (several would have to broadcast)
        i = draw(st.integers(0, k - 1))
        entries[i] = draw(array(batch_shape[i]))
    return tuple(entries)
