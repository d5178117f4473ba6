"""Properties and unit tests of DictTensor (numpy backend; torch in test_torch_views.py)."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as npst

from rlstructures.dicttensor import (
    BatchIndexError,
    DictTensor,
    KeyMismatchError,
    Spec,
)
from tests.strategies import (
    batch_shapes,
    batch_sizes,
    dict_tensors,
    feature_shapes,
    row_indices,
    specs,
)


def leaf_key(index: Any) -> Any:
    """What numpy applies to a leaf for the row index ``index``."""
    return (*index, Ellipsis) if isinstance(index, tuple) else (index, Ellipsis)


def assert_leaf_equal(actual: Any, expected: Any) -> None:
    assert isinstance(actual, np.ndarray), type(actual)
    assert actual.dtype == expected.dtype
    assert actual.shape == expected.shape
    np.testing.assert_array_equal(actual, expected)


def assert_valid(dt: DictTensor) -> None:
    """The DictTensor invariants: every leaf an ndarray starting with batch_shape."""
    nb = len(dt.batch_shape)
    for value in dt.values():
        assert isinstance(value, np.ndarray)
        assert value.shape[:nb] == dt.batch_shape


# ---------------------------------------------------------------------- construction
@given(dict_tensors())
def test_construction_properties(dt: DictTensor) -> None:
    assert_valid(dt)
    assert len(dt) == dt.n_elems() == dt.batch_shape[0]
    assert dt.backend == "numpy"
    assert list(dt.keys()) == list(dt.to_dict())
    assert all(k in dt for k in dt.keys())
    assert "not-a-key" not in dt
    assert [v is dt[k] for k, v in dt.items()] == [True] * len(dt.keys())
    rebuilt = DictTensor(dt.to_dict(), batch_shape=dt.batch_shape)
    assert rebuilt.equal(dt)
    assert DictTensor(dt).batch_shape == dt.batch_shape
    for key in dt.keys():
        assert repr(key) in repr(dt)


@given(dict_tensors(batch_shape=batch_shapes(min_dims=2)))
def test_copy_constructor_keeps_multi_dim_batch_shape(dt: DictTensor) -> None:
    assert DictTensor(dt).batch_shape == dt.batch_shape
    assert DictTensor(dt).equal(dt)


def test_default_batch_shape_is_the_first_leading_dim() -> None:
    dt = DictTensor({"obs": np.zeros((5, 2, 3)), "r": np.zeros((5, 7))})
    assert dt.batch_shape == (5,)
    assert DictTensor().batch_shape == (0,)
    assert DictTensor({}, batch_shape=3).batch_shape == (3,)
    assert DictTensor({"x": np.zeros((2, 3))}, batch_shape=(2, 3)).batch_shape == (2, 3)
    assert DictTensor({"x": np.zeros((2, 3))}, batch_shape=np.int64(2)).batch_shape == (2,)
    assert DictTensor({"x": np.zeros(4)}, batch_shape=()).batch_shape == ()
    assert len(DictTensor()) == 0


def test_constructor_copies_the_mapping_not_the_arrays() -> None:
    x = np.zeros(3)
    data = {"x": x}
    dt = DictTensor(data)
    data["y"] = np.ones(3)
    assert list(dt.keys()) == ["x"]
    assert dt["x"] is x


# ---------------------------------------------------------------------- indexing
@given(st.data(), dict_tensors(batch_shape=batch_shapes(min_dims=1)))
def test_row_index_agrees_with_numpy_on_every_leaf(data: st.DataObject, dt: DictTensor) -> None:
    index = data.draw(row_indices(dt.batch_shape))
    out = dt[index]
    assert_valid(out)
    assert out.batch_shape == np.empty(dt.batch_shape)[leaf_key(index)].shape
    assert list(out.keys()) == list(dt.keys())
    for key, leaf in dt.items():
        assert_leaf_equal(out[key], leaf[leaf_key(index)])


@given(dict_tensors(batch_shape=batch_shapes(min_dims=1)))
def test_int_index_removes_a_dim_and_keeps_arrays(dt: DictTensor) -> None:
    if dt.batch_shape[0] == 0:
        with pytest.raises(BatchIndexError, match="out of bounds"):
            dt[0]
        return
    for i in (0, -1, np.int64(0), np.array(0)):
        row = dt[i]
        assert row.batch_shape == dt.batch_shape[1:]
        for key, leaf in dt.items():
            assert_leaf_equal(row[key], leaf[int(i), ...])


@given(dict_tensors())
def test_slices_are_views_and_fancy_indices_copy(dt: DictTensor) -> None:
    view, copied = dt[1:], dt[np.arange(len(dt))]
    for key, leaf in dt.items():
        if view[key].size:
            assert np.shares_memory(view[key], leaf)
        assert not np.shares_memory(copied[key], leaf)


@given(dict_tensors())
def test_iteration_yields_rows_like_numpy(dt: DictTensor) -> None:
    rows = list(dt)
    assert len(rows) == len(dt)
    for i, row in enumerate(rows):
        assert row.equal(dt[i])


def test_a_single_row_has_no_len_and_no_row_index() -> None:
    row = DictTensor({"x": np.arange(3)})[1]
    assert row.batch_shape == ()
    with pytest.raises(TypeError, match=r"batch_shape \(\)"):
        len(row)
    with pytest.raises(TypeError):
        list(row)
    with pytest.raises(BatchIndexError, match=r"batch_shape \(\)"):
        row[0]
    assert row["x"].shape == ()


@given(st.data(), dict_tensors(batch_shape=batch_shapes(min_dims=1)))
def test_index_on_a_dict_tensor_without_keys(data: st.DataObject, dt: DictTensor) -> None:
    empty = DictTensor({}, batch_shape=dt.batch_shape)
    index = data.draw(row_indices(dt.batch_shape))
    assert empty[index].batch_shape == dt[index].batch_shape


@given(st.data(), dict_tensors(batch_shape=batch_shapes(min_dims=1)))
def test_setitem_rows_agrees_with_numpy(data: st.DataObject, dt: DictTensor) -> None:
    index = data.draw(row_indices(dt.batch_shape))
    rows_shape = dt[index].batch_shape
    spec = dt.specs()
    other = data.draw(dict_tensors(batch_shape=rows_shape, spec=spec))
    target = dt.clone()
    target[index] = other
    for key, leaf in dt.items():
        expected = leaf.copy()
        expected[leaf_key(index)] = other[key]
        assert_leaf_equal(target[key], expected)


def test_setitem_rows_broadcasts_and_casts_within_kind() -> None:
    dt = DictTensor({"x": np.zeros((4, 2), np.float32)})
    dt[1:3] = DictTensor({"x": np.ones(2)}, batch_shape=())  # float64 row, broadcast
    np.testing.assert_array_equal(dt["x"][:, 0], [0, 1, 1, 0])
    assert dt["x"].dtype == np.float32


def test_setitem_leaf_adds_and_replaces() -> None:
    dt = DictTensor({"x": np.zeros(3)})
    dt["y"] = np.ones((3, 2))
    dt["x"] = np.arange(3)
    assert sorted(dt.keys()) == ["x", "y"]
    np.testing.assert_array_equal(dt["x"], [0, 1, 2])


# ---------------------------------------------------------------------- cat / stack
@st.composite
def parts_with_one_spec(draw: st.DrawFn, *, dim: int = 0) -> list[DictTensor]:
    """1 to 4 DictTensors with one spec whose batch shapes differ only on ``dim``."""
    spec = draw(specs())
    head = (draw(st.integers(0, 3)),) * dim
    n = draw(st.integers(1, 4))
    return [
        draw(dict_tensors(batch_shape=(*head, draw(st.integers(0, 4))), spec=spec))
        for _ in range(n)
    ]


@given(parts_with_one_spec())
def test_cat_then_slicing_gives_the_parts_back(parts: list[DictTensor]) -> None:
    out = DictTensor.cat(parts)
    assert_valid(out)
    assert len(out) == sum(len(p) for p in parts)
    start = 0
    for part in parts:
        assert out[start : start + len(part)].equal(part)
        start += len(part)


@given(parts_with_one_spec(dim=1))
def test_cat_along_dim_1_and_negative_dims(parts: list[DictTensor]) -> None:
    out = DictTensor.cat(parts, dim=1)
    assert_valid(out)
    assert out.equal(DictTensor.cat(parts, dim=-1))
    start = 0
    for part in parts:
        n = part.batch_shape[1]
        assert out[:, start : start + n].equal(part)
        start += n


@given(st.data(), batch_sizes, st.integers(1, 4))
def test_stack_then_index_gives_the_items(data: st.DataObject, b: int, n: int) -> None:
    spec = data.draw(specs())
    shape = data.draw(batch_shapes(max_dims=2))
    parts = [data.draw(dict_tensors(batch_shape=shape, spec=spec)) for _ in range(n)]
    for dim in range(len(shape) + 1):
        out = DictTensor.stack(parts, dim=dim)
        assert_valid(out)
        assert out.batch_shape == (*shape[:dim], n, *shape[dim:])
        for i, part in enumerate(parts):
            assert out[(slice(None),) * dim + (i,)].equal(part)
        assert out.equal(DictTensor.stack(parts, dim=dim - len(shape) - 1))


def test_cat_and_stack_of_dict_tensors_without_keys() -> None:
    a, b = DictTensor({}, batch_shape=2), DictTensor({}, batch_shape=3)
    assert DictTensor.cat([a, b]).batch_shape == (5,)
    assert DictTensor.stack([a, a, a]).batch_shape == (3, 2)
    assert DictTensor.cat(iter([a, b])).batch_shape == (5,)  # any iterable


# ---------------------------------------------------------------------- copies, pickle
@given(dict_tensors(batch_shape=batch_shapes()))
def test_clone_is_deep(dt: DictTensor) -> None:
    before = {k: v.copy() for k, v in dt.items()}
    twin = dt.clone()
    assert twin.equal(dt)
    for key, leaf in dt.items():
        assert twin[key] is not leaf
        assert not np.shares_memory(twin[key], leaf)
        twin[key][...] = 1
        assert_leaf_equal(leaf, before[key])


@given(dict_tensors(batch_shape=batch_shapes()))
def test_pickle_and_deepcopy_round_trip(dt: DictTensor) -> None:
    for back in (pickle.loads(pickle.dumps(dt)), copy.deepcopy(dt)):
        assert isinstance(back, DictTensor)
        assert back.batch_shape == dt.batch_shape
        assert back.equal(dt)


# ---------------------------------------------------------------------- where, specs, zeros
@given(st.data(), dict_tensors(batch_shape=batch_shapes()))
def test_where_agrees_with_numpy(data: st.DataObject, dt: DictTensor) -> None:
    other = data.draw(dict_tensors(batch_shape=dt.batch_shape, spec=dt.specs()))
    mask = data.draw(npst.arrays(np.bool_, dt.batch_shape))
    out = dt.where(mask, other)
    nb = len(dt.batch_shape)
    for key, leaf in dt.items():
        expected = np.where(mask.reshape(mask.shape + (1,) * (leaf.ndim - nb)), leaf, other[key])
        assert_leaf_equal(out[key], expected)
    if mask.size or nb == 1:  # `tolist()` of an empty 2-D mask is `[]`, which is 1-D
        assert dt.where(mask.tolist(), other).equal(out)


@given(dict_tensors(batch_shape=batch_shapes()))
def test_zeros_of_specs_has_the_same_specs(dt: DictTensor) -> None:
    zeros = DictTensor.zeros(dt.specs(), dt.batch_shape)
    assert zeros.batch_shape == dt.batch_shape
    assert zeros.specs() == dt.specs()
    for key, leaf in dt.items():
        assert_leaf_equal(zeros[key], np.zeros_like(leaf))


@given(feature_shapes(), st.sampled_from(["float32", "int64", "bool"]))
def test_spec_normalises_shape_and_dtype(shape: tuple[int, ...], dtype: str) -> None:
    spec = Spec(list(shape), dtype)
    assert spec == Spec(shape, np.dtype(dtype))
    assert spec.shape == shape
    assert spec.dtype == np.dtype(dtype)
    assert hash(spec) == hash(Spec(shape, dtype))
    if len(shape) == 1:
        assert Spec(shape[0], dtype) == spec  # an int is a 1-D shape, as in numpy


# ---------------------------------------------------------------------- key namespaces
@given(dict_tensors(), st.sampled_from(["a/", "obs/", ""]))
def test_prefix_and_select_prefix_are_inverse(dt: DictTensor, prefix: str) -> None:
    prefixed = dt.prefix(prefix)
    assert all(k.startswith(prefix) for k in prefixed.keys())
    assert prefixed.select_prefix(prefix).equal(dt)
    for key in dt.keys():
        assert prefixed[prefix + key] is dt[key]


@given(st.data(), dict_tensors())
def test_select_exclude_and_merge_partition_the_keys(data: st.DataObject, dt: DictTensor) -> None:
    keys = sorted(dt.keys())
    chosen = data.draw(st.lists(st.sampled_from(keys), unique=True) if keys else st.just([]))
    selected, rest = dt.select(chosen), dt.exclude(chosen)
    assert list(selected.keys()) == chosen
    assert set(rest.keys()) == set(keys) - set(chosen)
    assert (selected | rest).equal(dt)
    if chosen:
        with pytest.raises(KeyMismatchError, match=repr(chosen[0])):
            selected | dt


def test_select_and_exclude_take_a_single_str() -> None:
    dt = DictTensor({"ab": np.zeros(2), "c": np.zeros(2)})
    assert list(dt.select("ab").keys()) == ["ab"]
    assert list(dt.exclude("ab").keys()) == ["c"]
    assert list(dt.select_prefix("a").keys()) == ["b"]


# ---------------------------------------------------------------------- equal
def test_equal_treats_nan_as_equal_and_compares_everything() -> None:
    a = DictTensor({"x": np.array([1.0, np.nan]), "i": np.array([1, 2])})
    assert a.equal(a.clone())
    assert not a.equal(DictTensor({"x": np.array([1.0, 2.0]), "i": np.array([1, 2])}))
    assert not a.equal(DictTensor({"x": np.array([1.0, np.nan], np.float32),
                                   "i": np.array([1, 2])}))
    assert not a.equal(a.select("x"))
    assert not a.equal(a[:1])
    assert not a.equal({"x": a["x"], "i": a["i"]})
    assert not a.equal(DictTensor({"x": np.array([[1.0, np.nan]]), "i": np.array([[1, 2]])},
                                  batch_shape=(1,))[0])


@given(dict_tensors(batch_shape=batch_shapes()))
def test_equal_detects_any_changed_value(dt: DictTensor) -> None:
    for key, leaf in dt.items():
        if leaf.size == 0:
            continue
        changed = dt.clone()
        flat = changed[key].reshape(-1)
        first = leaf.reshape(-1)[0]
        flat[0] = (not first) if leaf.dtype == np.bool_ else (0 if first != 0 else 1)
        assert not changed.equal(dt)
        assert dt.equal(dt.clone())
