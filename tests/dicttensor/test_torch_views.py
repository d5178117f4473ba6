"""The torch backend: zero-copy views both ways, devices, and torch ops against numpy ones."""

from __future__ import annotations

import pickle
import subprocess
import sys
import warnings
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from rlstructures.dicttensor import (
    BackendError,
    DictTensor,
    TemporalDictTensor,
    Trajectories,
)
from tests.strategies import (
    batch_shapes,
    dict_tensors,
    row_indices,
    specs,
    temporal_dict_tensors,
    trajectories,
)

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def address(x: Any) -> int:
    """Start address of the data of an ndarray or a tensor."""
    if isinstance(x, np.ndarray):
        return int(x.__array_interface__["data"][0])
    return int(x.data_ptr())


def assert_torch_view_of(t: Any, arr: np.ndarray[Any, Any]) -> None:
    """``t`` is a CPU tensor with the values of ``arr`` and the same memory."""
    assert isinstance(t, torch.Tensor)
    assert t.device.type == "cpu"
    assert tuple(t.shape) == arr.shape
    np.testing.assert_array_equal(t.numpy(), arr)
    if arr.size:
        assert address(t) == address(arr)


def assert_same_as_numpy(out: DictTensor, expected: DictTensor) -> None:
    """A torch DictTensor holds the values of a numpy one."""
    assert out.backend == "torch" or not out.keys()
    assert out.batch_shape == expected.batch_shape
    assert all(isinstance(v, torch.Tensor) for v in out.values())
    assert out.numpy().equal(expected)


# ---------------------------------------------------------------------- zero copy
@given(dict_tensors(batch_shape=batch_shapes()))
def test_torch_and_numpy_share_memory_both_ways(dt: DictTensor) -> None:
    tdt = dt.torch()
    assert tdt.backend == "torch" or not dt.keys()
    assert tdt.batch_shape == dt.batch_shape
    for key, arr in dt.items():
        assert_torch_view_of(tdt[key], arr)
    back = tdt.numpy()
    assert back.equal(dt)
    for key, arr in dt.items():
        assert back[key].size == 0 or np.shares_memory(back[key], arr)


def test_writes_go_through_both_ways() -> None:
    arr = np.zeros((3, 2), np.float32)
    views = DictTensor({"x": arr}).torch()
    views["x"][1, 0] = 5.0
    assert arr[1, 0] == 5.0
    arr[2, 1] = 7.0
    assert views["x"][2, 1].item() == 7.0
    tensor = torch.zeros(4, dtype=torch.int64)
    as_numpy = DictTensor({"y": tensor}).numpy()
    as_numpy["y"][3] = 9
    assert tensor[3].item() == 9


def test_to_cpu_is_zero_copy_and_pin_memory_without_cuda_returns_views() -> None:
    arr = np.arange(6.0).reshape(3, 2)
    dt = DictTensor({"x": arr})
    assert_torch_view_of(dt.to("cpu")["x"], arr)
    assert_torch_view_of(dt.to(torch.device("cpu"), non_blocking=True)["x"], arr)
    tdt = TemporalDictTensor({"x": arr[:, :, None]}, [1, 2, 0])
    assert tdt.to("cpu").lengths.tolist() == [1, 2, 0]
    if not torch.cuda.is_available():
        assert_torch_view_of(dt.pin_memory()["x"], arr)
        pinned = tdt.pin_memory()
        assert pinned.backend == "torch"
        assert_torch_view_of(pinned["x"], tdt["x"])


@requires_cuda
@pytest.mark.cuda
def test_cuda_round_trip_and_pinned_memory() -> None:
    dt = DictTensor({"x": np.arange(6.0).reshape(3, 2), "b": np.array([True, False, True])})
    on_gpu = dt.to("cuda", non_blocking=True)
    assert all(v.is_cuda for v in on_gpu.values())
    assert on_gpu.numpy().equal(dt)
    pinned = dt.pin_memory()
    assert all(v.is_pinned() for v in pinned.values())
    tdt = TemporalDictTensor({"x": np.zeros((2, 3))}, [1, 3]).to("cuda")
    assert tdt.lengths.is_cuda
    assert tdt.mask().is_cuda
    assert TemporalDictTensor.cat([tdt, tdt]).numpy().lengths.tolist() == [1, 3, 1, 3]
    assert tdt.pin_memory().lengths.is_cuda


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without CUDA")
def test_moving_to_a_missing_device_names_the_key_and_the_device() -> None:
    with pytest.raises(BackendError, match="cannot move key 'x' to device 'cuda'"):
        DictTensor({"x": np.zeros(2)}).to("cuda")


def test_negative_strides_and_byte_swapped_arrays_are_copied_correctly() -> None:
    rev = np.arange(5)[::-1][:4]
    swapped = np.arange(4, dtype=">f4")
    out = DictTensor({"rev": rev, "swapped": swapped}).torch()
    assert out["rev"].tolist() == [4, 3, 2, 1]
    assert out["swapped"].tolist() == [0.0, 1.0, 2.0, 3.0]
    assert out["swapped"].dtype == torch.float32
    one = np.arange(3)[2:1:-1]  # one element, stride -8: numpy calls it contiguous
    assert DictTensor({"one": one}).torch()["one"].tolist() == [2]
    assert DictTensor({"x": np.arange(3)}).torch()[2:1:-1]["x"].tolist() == [2]


def test_read_only_arrays_become_writable_copies_without_warnings() -> None:
    arr = np.arange(4.0)
    arr.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = DictTensor({"x": arr}).torch()
    assert address(out["x"]) != address(arr)  # torch has no read-only tensors: a copy
    out["x"].mul_(2)
    np.testing.assert_array_equal(arr, np.arange(4.0))


def test_in_place_ops_on_torch_views_of_memory_mapped_arrow_are_safe(tmp_path: Any) -> None:
    # A tensor over a read-only memory map used to look writable and crash the process.
    script = f"""
import numpy as np, pyarrow as pa
from rlstructures.dicttensor import DictTensor
dt = DictTensor({{"r": np.ones((3, 4), np.float32)}})
rb = dt.to_arrow()
with pa.OSFile({str(tmp_path / "x.arrow")!r}, "wb") as f, pa.ipc.new_file(f, rb.schema) as w:
    w.write_batch(rb)
table = pa.ipc.open_file(pa.memory_map({str(tmp_path / "x.arrow")!r})).read_all()
t = DictTensor.from_arrow(table).torch()
t["r"].mul_(2)
print(float(t["r"].sum()))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "24.0"


def test_numpy_detaches_tensors_that_require_grad() -> None:
    w = torch.ones(3, requires_grad=True)
    out = DictTensor({"w": w}).numpy()
    np.testing.assert_array_equal(out["w"], np.ones(3, np.float32))


# ---------------------------------------------------------------------- torch ops vs numpy
@given(st.data(), dict_tensors(batch_shape=batch_shapes(min_dims=1)))
def test_torch_indexing_agrees_with_numpy(data: st.DataObject, dt: DictTensor) -> None:
    index = data.draw(row_indices(dt.batch_shape))
    assert_same_as_numpy(dt.torch()[index], dt[index])
    assert_same_as_numpy(dt[index].torch(), dt[index])  # views of any strides, negative too
    as_tensor = (
        tuple(torch.from_numpy(i) if isinstance(i, np.ndarray) else i for i in index)
        if isinstance(index, tuple)
        else torch.from_numpy(index)
        if isinstance(index, np.ndarray)
        else index
    )
    assert_same_as_numpy(dt.torch()[as_tensor], dt[index])
    assert dt[as_tensor].equal(dt[index])  # torch indices on numpy leaves


@given(st.data(), dict_tensors(batch_shape=batch_shapes(min_dims=1)))
def test_torch_setitem_rows_agrees_with_numpy(data: st.DataObject, dt: DictTensor) -> None:
    index = data.draw(row_indices(dt.batch_shape))
    other = data.draw(dict_tensors(batch_shape=dt[index].batch_shape, spec=dt.specs()))
    expected, target = dt.clone(), dt.clone().torch()
    expected[index] = other
    target[index] = other.torch()
    assert_same_as_numpy(target, expected)


@given(st.data(), st.integers(1, 3))
def test_torch_cat_stack_where_clone_agree_with_numpy(data: st.DataObject, n: int) -> None:
    spec = data.draw(specs())
    parts = [
        data.draw(dict_tensors(batch_shape=(data.draw(st.integers(0, 3)), 2), spec=spec))
        for _ in range(n)
    ]
    torch_parts = [p.torch() for p in parts]
    assert_same_as_numpy(DictTensor.cat(torch_parts), DictTensor.cat(parts))
    assert_same_as_numpy(DictTensor.cat(torch_parts, dim=0), DictTensor.cat(parts))
    same = [parts[0]] * n
    assert_same_as_numpy(
        DictTensor.stack([p.torch() for p in same], dim=1), DictTensor.stack(same, dim=1)
    )
    a = parts[0]
    b = data.draw(dict_tensors(batch_shape=a.batch_shape, spec=spec))
    mask = np.arange(np.prod(a.batch_shape)).reshape(a.batch_shape) % 2 == 0
    assert_same_as_numpy(a.torch().where(mask, b.torch()), a.where(mask, b))
    assert_same_as_numpy(a.torch().where(torch.from_numpy(mask), b.torch()), a.where(mask, b))
    twin = a.torch().clone()
    assert_same_as_numpy(twin, a)
    for key, arr in a.items():
        assert arr.size == 0 or address(twin[key]) != address(arr)
    assert a.torch().specs() == a.specs()
    assert_same_as_numpy(
        DictTensor.zeros(a.specs(), a.batch_shape, "torch"),
        DictTensor.zeros(a.specs(), a.batch_shape),
    )
    assert a.torch().equal(a.torch().clone())
    assert a.torch().equal(a) == (not a.keys())  # backends differ when there are leaves
    assert pickle.loads(pickle.dumps(a.torch())).equal(a.torch())
    assert [row.numpy().equal(a[i]) for i, row in enumerate(a.torch())] == [True] * len(a)


@given(st.data(), temporal_dict_tensors(max_length=4))
def test_torch_temporal_ops_agree_with_numpy(data: st.DataObject, tdt: TemporalDictTensor) -> None:
    tt = tdt.torch()
    assert tt.backend == "torch"
    assert isinstance(tt.lengths, torch.Tensor)
    assert tt.lengths.dtype == torch.int64
    assert tt.numpy().equal(tdt)
    np.testing.assert_array_equal(tt.mask().numpy(), tdt.mask())
    for t in range(tdt.max_length):
        assert_same_as_numpy(tt.temporal_index(t), tdt.temporal_index(t))
        rows, idx = tt.masked_temporal_index(t)
        np_rows, np_idx = tdt.masked_temporal_index(t)
        assert_same_as_numpy(rows, np_rows)
        assert idx.dtype == torch.int64
        assert idx.tolist() == np_idx.tolist()
    start, stop = data.draw(st.integers(0, 5)), data.draw(st.integers(5, 7))
    assert tt.temporal_slice(start, stop).numpy().equal(tdt.temporal_slice(start, stop))
    assert tt.shorten().numpy().equal(tdt.shorten())
    assert (
        TemporalDictTensor.cat([tt, tt[:1]]).numpy().equal(TemporalDictTensor.cat([tdt, tdt[:1]]))
    )
    for b in range(len(tdt)):
        assert_same_as_numpy(tt[b], tdt[b])
    b = len(tdt)
    index = data.draw(
        st.one_of(
            st.slices(b),
            st.lists(st.integers(-b, b - 1), max_size=4) if b else st.just([]),
        )
    )
    assert tt[index].numpy().equal(tdt[index])
    mask = tdt.lengths > 1
    assert tt[mask].numpy().equal(tdt[mask])
    assert tt[torch.from_numpy(mask)].numpy().equal(tdt[mask])
    assert tt.clone().equal(tt)
    back = pickle.loads(pickle.dumps(tt))
    assert back.equal(tt)
    assert isinstance(back.lengths, torch.Tensor)


@given(trajectories(backend="torch"))
def test_torch_trajectories(traj: Trajectories) -> None:
    assert isinstance(traj.lengths, torch.Tensor)
    back = traj.numpy()
    assert back.torch().equal(traj)
    assert traj.to("cpu").equal(traj)
    assert traj.pin_memory().numpy().equal(back)


def test_lengths_given_as_numpy_for_torch_leaves_become_a_tensor() -> None:
    tdt = TemporalDictTensor({"x": torch.zeros(2, 3)}, np.array([1, 3]))
    assert isinstance(tdt.lengths, torch.Tensor)
    assert tdt.lengths.dtype == torch.int64
    tdt = TemporalDictTensor({"x": np.zeros((2, 3))}, torch.tensor([1, 3], dtype=torch.int32))
    assert isinstance(tdt.lengths, np.ndarray)
    assert tdt.lengths.dtype == np.int64


@given(
    st.lists(st.integers(0, 3), min_size=1, max_size=4),
    st.lists(st.sampled_from(["np", "torch", "param", "list"]), min_size=1, max_size=4),
    st.sampled_from([None, "first", "other"]),
)
def test_the_constructors_fast_path_accepts_and_rejects_as_the_full_checks(
    lead: list[int], kinds: list[str], given_shape: str | None
) -> None:
    # leaves of various leading sizes and kinds (the fast path takes exact np.ndarray or
    # torch.Tensor leaves): the same batch shape or the same error as the full checks
    def leaf(i: int, kind: str) -> Any:
        n = lead[i % len(lead)]
        if kind == "np":
            return np.zeros((n, 2), np.float32)
        if kind == "torch":
            return torch.zeros(n, 2)
        if kind == "param":
            return torch.nn.Parameter(torch.zeros(n, 2), requires_grad=False)
        return [0.0] * n

    data = {f"k{i}": leaf(i, kind) for i, kind in enumerate(kinds)}
    shape = {None: None, "first": (lead[0],), "other": (lead[0] + 1,)}[given_shape]
    valid = {"np"} >= set(kinds) or {"torch", "param"} >= set(kinds)
    n = (shape or (lead[0],))[0]
    valid = valid and all(lead[i % len(lead)] == n for i in range(len(kinds)))
    if valid:
        dt = DictTensor(data, batch_shape=shape)
        assert dt.batch_shape == (n,)
        assert type(dt.batch_shape[0]) is int
        assert all(dt[k] is v for k, v in data.items())
    else:
        with pytest.raises((BackendError, ValueError)):
            DictTensor(data, batch_shape=shape)


def test_torch_leaves_with_a_0_dim_first_leaf_or_a_torch_size_batch_shape() -> None:
    with pytest.raises(ValueError, match="key 'a' is 0-dimensional"):
        DictTensor({"a": torch.tensor(1.0)})
    dt = DictTensor({"a": torch.zeros(3)}, batch_shape=torch.Size([3]))
    assert dt.batch_shape == (3,)
    assert type(dt.batch_shape) is tuple


def test_mixed_backends_are_rejected() -> None:
    with pytest.raises(BackendError, match="key 'b' is a torch leaf but key 'a' is a numpy"):
        DictTensor({"a": np.zeros(2), "b": torch.zeros(2)})
    a = DictTensor({"x": np.zeros(2)})
    with pytest.raises(BackendError, match="part 1 is torch, part 0 is numpy"):
        DictTensor.cat([a, a.torch()])
    with pytest.raises(BackendError, match="torch"):
        a["y"] = torch.zeros(2)
    with pytest.raises(BackendError, match=r"`other.numpy\(\)`"):
        a.where(np.ones(2, bool), a.torch())
    with pytest.raises(BackendError):
        a | DictTensor({"y": torch.zeros(2)})
    tdt = TemporalDictTensor({"x": np.zeros((1, 2))})
    with pytest.raises(BackendError, match="part 1 is torch"):
        TemporalDictTensor.cat([tdt, tdt.torch()])
    with pytest.raises(BackendError, match=r"`other.numpy\(\)`"):
        a[0:1] = a.torch()[0:1]


def test_dtypes_without_a_counterpart_name_the_key() -> None:
    bf16 = DictTensor({"w": torch.zeros(2, dtype=torch.bfloat16)})
    with pytest.raises(BackendError, match=r"key 'w' has torch dtype torch\.bfloat16"):
        bf16.numpy()
    with pytest.raises(BackendError, match="key 'w'"):
        bf16.specs()
    with pytest.raises(BackendError, match="key 's' has numpy dtype <U1"):
        DictTensor({"s": np.array(["a", "b"])}).torch()
