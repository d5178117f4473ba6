"""Padding zeroes the steps past each length, whatever the rows' byte sizes and layouts.

``EnvSide.finish`` runs it where the slice was collected; ``OutputPool.fill`` then copies
the buffer as it is (``test_output_buffers`` checks what ``get()`` returns end to end).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from hypothesis import given
from hypothesis import strategies as st

from rlstructures.batchers._layout import BufferLayout, Specs, rows
from rlstructures.batchers._padding import Padding
from rlstructures.batchers._pool import OutputPool
from rlstructures.dicttensor import Spec

ROWS = [((), np.bool_), ((), np.float32), ((3,), np.float32), ((4,), np.float32),
        ((2, 3), np.uint8), ((5,), np.int64), ((0,), np.float32), ((3,), np.complex64)]


def filled(lengths: list[int], t: int) -> tuple[BufferLayout, bytearray, dict[str, Any]]:
    """A buffer of every row kind, no zero anywhere, ``lengths`` written."""
    observation = {f"k{i}": Spec(shape, np.dtype(d)) for i, (shape, d) in enumerate(ROWS)}
    specs = Specs(observation, {"action": Spec((), np.dtype(np.int64))}, {}, {}, {})
    layout = BufferLayout.build(specs, len(lengths), t, store_agent_state=False)
    buffer = bytearray(layout.size)
    views = layout.views(buffer)
    rng = np.random.default_rng(0)
    for name, v in views.items():
        if name.startswith("step:"):
            v[...] = rng.integers(1, 100, v.shape).astype(v.dtype)
    views["lengths"][:] = lengths
    return layout, buffer, views


def expected_steps(views: dict[str, Any], lengths: list[int], t: int) -> dict[str, Any]:
    expected = {k: v.copy() for k, v in views.items() if k.startswith("step:")}
    padding = np.arange(t)[None, :] >= np.array(lengths, dtype=np.int64)[:, None]
    for v in expected.values():
        v[padding] = 0
    return expected


@given(st.lists(st.integers(0, 4), min_size=1, max_size=4), st.integers(1, 4))
def test_padding_zeroes_the_steps_past_each_length(lengths: list[int], t: int) -> None:
    lengths = [min(x, t) for x in lengths]
    _, _, views = filled(lengths, t)
    expected = expected_steps(views, lengths, t)
    steps = [v for k, v in views.items() if k.startswith("step:")]
    padding = Padding(steps, views["lengths"], t)
    padding.zero()
    padding.zero()  # idempotent
    for key, want in expected.items():
        assert np.array_equal(views[key], want), key


@given(st.lists(st.integers(0, 3), min_size=4, max_size=4), st.integers(1, 3), st.integers(1, 3))
def test_padding_of_a_worker_s_rows_leaves_the_other_rows(
    lengths: list[int], t: int, start: int
) -> None:
    """A worker's rows of the shared arrays (C-contiguous blocks): only they change."""
    lengths = [min(x, t) for x in lengths]
    _, _, views = filled(lengths, t)
    before = {k: v.copy() for k, v in views.items()}
    mine = rows(views, start, 4)
    expected = expected_steps(views, lengths, t)
    Padding([v for k, v in mine.items() if k.startswith("step:")], mine["lengths"], t).zero()
    for key, want in expected.items():
        assert np.array_equal(views[key][start:], want[start:]), key
        assert np.array_equal(views[key][:start], before[key][:start]), key


def test_non_contiguous_arrays_are_zeroed_through_a_mask() -> None:
    wide: npt.NDArray[np.float32] = np.ones((3, 4, 6), np.float32)
    column = wide[:, :, ::2]  # rows of 3 floats, strided
    lengths = np.array([4, 1, 0], np.int64)
    Padding([column], lengths, 4).zero()
    assert column[0].all()
    assert column[1, :1].all()
    assert not column[1, 1:].any()
    assert not column[2].any()
    assert wide[:, :, 1::2].all()  # what is between the columns is untouched


def test_fill_copies_the_buffer_as_it_is() -> None:
    lengths, t = [1, 3, 0], 3
    layout, buffer, views = filled(lengths, t)
    pool = OutputPool(layout)
    pool.fill(pool.take(), buffer)  # twice: a recycled output too
    steps = pool.fill(pool.take(), buffer).trajectories
    for key, v in views.items():
        if key.startswith("step:"):
            assert np.array_equal(steps[key[5:]], v), key
