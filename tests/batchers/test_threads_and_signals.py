"""Batchers used from several threads, built in a short-lived thread, and stopped workers."""

from __future__ import annotations

import functools
import multiprocessing as mp
import os
import signal
import sys
import threading
import time

import pytest

from rlstructures.batchers import (
    BatcherStateError,
    BatcherTimeoutError,
    MultiProcessBatcher,
)
from rlstructures.batchers.testing import CountingAgent, CountingEnv
from tests.batchers.conftest import BATCHERS, BatcherKind

pytestmark = pytest.mark.timeout(60)
ENV = functools.partial(CountingEnv, n_envs=2, auto_reset=True)
SLOW = functools.partial(CountingEnv, n_envs=2, auto_reset=True, sleep=0.02)


def _workers() -> list[mp.process.BaseProcess]:
    return [p for p in mp.active_children() if p.name.startswith("rlstructures-worker")]


def test_a_batcher_built_in_a_thread_that_ended_keeps_its_workers() -> None:
    # Linux's parent-death signal fires when the *thread* that started a child ends
    built: list[MultiProcessBatcher] = []
    thread = threading.Thread(
        target=lambda: built.append(
            MultiProcessBatcher(CountingAgent, ENV, n_timesteps=3, seeds=[0, 1])
        )
    )
    thread.start()
    thread.join()
    with built[0] as b:
        time.sleep(0.3)  # time for a signal to land
        b.reset()
        b.execute()
        tr, _ = b.get()
    assert tr.lengths.tolist() == [3, 3, 3, 3]


def test_close_from_another_thread_interrupts_a_waiting_get() -> None:
    b = MultiProcessBatcher(CountingAgent, SLOW, n_timesteps=1000, seeds=[0, 1])  # ~20 s
    b.reset()
    b.execute()
    raised: list[BaseException] = []

    def wait() -> None:
        try:
            b.get()
        except BaseException as exc:
            raised.append(exc)

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.3)
    b.close()
    waiter.join(10)  # the collection alone would take ~20 s
    assert not waiter.is_alive()
    assert len(raised) == 1
    assert isinstance(raised[0], BatcherStateError), raised
    assert "close() was called (from another thread" in str(raised[0])
    assert b.closed


@pytest.mark.parametrize("cls", BATCHERS)
def test_two_threads_calling_get_get_one_result_and_one_clear_error(cls: BatcherKind) -> None:
    env = SLOW if cls.asynchronous else ENV
    with cls(CountingAgent, env, n_timesteps=20, seeds=[0, 1]) as b:
        b.reset()
        b.execute()
        results: list[object] = []

        def get() -> None:
            try:
                results.append(b.get()[0])
            except BatcherStateError as exc:
                results.append(exc)

        threads = [threading.Thread(target=get) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    errors = [r for r in results if isinstance(r, BatcherStateError)]
    assert len(results) == 2
    assert len(errors) == 1, results
    assert "call execute() first" in str(errors[0])


def test_a_non_blocking_get_does_not_wait_for_another_threads_get() -> None:
    with MultiProcessBatcher(CountingAgent, SLOW, n_timesteps=50, seeds=[0, 1]) as b:
        b.reset()
        b.execute()
        waiter = threading.Thread(target=b.get)
        waiter.start()
        time.sleep(0.1)
        tr, _ = b.get(blocking=False)
        assert waiter.is_alive()  # the other get still waits: this one did not wait for it
        assert tr is None
        waiter.join(30)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process states from /proc")
def test_a_stopped_worker_is_named_in_the_timeout_and_the_batcher_goes_on() -> None:
    with MultiProcessBatcher(CountingAgent, SLOW, n_timesteps=20, seeds=[0, 1]) as b:
        b.reset()
        pid = _workers()[0].pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        try:
            b.execute()
            with pytest.raises(BatcherTimeoutError, match=r"are stopped \(SIGSTOP"):
                b.get(timeout=1.0)
        finally:
            os.kill(pid, signal.SIGCONT)
        tr, _ = b.get(timeout=30)
    assert tr.lengths.tolist() == [20] * 4


def _wait_until_stopped(pid: int, within: float = 2.0) -> None:
    """Poll /proc until ``pid`` is in state T/t (SIGSTOP is delivered asynchronously)."""
    deadline = time.monotonic() + within
    while True:
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] in ("T", "t"):
                return
        if time.monotonic() > deadline:
            pytest.fail(f"worker {pid} is not stopped {within} s after SIGSTOP")
        time.sleep(0.01)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process states from /proc")
def test_close_kills_a_stopped_idle_worker_before_joining_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a stopped worker never reads Close: close() must kill it, not wait JOIN_TIMEOUT for it
    b = MultiProcessBatcher(CountingAgent, ENV, n_timesteps=3, seeds=[0, 1])
    try:
        b.reset()  # every worker idle
        process = b._workers[0].process  # the batcher's own object, which close() acts on
        pid = process.pid
        assert pid is not None
        calls: list[str] = []
        kill, join = process.kill, process.join

        def spy_kill() -> None:
            calls.append("kill")
            kill()

        def spy_join(timeout: float | None = None) -> None:
            calls.append("join")
            join(timeout)

        monkeypatch.setattr(process, "kill", spy_kill)
        monkeypatch.setattr(process, "join", spy_join)
        os.kill(pid, signal.SIGSTOP)
        try:
            _wait_until_stopped(pid)
            b.close()
        finally:
            try:
                os.kill(pid, signal.SIGCONT)  # in case close() left it stopped
            except ProcessLookupError:
                pass
    finally:
        b.close()
    assert calls[:1] == ["kill"], calls  # killed before any join (not sent Close, then joined)
