"""OutputPool.fill zeroes the steps past each length, whatever the rows' byte sizes."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from rlstructures.batchers._layout import BufferLayout, Specs
from rlstructures.batchers._pool import OutputPool
from rlstructures.dicttensor import Spec

ROWS = [((), np.bool_), ((), np.float32), ((3,), np.float32), ((4,), np.float32),
        ((2, 3), np.uint8), ((5,), np.int64), ((0,), np.float32)]


@given(st.lists(st.integers(0, 4), min_size=1, max_size=4), st.integers(1, 4))
def test_fill_zeroes_the_padding_of_every_step_array(lengths: list[int], t: int) -> None:
    lengths = [min(x, t) for x in lengths]
    observation = {f"k{i}": Spec(shape, np.dtype(d)) for i, (shape, d) in enumerate(ROWS)}
    specs = Specs(observation, {"action": Spec((), np.dtype(np.int64))}, {}, {}, {})
    layout = BufferLayout.build(specs, len(lengths), t, store_agent_state=False)
    buffer = bytearray(layout.size)
    views = layout.views(buffer)
    rng = np.random.default_rng(0)
    for name, v in views.items():
        if name.startswith("step:"):
            v[...] = rng.integers(1, 100, v.shape).astype(v.dtype)  # no zeros anywhere
    views["lengths"][:] = lengths
    expected = {k[5:]: v.copy() for k, v in views.items() if k.startswith("step:")}
    padding = np.arange(t)[None, :] >= np.array(lengths)[:, None]
    for v in expected.values():
        v[padding] = 0
    pool = OutputPool(layout)
    pool.fill(pool.take(), buffer)  # twice: a recycled output too
    steps = pool.fill(pool.take(), buffer).trajectories
    for key, want in expected.items():
        assert np.array_equal(steps[key], want), key
