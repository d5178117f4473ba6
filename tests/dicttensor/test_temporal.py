"""TemporalDictTensor and Trajectories: invariants, and every operation against a naive loop."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as npst

from rlstructures.dicttensor import (
    BatchIndexError,
    BatchShapeError,
    DictTensor,
    TemporalDictTensor,
    Trajectories,
)
from tests.strategies import batch_sizes, specs, temporal_dict_tensors, trajectories


def assert_invariants(tdt: TemporalDictTensor) -> None:
    """Every leaf [B, T, ...]; lengths int64 of shape (B,) with 0 <= lengths <= T."""
    b, t = tdt.batch_shape
    assert (len(tdt), tdt.max_length) == (b, t)
    assert tdt.dict_tensor.batch_shape == (b, t)
    lengths = tdt.lengths
    assert isinstance(lengths, np.ndarray)
    assert lengths.dtype == np.int64
    assert lengths.shape == (b,)
    assert ((lengths >= 0) & (lengths <= t)).all()
    for leaf in tdt.values():
        assert isinstance(leaf, np.ndarray)
        assert leaf.shape[:2] == (b, t)


def sequences(tdt: TemporalDictTensor) -> list[dict[str, Any]]:
    """The naive view: for each sequence, its valid steps of every key."""
    return [
        {k: v[b, : tdt.lengths[b]] for k, v in tdt.items()} for b in range(len(tdt))
    ]


def assert_same_sequences(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> None:
    assert len(a) == len(b)
    for seq_a, seq_b in zip(a, b, strict=True):
        assert seq_a.keys() == seq_b.keys()
        for key in seq_a:
            assert seq_a[key].dtype == seq_b[key].dtype
            np.testing.assert_array_equal(seq_a[key], seq_b[key])


# ---------------------------------------------------------------------- construction
@given(temporal_dict_tensors())
def test_invariants_and_mask_sum_is_lengths(tdt: TemporalDictTensor) -> None:
    assert_invariants(tdt)
    mask = tdt.mask()
    assert mask.dtype == np.bool_
    assert mask.shape == tdt.batch_shape
    np.testing.assert_array_equal(mask.sum(1), tdt.lengths)
    for b in range(len(tdt)):
        for t in range(tdt.max_length):
            assert mask[b, t] == (t < tdt.lengths[b])


def test_lengths_default_to_full_and_are_copied_and_read_only() -> None:
    data = {"x": np.zeros((3, 4))}
    assert TemporalDictTensor(data).lengths.tolist() == [4, 4, 4]
    given_lengths = np.array([1, 2, 3], dtype=np.int32)
    tdt = TemporalDictTensor(data, given_lengths)
    given_lengths[0] = 4
    assert tdt.lengths.tolist() == [1, 2, 3]
    assert tdt.lengths.dtype == np.int64
    with pytest.raises(ValueError, match="read-only"):
        tdt.lengths[0] = 5
    assert TemporalDictTensor(data, [0, 4, 2]).lengths.tolist() == [0, 4, 2]
    assert TemporalDictTensor(DictTensor(data, batch_shape=(3, 4))).batch_shape == (3, 4)
    assert TemporalDictTensor({}).batch_shape == (0, 0)


def test_a_dict_tensor_with_one_batch_dim_is_read_as_b_t() -> None:
    dt = DictTensor({"x": np.zeros((2, 5, 3))})
    assert TemporalDictTensor(dt).batch_shape == (2, 5)
    assert TemporalDictTensor(DictTensor({}, batch_shape=(4,))).batch_shape == (4, 0)


# ---------------------------------------------------------------------- indexing
@given(temporal_dict_tensors())
def test_int_index_is_the_valid_steps_of_one_sequence(tdt: TemporalDictTensor) -> None:
    naive = sequences(tdt)
    for b in range(len(tdt)):
        for i in (b, b - len(tdt), np.int64(b)):
            seq = tdt[i]
            assert isinstance(seq, DictTensor)
            assert seq.batch_shape == (tdt.lengths[b],)
            assert_same_sequences([seq.to_dict()], [naive[b]])
    assert_same_sequences([s.to_dict() for s in tdt], naive)
    with pytest.raises(BatchIndexError, match="out of range"):
        tdt[len(tdt)]


@given(st.data(), temporal_dict_tensors())
def test_sequence_selection_agrees_with_numpy(
    data: st.DataObject, tdt: TemporalDictTensor
) -> None:
    b = len(tdt)
    index = data.draw(
        st.one_of(
            st.slices(b),
            npst.arrays(np.bool_, (b,)),
            npst.arrays(np.intp, st.integers(0, 4), elements=st.integers(-b, b - 1))
            if b
            else st.just(np.zeros(0, np.intp)),
        )
    )
    out = tdt[index]
    assert isinstance(out, TemporalDictTensor)
    assert_invariants(out)
    np.testing.assert_array_equal(out.lengths, tdt.lengths[index])
    assert out.dict_tensor.equal(tdt.dict_tensor[index])


# ---------------------------------------------------------------------- time operations
@given(temporal_dict_tensors(max_length=5), st.integers(0, 4))
def test_temporal_index_and_masked_temporal_index(tdt: TemporalDictTensor, t: int) -> None:
    if t >= tdt.max_length:
        with pytest.raises(BatchIndexError, match=f"step {t}"):
            tdt.temporal_index(t)
        with pytest.raises(BatchIndexError):
            tdt.masked_temporal_index(t)
        return
    rows = tdt.temporal_index(t)
    assert rows.batch_shape == (len(tdt),)
    assert rows.equal(tdt.dict_tensor[:, t])
    running, idx = tdt.masked_temporal_index(t)
    expected = [b for b in range(len(tdt)) if t < tdt.lengths[b]]
    assert idx.dtype == np.int64
    assert idx.tolist() == expected
    assert running.batch_shape == (len(expected),)
    for row, b in enumerate(expected):
        for key, leaf in tdt.items():
            np.testing.assert_array_equal(running[key][row], leaf[b, t])


@given(temporal_dict_tensors(), st.integers(0, 8), st.integers(0, 8))
def test_temporal_slice_lengths_and_values(tdt: TemporalDictTensor, start: int, n: int) -> None:
    stop = start + n
    out = tdt.temporal_slice(start, stop)
    assert_invariants(out)
    np.testing.assert_array_equal(out.lengths, np.clip(tdt.lengths - start, 0, stop - start))
    assert out.max_length == max(0, min(stop, tdt.max_length) - min(start, tdt.max_length))
    expected = [{k: v[start:stop] for k, v in seq.items()} for seq in sequences(tdt)]
    assert_same_sequences(sequences(out), expected)


@given(temporal_dict_tensors())
def test_shorten_drops_only_padding(tdt: TemporalDictTensor) -> None:
    out = tdt.shorten()
    assert_invariants(out)
    assert out.max_length == (int(tdt.lengths.max()) if len(tdt) else 0)
    np.testing.assert_array_equal(out.lengths, tdt.lengths)
    assert_same_sequences(sequences(out), sequences(tdt))


# ---------------------------------------------------------------------- cat
@st.composite
def parts_with_one_spec(draw: st.DrawFn) -> list[TemporalDictTensor]:
    spec = draw(specs())
    n = draw(st.integers(1, 4))
    return [
        draw(temporal_dict_tensors(batch_size=draw(st.integers(0, 3)), spec=spec))
        for _ in range(n)
    ]


@given(parts_with_one_spec())
def test_padded_cat_agrees_with_a_per_sequence_loop(parts: list[TemporalDictTensor]) -> None:
    out = TemporalDictTensor.cat(parts)
    assert_invariants(out)
    assert out.max_length == max(p.max_length for p in parts)
    np.testing.assert_array_equal(out.lengths, np.concatenate([p.lengths for p in parts]))
    assert_same_sequences(sequences(out), [s for p in parts for s in sequences(p)])
    valid = out.mask()
    for leaf in out.values():  # padding added by cat is zeros
        start = 0
        for part in parts:
            block = leaf[start : start + len(part), part.max_length :]
            assert not block.any()
            start += len(part)
        assert leaf.shape[:2] == valid.shape


@given(parts_with_one_spec())
def test_cat_then_index_gives_the_parts_back(parts: list[TemporalDictTensor]) -> None:
    out = TemporalDictTensor.cat(parts)
    start = 0
    for part in parts:
        piece = out[start : start + len(part)]
        assert piece.shorten().equal(part.shorten())
        start += len(part)


# ---------------------------------------------------------------------- equal, copies
@given(temporal_dict_tensors())
def test_equal_ignores_padding_but_not_valid_steps(tdt: TemporalDictTensor) -> None:
    noisy = tdt.clone()
    padding = ~noisy.mask()
    for leaf in noisy.values():
        leaf[padding] = 1
    assert noisy.equal(tdt)
    assert tdt.equal(noisy)
    valid = np.argwhere(tdt.mask())
    for key, leaf in tdt.items():
        if valid.size == 0 or 0 in leaf.shape[2:]:
            continue
        where = (*valid[0], *(0,) * (leaf.ndim - 2))
        changed = tdt.clone()
        first = changed[key][where]
        changed[key][where] = (not first) if leaf.dtype == np.bool_ else (0 if first != 0 else 1)
        assert not changed.equal(tdt), key


@given(temporal_dict_tensors())
def test_clone_and_pickle(tdt: TemporalDictTensor) -> None:
    twin = tdt.clone()
    assert twin.equal(tdt)
    for key, leaf in tdt.items():
        assert not np.shares_memory(twin[key], leaf)
    back = pickle.loads(pickle.dumps(tdt))
    assert back.equal(tdt)
    assert_invariants(back)
    assert not back.lengths.flags.writeable


def test_different_lengths_or_keys_are_not_equal() -> None:
    x = np.zeros((2, 3))
    a = TemporalDictTensor({"x": x}, [1, 2])
    assert not a.equal(TemporalDictTensor({"x": x}, [2, 2]))
    assert not a.equal(TemporalDictTensor({"y": x}, [1, 2]))
    assert not a.equal(a.dict_tensor)
    assert not a.equal(TemporalDictTensor({"x": np.zeros((2, 3, 1))}, [1, 2]))  # row shape
    assert a.equal(TemporalDictTensor({"x": np.zeros((2, 4))}, [1, 2]))  # T is padding too


def test_key_namespaces_and_setitem() -> None:
    tdt = TemporalDictTensor({"obs/x": np.zeros((2, 3)), "r": np.ones((2, 3))}, [1, 3])
    assert list(tdt.select_prefix("obs/").keys()) == ["x"]
    assert list(tdt.prefix("a/").keys()) == ["a/obs/x", "a/r"]
    assert list(tdt.select(["r"]).keys()) == ["r"]
    assert list(tdt.exclude(["r"]).keys()) == ["obs/x"]
    assert tdt.select(["r"]).lengths.tolist() == [1, 3]
    tdt["adv"] = np.zeros((2, 3), np.float32)
    assert "adv" in tdt
    with pytest.raises(BatchShapeError, match="'adv2'"):
        tdt["adv2"] = np.zeros((2, 4))


# ---------------------------------------------------------------------- Trajectories
@given(trajectories())
def test_trajectories_selection_cat_and_pickle(traj: Trajectories) -> None:
    b = len(traj)
    assert traj.info.batch_shape == (b,)
    np.testing.assert_array_equal(traj.lengths, traj.trajectories.lengths)
    for i in range(b):
        one = traj[i]
        assert len(one) == 1
        assert one.info.equal(traj.info[i : i + 1])
        assert one.trajectories.equal(traj.trajectories[i : i + 1])
        assert traj[i - b].equal(one)
    both = Trajectories.cat([traj, traj])
    assert len(both) == 2 * b
    assert both[:b].equal(traj)
    assert both[b:].equal(traj)
    assert pickle.loads(pickle.dumps(traj)).equal(traj)
    assert traj.clone().equal(traj)
    with pytest.raises(BatchIndexError, match="out of range"):
        traj[b]


@given(batch_sizes)
def test_trajectories_need_one_info_row_per_sequence(b: int) -> None:
    steps = TemporalDictTensor({"r": np.zeros((b, 2))})
    with pytest.raises(BatchShapeError, match=f"there are {b} sequences"):
        Trajectories(DictTensor({"i": np.zeros(b + 1)}), steps)
