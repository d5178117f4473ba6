"""The element views that finish() copies through: same bytes as a plain copy, or None."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rlstructures.batchers._slice_end import as_elements as _rows_as_elements

DTYPES = [np.bool_, np.uint8, np.int16, np.float32, np.int64, np.float64]


@given(
    st.sampled_from(DTYPES),
    st.lists(st.integers(1, 3), max_size=2).map(tuple),
    st.integers(1, 3),
    st.integers(1, 4),
)
def test_a_transposed_copy_through_element_views_equals_the_plain_copy(
    dtype: type, row: tuple[int, ...], n: int, t: int
) -> None:
    rng = np.random.default_rng(0)
    stage: np.ndarray[Any, Any] = rng.integers(0, 100, size=(t + 1, n, *row)).astype(dtype)
    expected = np.ascontiguousarray(stage[:t].swapaxes(0, 1))
    out: np.ndarray[Any, Any] = np.zeros((n, t, *row), dtype)
    el_stage, el_out = _rows_as_elements(stage, 2), _rows_as_elements(out, 2)
    nbytes = np.dtype(dtype).itemsize * int(np.prod(row, dtype=np.int64))
    if nbytes not in (1, 2, 4, 8, 16):
        assert el_stage is None
        return
    assert el_stage is not None
    assert el_out is not None
    assert el_stage.shape == (t + 1, n)
    assert np.shares_memory(el_stage, stage)
    np.copyto(el_out, el_stage[:t].swapaxes(0, 1))
    assert out.tobytes() == expected.tobytes()


def test_rows_that_are_not_contiguous_get_no_element_view() -> None:
    arr = np.zeros((3, 2, 4), np.float32)[:, :, ::2]  # rows of 2 floats, 8 bytes apart
    assert _rows_as_elements(arr, 2) is None
    assert _rows_as_elements(np.zeros((3, 2, 3), np.float32), 2) is None  # 12 bytes


@pytest.mark.parametrize("lead", [1, 2])
def test_scalar_rows_view_whatever_the_strides(lead: int) -> None:
    arr = np.arange(24, dtype=np.float32).reshape(4, 6)[:, ::2]
    view = _rows_as_elements(arr, 2) if lead == 2 else _rows_as_elements(arr[:, 0], 1)
    assert view is not None
    assert view.dtype == np.uint32
