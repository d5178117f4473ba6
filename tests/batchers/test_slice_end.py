"""SliceEnd against a plain reference: the stage into env-major rows, reset steps dropped."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rlstructures.batchers._env_side import EnvSide
from rlstructures.batchers._layout import BufferLayout, Specs
from rlstructures.batchers._slice_end import SliceEnd
from rlstructures.dicttensor import DictTensor, Spec

ROWS: list[tuple[tuple[int, ...], Any]] = [
    ((), np.bool_), ((4,), np.float32), ((3,), np.float32), ((2, 2), np.int64), ((0,), np.uint8)
]


def reference(stage: Any, finals: Any, ended: Any, skipped: Any, t: int) -> tuple[Any, Any, Any]:
    """observation and _observation [n, T, ...] for one key, by plain Python loops."""
    n = stage.shape[1]
    obs = np.zeros((n, t, *stage.shape[2:]), stage.dtype)
    nxt = np.zeros_like(obs)
    lengths = []
    for k in range(n):
        p = 0
        for s in range(t):
            if (k, s) in skipped:
                continue
            obs[k, p] = stage[s, k]
            nxt[k, p] = finals[s, k] if (k, s) in ended else stage[s + 1, k]
            p += 1
        lengths.append(p)
    return obs, nxt, lengths


@given(
    st.integers(1, 4),
    st.integers(1, 5),
    st.integers(0, 2),
    st.data(),
)
def test_compact_and_plain_match_the_reference(n: int, t: int, extra: int, data: Any) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    cells = st.tuples(st.integers(0, n - 1), st.integers(0, t - 1))
    skipped = data.draw(st.sets(cells))
    ended = data.draw(st.sets(cells)) - skipped  # an episode never ends in a reset step
    # the stage may be columns of a wider shared array (InferenceBatcher): extra columns
    stages, finals, bufs, others = {}, {}, {}, []
    for i, (row, dtype) in enumerate(ROWS):
        wide = rng.integers(1, 100, (t + 1, n + extra, *row)).astype(dtype)
        stages[f"k{i}"] = wide[:, extra:]
        finals[f"k{i}"] = rng.integers(1, 100, (t, n, *row)).astype(dtype)
        bufs[f"k{i}"] = (np.zeros((n, t, *row), dtype), np.zeros((n, t, *row), dtype))
    action = rng.integers(0, 100, (n, t))
    others.append(action_buf := action.copy())
    lengths = np.zeros(n, np.int64)
    for key, (_, next_dst) in bufs.items():  # what step_into writes: the final observations
        for k, s in ended:
            next_dst[k, s] = finals[key][s, k]
    end = SliceEnd(stages, bufs, others, lengths, t)
    order = sorted(ended)
    rows, steps = np.array([k for k, _ in order], np.intp), np.array([s for _, s in order], np.intp)
    if skipped:
        sk = sorted(skipped)
        sk_rows, sk_steps = (np.array(c, np.intp) for c in zip(*sk, strict=True))
        end.compact(rows, steps, sk_rows, sk_steps)
    else:
        end.plain(rows, steps)
    for key, (obs_dst, next_dst) in bufs.items():
        obs, nxt, want_lengths = reference(stages[key], finals[key], ended, skipped, t)
        assert lengths.tolist() == want_lengths
        valid = np.arange(t)[None, :] < lengths[:, None]
        assert np.array_equal(obs_dst[valid], obs[valid]), key
        assert np.array_equal(next_dst[valid], nxt[valid]), key
    for k in range(n):
        kept = [s for s in range(t) if (k, s) not in skipped]
        assert action_buf[k, : len(kept)].tolist() == action[k, kept].tolist()


class _IdsEnv:
    """A step_into VecEnv of 2 envs whose env 0 ends at every step, with ids of ``dtypes``."""

    auto_reset = True
    n_envs = 2

    def __init__(self, keys: dict[str, Any], dtypes: list[Any]) -> None:
        self.keys, self.dtypes, self.i = keys, dtypes, 0

    def reset(self, info: Any = None) -> tuple[DictTensor, Any]:
        obs = {k: np.zeros(2, np.float32) for k in self.keys}
        return DictTensor(obs, batch_shape=(2,)), np.arange(2)

    def step(self, action: Any) -> Any:  # pragma: no cover - step_into only
        raise AssertionError

    def step_into(self, action: Any, out: Any, final: Any) -> Any:
        self.i += 1
        for k in self.keys:
            out[k][...] = self.i
            final[k][0] = -self.i
        return np.array([0], self.dtypes[(self.i - 1) % len(self.dtypes)])


def _run_slice(env: Any, t: int) -> dict[str, Any]:
    specs = Specs({k: Spec((), np.dtype(np.float32)) for k in env.keys}, {}, {}, {}, {})
    layout = BufferLayout.build(specs, 2, t, False)
    views = layout.views(bytearray(layout.size))
    side = EnvSide(env, views, specs, n_timesteps=t, worker=0)
    side.reset(DictTensor({}, batch_shape=(2,)))
    side.begin()
    for step in range(t):
        side.step_into(step, DictTensor({}, batch_shape=(2,)))
    side.finish()
    return views


def test_a_step_into_env_without_observation_keys_runs() -> None:
    assert _run_slice(_IdsEnv({}, [np.int64]), 3)["lengths"].tolist() == [3, 3]


def test_ended_ids_of_other_int_dtypes_at_other_steps_are_accepted() -> None:
    views = _run_slice(_IdsEnv({"x": None}, [np.int64, np.uint64]), 2)
    assert views["step:_observation/x"].tolist() == [[-1.0, -2.0], [1.0, 2.0]]


def test_a_stage_whose_envs_are_not_adjacent_is_refused() -> None:
    stage = np.zeros((3, 4), np.float32)[:, ::2]  # [T + 1, n] with the envs 8 bytes apart
    bufs = {"x": (np.zeros((2, 2), np.float32), np.zeros((2, 2), np.float32))}
    with pytest.raises(ValueError, match="adjacent"):
        SliceEnd({"x": stage}, bufs, [], np.zeros(2, np.int64), 2)
