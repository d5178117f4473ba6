"""Random call sequences against a model of the batcher's call-order rules."""

from __future__ import annotations

import functools

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from rlstructures.batchers import Batcher, BatcherStateError, LocalBatcher, MultiProcessBatcher
from rlstructures.batchers.testing import CountingAgent, CountingEnv

ENV = functools.partial(CountingEnv, n_envs=2)  # episode mode: envs end after 3..7 steps


class BatcherMachine(RuleBasedStateMachine):
    """Model: state in {new, idle, running, closed}, envs running, total steps per env."""

    cls: type[Batcher] = LocalBatcher

    def __init__(self) -> None:
        super().__init__()
        self.batcher = self.cls(CountingAgent, ENV, n_timesteps=2, seeds=[0, 3])
        self.state = "new"
        self.running = 0
        self.steps = np.zeros(4, np.int64)
        self.weight = 0.0  # the weight the result in flight was collected with
        self.next_weight = 0.0  # the weight the next execute() uses

    @rule()
    def reset(self) -> None:
        if self.state in ("new", "idle"):
            self.batcher.reset()
            self.state, self.running = "idle", 4
            self.steps[:] = 0
        else:
            self._refused(self.batcher.reset)

    @rule()
    def execute(self) -> None:
        if self.state == "idle" and self.running > 0:
            self.batcher.execute()
            self.state = "running"
            self.weight = self.next_weight
        else:
            self._refused(self.batcher.execute)

    @rule(blocking=st.booleans())
    def get(self, blocking: bool) -> None:
        if self.state != "running":
            self._refused(self.batcher.get)
            return
        trajectories, n = self.batcher.get(blocking=blocking, timeout=30 if blocking else None)
        if trajectories is None:
            assert not blocking
            return
        self.state = "idle"
        lengths = trajectories.lengths
        assert (lengths <= 2).all()
        self.steps += lengths
        steps = trajectories.trajectories
        assert (steps["action/weight"][steps.mask()] == np.float32(self.weight)).all()
        # CountingEnv: env k of seed s lasts 3 + (s + k) % 5 steps
        expected_total = np.array([3, 4, 6, 7])
        assert (self.steps <= expected_total).all()
        assert n == int((self.steps < expected_total).sum())
        self.running = n

    @rule(w=st.floats(-10, 10, allow_nan=False, width=32))
    def update(self, w: float) -> None:
        if self.state == "closed":
            self._refused(lambda: self.batcher.update({"w": np.array([w], np.float32)}))
            return
        self.batcher.update({"w": np.array([w], np.float32)})
        self.next_weight = float(np.float32(w))  # from the next execute on

    @precondition(lambda self: self.state != "closed")
    @rule()
    def close(self) -> None:
        self.batcher.close()
        self.state = "closed"

    @invariant()
    def running_count(self) -> None:
        if self.state in ("idle", "running"):
            assert self.batcher.n_running == self.running

    def _refused(self, call: object) -> None:
        try:
            call()  # type: ignore[operator]  # the callables above
        except BatcherStateError:
            return
        raise AssertionError(f"{call} was accepted in state {self.state}")

    def teardown(self) -> None:
        self.batcher.close()


BatcherMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=25, deadline=None)
TestLocalBatcherCalls = BatcherMachine.TestCase


class ProcessBatcherMachine(BatcherMachine):
    cls = MultiProcessBatcher


ProcessBatcherMachine.TestCase.settings = settings(
    max_examples=8, stateful_step_count=20, deadline=None
)
TestMultiProcessBatcherCalls = ProcessBatcherMachine.TestCase
