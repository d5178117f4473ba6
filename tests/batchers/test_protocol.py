"""The worker protocol: a message of unknown kind is an error on both sides, never dropped."""

from __future__ import annotations

import functools
import inspect

import pytest

from rlstructures.batchers import Batcher, BatcherOptions, MultiProcessBatcher, WorkerError
from rlstructures.batchers._protocol import Execute, Ready
from rlstructures.batchers.testing import CountingAgent, CountingEnv

pytestmark = pytest.mark.timeout(60)


def make() -> MultiProcessBatcher:
    env = functools.partial(CountingEnv, n_envs=2)
    return MultiProcessBatcher(CountingAgent, env, n_timesteps=3, seeds=[0, 5])


def test_a_worker_receiving_an_unknown_command_fails_naming_it() -> None:
    b = make()
    b._send(b._workers[1], Ready())  # a reply, not a command: the worker has no handler
    with pytest.raises(
        WorkerError,
        match=r"worker 1 \(seed 5\) raised ValueError: worker 1 "
        r"received a message of unknown kind <Reply.READY",
    ) as info:
        b.reset()
    assert info.value.worker == 1
    assert b.closed


def test_the_batcher_receiving_an_unknown_reply_fails_naming_it() -> None:
    b = make()
    with pytest.raises(
        WorkerError,
        match=r"worker 0 \(seed 0\): the batcher received a message of unknown "
        r"kind <Command.EXECUTE",
    ):
        b._handle(b._workers[0], Execute(None))  # a command, not a reply
    assert b.closed


def test_batcher_options_list_the_arguments_of_the_batcher_constructor() -> None:
    """Subclasses take the shared arguments as ``**common: Unpack[BatcherOptions]``."""
    params = inspect.signature(Batcher.__init__).parameters.values()
    shared = {p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}
    assert set(BatcherOptions.__annotations__) == shared
