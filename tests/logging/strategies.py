"""Hypothesis strategies for the logging tests: random Trajectories sharing one schema."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as npst

from rlstructures.dicttensor import DictTensor, Spec, TemporalDictTensor, Trajectories

__all__ = ["RL_DTYPES", "schemas", "trajectories"]

#: Every dtype Arrow stores natively (DESIGN.md section 2).
RL_DTYPES = [
    np.dtype(d)
    for d in ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
              "float16", "float32", "float64")
]
_STEP_NAMES = ["observation/frame", "observation/x", "action/action", "_observation/frame",
               "reward", "agent_state/h", "done", "obs é/π"]
_INFO_NAMES = ["agent_info/epsilon", "env_info/seed", "agent_state/h", "env_info/level"]


def _specs(names: list[str], max_keys: int) -> st.SearchStrategy[dict[str, Spec]]:
    spec = st.builds(
        Spec,
        npst.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3),
        st.sampled_from(RL_DTYPES),
    )
    return st.dictionaries(st.sampled_from(names), spec, max_size=max_keys)


def schemas() -> st.SearchStrategy[tuple[dict[str, Spec], dict[str, Spec]]]:
    """``(step specs, info specs)``: up to 4 step keys and 3 info keys, any shape and dtype."""
    return st.tuples(_specs(_STEP_NAMES, 4), _specs(_INFO_NAMES, 3))


def _array(draw: st.DrawFn, dtype: np.dtype[Any], shape: tuple[int, ...]) -> Any:
    if np.prod(shape) > 64:  # large leaves: cheap random data, hypothesis would be slow
        seed = draw(st.integers(0, 2**32 - 1))
        rng = np.random.default_rng(seed)
        return (rng.random(shape) * 100).astype(dtype)
    return draw(npst.arrays(dtype, shape))


@st.composite
def trajectories(
    draw: st.DrawFn,
    *,
    step_specs: dict[str, Spec],
    info_specs: dict[str, Spec],
    max_batch: int = 4,
    max_length: int = 5,
    min_batch: int = 0,
) -> Trajectories:
    """Trajectories with the given specs, B in [min_batch, max_batch], T in [0, max_length]
    and lengths anywhere in [0, T] (zero-length sequences included)."""
    b = draw(st.integers(min_batch, max_batch))
    t = draw(st.integers(0, max_length))
    lengths = np.array(draw(st.lists(st.integers(0, t), min_size=b, max_size=b)), np.int64)
    steps = {k: _array(draw, s.dtype, (b, t, *s.shape)) for k, s in step_specs.items()}
    info = {k: _array(draw, s.dtype, (b, *s.shape)) for k, s in info_specs.items()}
    tdt = TemporalDictTensor(DictTensor(steps, batch_shape=(b, t)), lengths)
    return Trajectories(DictTensor(info, batch_shape=(b,)), tdt)
