"""Consumer-side types of rlstructures.dicttensor: mypy checks every ``assert_type`` here.

At run time ``assert_type`` returns its argument, so pytest only checks that the calls work;
the type checks happen in ``make typecheck`` (mypy --strict over tests/).
"""

from __future__ import annotations

from typing import Any, Literal, assert_type

import numpy as np
import torch

from rlstructures.dicttensor import DictTensor, Spec, TemporalDictTensor, Trajectories


def test_dict_tensor_types() -> None:
    dt = DictTensor({"obs": np.zeros((4, 3), np.float32), "a": np.arange(4)})
    assert_type(dt, DictTensor)
    assert_type(dt.batch_shape, tuple[int, ...])
    assert_type(dt.backend, Literal["numpy", "torch"])
    assert_type(len(dt), int)
    assert_type(dt["obs"], Any)
    assert_type(dt[0], DictTensor)
    assert_type(dt[np.int64(0)], DictTensor)
    assert_type(dt[1:], DictTensor)
    assert_type(dt[np.array([0, 2])], DictTensor)
    assert_type(dt[np.array([True, False, True, False])], DictTensor)
    assert_type(dt[[0, 1]], DictTensor)
    assert_type(dt[torch.tensor([0, 1])], DictTensor)
    assert_type(DictTensor({"x": np.zeros((2, 3))}, batch_shape=(2, 3))[0, 1:], DictTensor)
    assert_type(DictTensor.cat([dt, dt]), DictTensor)
    assert_type(DictTensor.stack([dt, dt], dim=1), DictTensor)
    assert_type(dt.clone(), DictTensor)
    assert_type(dt.where(np.ones(4, bool), dt), DictTensor)
    assert_type(dt.specs(), dict[str, Spec])
    assert_type(DictTensor.zeros(dt.specs(), (4,)), DictTensor)
    assert_type(dt.prefix("a/") | dt, DictTensor)
    assert_type(dt.select(["obs"]), DictTensor)
    assert_type(dt.torch(), DictTensor)
    assert_type(dt.numpy(), DictTensor)
    assert_type(dt.to("cpu"), DictTensor)
    assert_type(dt.equal(dt), bool)
    assert_type(list(dt), list[DictTensor])
    assert_type(dt.n_elems(), int)
    spec = Spec((3,), "float32")
    assert_type(spec.shape, tuple[int, ...])
    assert_type(spec.dtype, np.dtype[Any])


def test_temporal_and_trajectories_types() -> None:
    tdt = TemporalDictTensor({"r": np.zeros((2, 3), np.float32)}, lengths=[3, 1])
    assert_type(tdt["r"], Any)
    assert_type(tdt[0], DictTensor)
    assert_type(tdt[np.int64(1)], DictTensor)
    assert_type(tdt[:1], TemporalDictTensor)
    assert_type(tdt[np.array([True, False])], TemporalDictTensor)
    assert_type(tdt.batch_shape, tuple[int, int])
    assert_type(tdt.max_length, int)
    assert_type(tdt.lengths, Any)
    assert_type(tdt.temporal_index(0), DictTensor)
    assert_type(tdt.masked_temporal_index(0), tuple[DictTensor, Any])
    assert_type(tdt.temporal_slice(0, 2), TemporalDictTensor)
    assert_type(tdt.shorten(), TemporalDictTensor)
    assert_type(TemporalDictTensor.cat([tdt, tdt]), TemporalDictTensor)
    assert_type(tdt.torch(), TemporalDictTensor)
    assert_type(tdt.equal(tdt), bool)
    assert_type(list(tdt), list[DictTensor])
    traj = Trajectories(DictTensor({"agent_info/eps": np.zeros(2)}), tdt)
    assert_type(traj.info, DictTensor)
    assert_type(traj.trajectories, TemporalDictTensor)
    assert_type(traj[0], Trajectories)
    assert_type(traj[1:], Trajectories)
    assert_type(Trajectories.cat([traj, traj]), Trajectories)
