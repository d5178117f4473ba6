"""``timeout=`` of ``get()`` and ``update()``: NaN is refused, inf means no limit."""

from __future__ import annotations

import functools
import math
from typing import assert_type

import numpy as np
import pytest

from rlstructures.batchers import BatcherTimeoutError, MultiProcessBatcher
from rlstructures.batchers.testing import CountingAgent, CountingEnv
from rlstructures.dicttensor import Trajectories
from tests.batchers.conftest import BATCHERS, BatcherKind

pytestmark = pytest.mark.timeout(60)
ENV = functools.partial(CountingEnv, n_envs=2, auto_reset=True)


@pytest.mark.parametrize("cls", BATCHERS)
@pytest.mark.parametrize("bad", [math.nan, -1.0, -math.inf])
def test_a_nan_or_negative_timeout_is_a_value_error_naming_timeout(
    cls: BatcherKind, bad: float
) -> None:
    with cls(CountingAgent, ENV, n_timesteps=2, seeds=[0]) as b:
        b.reset()
        with pytest.raises(ValueError, match="timeout must be None"):
            b.update({"w": np.ones(1)}, timeout=bad)
        b.execute()
        with pytest.raises(ValueError, match="timeout must be None"):
            b.get(timeout=bad)
        tr, _ = b.get()  # still usable
        assert tr.trajectories.batch_shape == (2, 2)


@pytest.mark.parametrize("cls", BATCHERS)
def test_a_timeout_that_is_not_a_number_is_a_type_error(cls: BatcherKind) -> None:
    with cls(CountingAgent, ENV, n_timesteps=2, seeds=[0]) as b:
        b.reset()
        b.execute()
        with pytest.raises(TypeError, match="timeout must be None or a number"):
            b.get(timeout="5")  # type: ignore[call-overload]  # wrong on purpose


@pytest.mark.parametrize("cls", BATCHERS)
def test_an_infinite_timeout_means_no_limit(cls: BatcherKind) -> None:
    with cls(CountingAgent, ENV, n_timesteps=2, seeds=[0, 1]) as b:
        b.reset()
        b.update({"w": np.full(1, 3.0)}, timeout=math.inf)
        b.execute()
        tr, _ = b.get(timeout=math.inf)
        b.update({"w": np.full(1, 4.0)}, timeout=math.inf)
        b.execute()
        tr2, _ = b.get(timeout=float("inf"))
    np.testing.assert_array_equal(tr.trajectories["action/weight"][:, 0], 3.0)
    np.testing.assert_array_equal(tr2.trajectories["action/weight"][:, 0], 4.0)


def test_update_times_out_while_a_worker_has_not_read_the_previous_weights() -> None:
    # A worker reads new weights between slices: while it collects a long slice, a
    # second update (which overwrites the buffer the first is in) has to wait.
    slow = functools.partial(CountingEnv, n_envs=2, auto_reset=True, sleep=0.02)
    with MultiProcessBatcher(CountingAgent, slow, n_timesteps=25, seeds=[0, 1]) as b:
        b.reset()
        b.execute()
        b.update({"w": np.full(1, 1.0)})
        with pytest.raises(BatcherTimeoutError, match=r"update\(\): workers \[0, 1\]"):
            b.update({"w": np.full(1, 2.0)}, timeout=0.05)
        b.get()
        b.update({"w": np.full(1, 2.0)}, timeout=30)  # answered by now
        b.execute()
        tr, _ = b.get()
    np.testing.assert_array_equal(tr.trajectories["action/weight"][:, 0], 2.0)


def test_get_is_typed_by_blocking() -> None:
    """mypy checks the ``assert_type`` lines (make typecheck); pytest that they run."""
    with MultiProcessBatcher(CountingAgent, ENV, n_timesteps=2, seeds=[0]) as b:
        b.reset()
        b.execute()
        maybe, _ = b.get(blocking=False, timeout=None)
        assert_type(maybe, Trajectories | None)
        while maybe is None:
            maybe, _ = b.get(blocking=False)
        b.execute()
        tr, n = b.get(timeout=30)
        assert_type(tr, Trajectories)
        assert_type(n, int)
        b.execute()
        assert_type(b.get(True), tuple[Trajectories, int])
        b.execute()
        flag: bool = bool(n >= 0)
        assert_type(b.get(flag), tuple[Trajectories | None, int])
