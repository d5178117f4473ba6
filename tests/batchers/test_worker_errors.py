"""What reaches the caller when an env or agent misbehaves: always the type and traceback."""

from __future__ import annotations

import functools

import pytest

from rlstructures.batchers import WorkerError
from rlstructures.batchers._exceptions import MAX_CHARS, describe_exception
from rlstructures.batchers.testing import CountingAgent, CountingEnv
from tests.batchers.conftest import BATCHERS, BatcherKind
from tests.batchers.parts import UnprintableEnv, UnprintableError, not_an_agent
from tests.batchers.test_contract import execute_and_get

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("cls", BATCHERS)
def test_an_exception_whose_str_raises_still_names_its_type_and_traceback(
    cls: BatcherKind,
) -> None:
    env = functools.partial(UnprintableEnv, n_envs=2, auto_reset=True)
    with cls(CountingAgent, env, n_timesteps=4, seeds=[0, 1]) as b:
        b.reset()
        with pytest.raises(WorkerError, match="raised UnprintableError") as info:
            execute_and_get(b)
        assert b.closed
    error = info.value
    assert error.worker in (0, 1)  # both fail: either may be reported first
    assert "str() of the exception failed" in str(error)
    assert "in step" in error.remote_traceback
    assert "UnprintableError" in error.remote_traceback


def test_describe_exception_clips_huge_messages() -> None:
    name, message, tb = describe_exception(ValueError("x" * 10_000_000))
    assert name == "ValueError"
    assert len(message) < MAX_CHARS + 100
    assert len(tb) < 2 * MAX_CHARS + 100
    assert "characters left out" in message
    name, message, _ = describe_exception(UnprintableError())
    assert (name, message) == ("UnprintableError", "<str() of the exception failed: RuntimeError>")


@pytest.mark.parametrize("cls", BATCHERS)
def test_make_agent_returning_a_non_agent_is_a_type_error_naming_make_agent(
    cls: BatcherKind,
) -> None:
    env = functools.partial(CountingEnv, n_envs=2)
    with pytest.raises(TypeError, match=r"make_agent\(\) must return an Agent.*got dict"):
        cls(not_an_agent, env, n_timesteps=2, seeds=[0])  # type: ignore[arg-type]  # on purpose
