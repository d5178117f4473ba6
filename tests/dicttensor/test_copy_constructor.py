"""DictTensor(other): a shallow copy (new mapping, same arrays, same batch shape)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlstructures.dicttensor import BatchShapeError, DictTensor
from tests.strategies import batch_shapes, dict_tensors


def assert_shallow_copy(copy: DictTensor, dt: DictTensor) -> None:
    """A new DictTensor and mapping over the very same leaves, with dt's batch shape."""
    assert copy is not dt
    assert copy.batch_shape == dt.batch_shape
    assert list(copy.keys()) == list(dt.keys())
    for k in dt.keys():
        assert copy[k] is dt[k], k
    assert copy.backend == dt.backend
    assert copy.equal(dt)


@settings(max_examples=40, deadline=None)
@given(dt=dict_tensors(batch_shape=batch_shapes(min_dims=0, max_dims=3)))
def test_a_shallow_copy_for_any_batch_shape(dt: DictTensor) -> None:
    copy = DictTensor(dt)
    assert_shallow_copy(copy, dt)
    assert_shallow_copy(DictTensor(dt, batch_shape=dt.batch_shape), dt)
    keys = list(dt.keys())
    # a new mapping: adding or replacing a key on the copy leaves dt as it was
    copy["__new"] = np.zeros(dt.batch_shape, np.float32)
    assert "__new" not in dt
    assert list(dt.keys()) == keys
    if keys:
        before = dt[keys[0]]
        copy[keys[0]] = np.ones((*dt.batch_shape, 2), np.int8)
        assert dt[keys[0]] is before


@pytest.mark.parametrize("batch_shape", [(0,), (3,), (3, 4), (2, 0, 5), ()])
def test_an_empty_dict_tensor_keeps_its_batch_shape(batch_shape: tuple[int, ...]) -> None:
    dt = DictTensor({}, batch_shape=batch_shape)
    copy = DictTensor(dt)
    assert copy.batch_shape == batch_shape
    assert not copy.keys()
    copy["x"] = np.zeros(batch_shape)
    assert not dt.keys()
    assert DictTensor(dt, batch_shape=batch_shape).batch_shape == batch_shape


def test_2d_batch_shape_is_kept_not_inferred() -> None:
    dt = DictTensor({"obs": np.zeros((3, 4, 5)), "r": np.zeros((3, 4))}, batch_shape=(3, 4))
    copy = DictTensor(dt)
    assert copy.batch_shape == (3, 4)  # not (3,), which the first leaf alone would give
    assert_shallow_copy(copy, dt)
    assert copy[1].batch_shape == (4,)


def test_writes_into_shared_arrays_show_in_both() -> None:
    dt = DictTensor({"a": np.zeros((3, 2)), "b": np.arange(3)})
    copy = DictTensor(dt)
    copy["a"][1] = 7.0
    copy[2] = DictTensor({"a": np.full((1, 2), 5.0), "b": np.array([9])})[0]
    np.testing.assert_array_equal(dt["a"], [[0, 0], [7, 7], [5, 5]])
    np.testing.assert_array_equal(dt["b"], [0, 1, 9])


@pytest.mark.parametrize(
    ("batch_shape", "new"),
    [((3, 4), (3,)), ((3, 4), [3, 4]), ((3, 4), 3), ((2, 3, 4), (2, 3)), ((5,), ())],
)
def test_a_valid_different_batch_shape_is_validated_and_used(
    batch_shape: tuple[int, ...], new: Any
) -> None:
    dt = DictTensor({"x": np.zeros((*batch_shape, 2)), "y": np.ones(batch_shape, np.int64)},
                    batch_shape=batch_shape)
    copy = DictTensor(dt, batch_shape=new)
    expected = (new,) if isinstance(new, int) else tuple(new)
    assert copy.batch_shape == expected
    assert copy["x"] is dt["x"]
    assert dt.batch_shape == batch_shape


@pytest.mark.parametrize(
    ("batch_shape", "new"),
    [((3, 4), (4,)), ((3, 4), (3, 5)), ((3, 4), (3, 4, 2, 7)), ((3,), (2,)), ((3,), 4)],
)
def test_a_wrong_batch_shape_is_a_batch_shape_error(batch_shape: tuple[int, ...], new: Any) -> None:
    dt = DictTensor({"x": np.zeros((*batch_shape, 2))}, batch_shape=batch_shape)
    with pytest.raises(BatchShapeError):
        DictTensor(dt, batch_shape=new)


@settings(max_examples=30, deadline=None)
@given(
    dt=dict_tensors(batch_shape=batch_shapes(min_dims=1, max_dims=3)),
    data=st.data(),
)
def test_a_batch_shape_prefix_works_and_a_wrong_one_raises(
    dt: DictTensor, data: st.DataObject
) -> None:
    """Any prefix of the batch shape is a valid batch shape; a changed side is not."""
    n = data.draw(st.integers(0, len(dt.batch_shape)))
    prefix = dt.batch_shape[:n]
    copy = DictTensor(dt, batch_shape=prefix)
    assert copy.batch_shape == prefix
    for k in dt.keys():
        assert copy[k] is dt[k]
    if dt.keys() and n:
        wrong = (*prefix[:-1], prefix[-1] + data.draw(st.integers(1, 3)))
        with pytest.raises(BatchShapeError):
            DictTensor(dt, batch_shape=wrong)


def test_other_errors_are_unchanged() -> None:
    with pytest.raises(TypeError, match="mapping"):
        DictTensor([("a", np.zeros(2))])  # type: ignore[arg-type]  # the point of the test
    dt = DictTensor({"a": np.zeros(3)})
    with pytest.raises((TypeError, ValueError)):
        DictTensor(dt, batch_shape=(-1,))


@pytest.mark.parametrize(("n", "bad"), [(3, (3.0,)), (3, (np.float64(3.0),)), (1, (True,))])
def test_a_non_int_batch_shape_is_refused_as_for_a_mapping(n: int, bad: Any) -> None:
    with pytest.raises(TypeError, match="must be an int"):
        DictTensor({"a": np.zeros(n)}, batch_shape=bad)
    with pytest.raises(TypeError, match="must be an int"):
        DictTensor(DictTensor({"a": np.zeros(n)}), batch_shape=bad)


# ---------------------------------------------------------------------- torch leaves
def test_torch_leaves_are_shared_too() -> None:
    torch = pytest.importorskip("torch")
    dt = DictTensor({"a": torch.zeros(3, 4, 2), "b": torch.arange(12).reshape(3, 4)},
                    batch_shape=(3, 4))
    copy = DictTensor(dt)
    assert_shallow_copy(copy, dt)
    assert copy.backend == "torch"
    copy["c"] = torch.ones(3, 4)
    assert "c" not in dt
    copy["a"][0, 0] = 5.0
    assert float(dt["a"][0, 0, 0]) == 5.0
    prefix = DictTensor(dt, batch_shape=(3,))
    assert prefix.batch_shape == (3,)
    assert prefix["a"] is dt["a"]
    with pytest.raises(BatchShapeError):
        DictTensor(dt, batch_shape=(4,))


def test_torch_views_from_numpy_keep_their_batch_shape() -> None:
    pytest.importorskip("torch")
    dt = DictTensor({"x": np.zeros((2, 3, 1), np.float32)}, batch_shape=(2, 3)).torch()
    assert_shallow_copy(DictTensor(dt), dt)
    assert_shallow_copy(DictTensor(dt, batch_shape=(2, 3)), dt)
