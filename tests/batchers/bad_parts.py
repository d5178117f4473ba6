"""Picklable broken parts for the batcher tests: envs and agents that misbehave on purpose."""

from __future__ import annotations

from rlstructures.agents import StepResult
from rlstructures.batchers.testing import CountingEnv
from rlstructures.dicttensor import DictTensor


class UnprintableError(Exception):
    """An exception whose ``str()`` raises."""

    def __str__(self) -> str:
        raise RuntimeError("__str__ is broken too")


class UnprintableEnv(CountingEnv):
    """Raises UnprintableError at its second step."""

    def step(self, action: DictTensor) -> StepResult:
        if self.steps >= 1:
            raise UnprintableError()
        return super().step(action)


def not_an_agent() -> object:
    """A make_agent that returns something else than an Agent."""
    return {"policy": "oops"}
