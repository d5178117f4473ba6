"""`device=`: trajectories handed over as torch tensors on a device."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from rlstructures.batchers.testing import CountingAgent, CountingEnv
from tests.batchers.conftest import BATCHERS, BatcherKind

ENV = functools.partial(CountingEnv, n_envs=2, auto_reset=True)


@pytest.mark.parametrize("cls", BATCHERS)
def test_cpu_device_returns_numpy(cls: BatcherKind) -> None:
    with cls(CountingAgent, ENV, n_timesteps=3, seeds=[0], device="cpu") as b:
        b.reset()
        b.execute()
        tr, _ = b.get()
    assert tr.trajectories.backend == "numpy"
    assert tr.info.backend == "numpy"


@pytest.mark.cuda
@pytest.mark.parametrize("cls", BATCHERS)
def test_cuda_device_returns_tensors_on_it(cls: BatcherKind) -> None:
    torch = pytest.importorskip("torch")
    with cls(CountingAgent, ENV, n_timesteps=3, seeds=[0, 1], device="cuda:0") as ref_b:
        ref_b.reset()
        ref_b.execute()
        tr, _ = ref_b.get()
    with cls(CountingAgent, ENV, n_timesteps=3, seeds=[0, 1]) as cpu_b:
        cpu_b.reset()
        cpu_b.execute()
        ref, _ = cpu_b.get()
    frame = tr.trajectories["observation/frame"]
    assert isinstance(frame, torch.Tensor)
    assert frame.device.type == "cuda"
    torch.cuda.synchronize()
    assert tr.numpy().equal(ref)
    np.testing.assert_array_equal(tr.lengths.cpu().numpy(), ref.lengths)
