"""Cases found by attacking the batchers as a hostile user or machine: each was a bug."""

from __future__ import annotations

import functools
import gc
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest

from rlstructures.batchers.testing import CountingAgent, CountingEnv
from tests.batchers.conftest import BATCHERS, BatcherKind
from tests.batchers.parts import RaisingEnv

pytestmark = pytest.mark.timeout(60)
ENV = functools.partial(CountingEnv, n_envs=2, auto_reset=True)
#: The batchers built in a fraction of a second (Ray actors cost seconds each).
QUICK = [k for k in BATCHERS if k.agent_suite]


class NestedAgent(CountingAgent):
    """Takes its weight from a nested state_dict: ``{"actor": {"w": ...}, "step": n}``."""

    def update(self, state_dict: Mapping[str, Any]) -> None:
        actor = state_dict["actor"]
        self.w = np.float32(float(actor["w"].reshape(-1)[0]) + state_dict["critic"]["n"])


@pytest.mark.parametrize("cls", QUICK)
def test_a_nested_state_dict_of_tensors_reaches_every_agent_as_a_copy(
        cls: BatcherKind) -> None:
    """``{"actor": actor.state_dict(), ...}``: MultiProcessBatcher's workers died on it."""
    torch = pytest.importorskip("torch")
    w = torch.full((1,), 2.0)
    with cls(NestedAgent, ENV, n_timesteps=2, seeds=[0, 1]) as b:
        b.reset()
        b.update({"actor": {"w": w, "extra": torch.ones(2).to_sparse()},
                  "critic": {"n": 1, "empty": {}}})
        w += 100.0  # an optimizer step after update(): not seen by the agents
        b.execute()
        tr, _ = b.get()
    assert (tr.trajectories["action/weight"] == 3.0).all()


@pytest.mark.parametrize("cls", QUICK)
def test_update_refuses_what_it_cannot_send_naming_the_key(cls: BatcherKind) -> None:
    with cls(CountingAgent, ENV, n_timesteps=2, seeds=[0]) as b:
        b.reset()
        with pytest.raises(TypeError, match="takes a mapping"):
            b.update([("w", np.ones(1))])  # type: ignore[arg-type]  # the error tested
        if cls.agent_per_worker:  # InferenceBatcher's one agent takes any object as is
            with pytest.raises(TypeError, match="'opt/schedule' cannot be sent"):
                b.update({"w": np.ones(1), "opt": {"schedule": lambda step: 0.1}})
            torch = pytest.importorskip("torch")
            with pytest.raises(ValueError, match="'layer/w' is on the meta device"):
                b.update({"layer": {"w": torch.empty(3, device="meta")}})
        b.update({"w": np.full(1, 4.0, np.float32)})  # the batcher goes on
        b.execute()
        tr, _ = b.get()
    assert (tr.trajectories["action/weight"] == 4.0).all()


@pytest.mark.parametrize("cls", [k for k in QUICK if k.asynchronous])
def test_close_from_a_signal_handler_interrupts_get_with_a_clear_error(
        cls: BatcherKind) -> None:
    """The handler runs in the thread waiting in get(): MultiProcessBatcher raised EBADF."""
    import signal

    from rlstructures.batchers import BatcherStateError

    slow = functools.partial(CountingEnv, n_envs=2, auto_reset=True, sleep=0.05)
    b = cls(CountingAgent, slow, n_timesteps=1000, seeds=[0, 1])  # ~50 s per slice
    b.reset()
    b.execute()
    previous = signal.signal(signal.SIGALRM, lambda *_: b.close())
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        with pytest.raises(BatcherStateError, match="signal handler"):
            b.get()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        b.close()
    assert b.closed


def _collect(b: Any, reset: bool = False) -> Any:
    """One slice (after a reset when asked): what a training loop does."""
    if reset:
        b.reset()
    b.execute()
    return b.get()


@pytest.mark.parametrize("cls", [k for k in QUICK if k.env_processes])
@pytest.mark.parametrize("exception", ["KeyboardInterrupt", "EOFError"])
def test_an_env_raising_keyboardinterrupt_or_eoferror_is_reported_by_name(
        cls: BatcherKind, exception: str) -> None:
    """Both were taken for "the owner is gone": "exited (code 0)", type and traceback lost."""
    from rlstructures.batchers import WorkerError

    env = functools.partial(RaisingEnv, exception=exception)
    with cls(CountingAgent, env, n_timesteps=3, seeds=[0]) as b:
        b.reset()
        with pytest.raises(WorkerError, match=f"raised {exception}: from the env") as info:
            _collect(b)
    assert ", in step" in (info.value.remote_traceback or "")  # the env's own frame


class BadIdsEnv(CountingEnv):
    """Every env continues, but from its second step the ids it returns are wrong."""

    def __init__(self, seed: int, *, how: str) -> None:
        super().__init__(seed, 3, auto_reset=True)
        self.how = how

    def reset(self, env_info: Any = None) -> Any:
        obs, ids = super().reset(env_info)
        return obs, (ids[::-1].copy() if self.how == "reset" else ids)

    def step(self, action: Any) -> Any:
        (next_obs, ids), (obs, cont) = super().step(action)
        if self.steps >= 2:
            cont = {"repeated": np.array([0, 0, 2]), "out_of_range": cont + 7,
                    "unsorted": cont[::-1].copy(), "float": cont.astype(np.float64),
                    "reset": cont}[self.how]
        return (next_obs, ids), (obs, cont)


@pytest.mark.parametrize(
    ("cls", "how", "message"),
    [(BATCHERS[0], "repeated", "not a sorted subset"),
     (BATCHERS[1], "repeated", "not a sorted subset"),
     (BATCHERS[0], "out_of_range", "not a sorted subset"),
     (BATCHERS[0], "unsorted", "not a sorted subset"),
     (BATCHERS[0], "float", "dtype float64; expected a 1-D array of int"),
     (BATCHERS[0], "reset", r"env.reset returned ids \[2, 1, 0\]")],
)
def test_wrong_ids_from_an_env_where_every_env_continues_are_an_error(
        cls: BatcherKind, how: str, message: str) -> None:
    """They were taken as is: repeated rows of one env, silently, or a raw IndexError."""
    from rlstructures.batchers import AgentOutputError

    with cls(CountingAgent, functools.partial(BadIdsEnv, how=how), n_timesteps=4,
             seeds=[0]) as b:
        with pytest.raises(AgentOutputError, match=message):
            _collect(b, reset=True)


def _shared_memory_fds() -> list[str]:
    import os

    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(("/dev/shm/", "/memfd:")):
            found.append(target)
    return found


@pytest.mark.skipif(not __import__("os").path.isdir("/proc/self/fd"), reason="needs /proc")
@pytest.mark.parametrize("cls", [k for k in QUICK if k.env_processes])
def test_close_frees_the_shared_memory_while_the_batcher_is_still_referenced(
        cls: BatcherKind) -> None:
    """InferenceBatcher's views kept its segments mapped until the object was collected."""
    gc.collect()  # batchers of earlier tests, unreferenced but not yet collected, go first
    before = _shared_memory_fds()
    b = cls(CountingAgent, ENV, n_timesteps=3, seeds=[0, 1])
    b.reset()
    b.execute()
    b.get()
    assert len(_shared_memory_fds()) > len(before)
    b.close()
    assert _shared_memory_fds() == before  # `b` is still alive here
    assert b.closed


@pytest.mark.parametrize(
    ("seeds", "agent_seeds", "message"),
    [("ab", None, "seeds must be a sequence of ints"),
     ([0, 1.5], None, r"seeds must hold ints .*got 1.5 \(float\) at index 1"),
     ([0, True], None, "got True"),
     ([0, 1], [0, "x"], "agent_seeds must hold ints")],
)
def test_seeds_that_are_not_ints_are_a_type_error_naming_them(
        seeds: Any, agent_seeds: Any, message: str) -> None:
    """'ab' was a raw "invalid literal for int()"; 1.5 was silently seed 1."""
    from rlstructures.batchers import LocalBatcher

    with pytest.raises(TypeError, match=message):
        LocalBatcher(CountingAgent, ENV, n_timesteps=2, seeds=seeds, agent_seeds=agent_seeds)


def test_numpy_int_seeds_are_taken() -> None:
    from rlstructures.batchers import LocalBatcher

    seeds: Any = np.array([3, 4], np.uint16)  # not a Sequence[int] for the type checker
    agent_seeds: Any = [np.int64(1), 2**70]
    with LocalBatcher(CountingAgent, ENV, n_timesteps=2, seeds=seeds,
                      agent_seeds=agent_seeds) as b:
        assert b.seeds == [3, 4]
        assert all(type(s) is int for s in b.seeds)


_CALLBACK: dict[str, Any] = {}  # the batcher under test and what its agent's call raised


class CallbackAgent(CountingAgent):
    """At its third call, calls ``_CALLBACK["method"]`` of the batcher that runs it."""

    def __call__(self, state: Any, observation: Any, agent_info: Any,
                 history: Any = None) -> Any:
        if self.calls == 2 and "batcher" in _CALLBACK:
            try:
                getattr(_CALLBACK["batcher"], _CALLBACK["method"])()
                _CALLBACK["raised"] = None
            except Exception as exc:
                _CALLBACK["raised"] = exc
        return super().__call__(state, observation, agent_info, history)


@pytest.mark.parametrize(  # the batchers whose agent runs in this process
    "cls", [k for k in QUICK if k.name in ("LocalBatcher", "InferenceBatcher")])
@pytest.mark.parametrize("method", ["get", "close"])
def test_an_agent_calling_its_own_batcher_gets_a_clear_error(
        cls: BatcherKind, method: str) -> None:
    """InferenceBatcher: the agent's get() waited for the collection it was part of (a hang);
    LocalBatcher: its close() was undone by the collection going on."""
    from rlstructures.batchers import BatcherStateError

    _CALLBACK.clear()
    with cls(CallbackAgent, ENV, n_timesteps=4, seeds=[0]) as b:
        _CALLBACK.update(batcher=b, method=method)
        b.reset()
        b.execute()
        tr, _ = b.get(timeout=3)  # before the fix: a timeout here (InferenceBatcher)
        assert not b.closed
    _CALLBACK.pop("batcher")
    assert isinstance(_CALLBACK.get("raised"), BatcherStateError), _CALLBACK
    assert "from inside this batcher's own agent" in str(_CALLBACK["raised"])
    assert tr.lengths.tolist() == [4, 4]


def _no_address_space(monkeypatch: pytest.MonkeyPatch, fail_at: int) -> None:
    """Make the ``fail_at``-th shared mapping from now on fail as under a small RLIMIT_AS."""
    import errno
    import mmap

    real, calls = mmap.mmap, [0]

    def mapping(fd: int, size: int, *args: Any) -> Any:
        calls[0] += 1
        if calls[0] == fail_at:
            raise OSError(errno.ENOMEM, "Cannot allocate memory")
        return real(fd, size, *args)

    monkeypatch.setattr(mmap, "mmap", mapping)


def test_a_segment_that_cannot_be_mapped_is_a_shared_memory_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """mmap's ENOMEM (``ulimit -v``) was a raw OSError: at construction, and in update()."""
    from rlstructures.batchers import InferenceBatcher, MultiProcessBatcher, SharedMemoryError

    _no_address_space(monkeypatch, 2)  # InferenceBatcher's exchange segment
    with pytest.raises(SharedMemoryError, match=r"could not map .*n_timesteps.*ulimit -v"):
        InferenceBatcher(CountingAgent, ENV, n_timesteps=3, seeds=[0, 1])
    monkeypatch.undo()
    with MultiProcessBatcher(CountingAgent, ENV, n_timesteps=3, seeds=[0]) as b:
        b.reset()
        _no_address_space(monkeypatch, 1)  # the weights segment
        with pytest.raises(SharedMemoryError, match=r"update\(\)'s 1 arrays: could not map"):
            b.update({"w": np.ones(1)})
        monkeypatch.undo()
        b.update({"w": np.full(1, 2.0)})  # the batcher goes on
        b.execute()
        tr, _ = b.get()
    assert (tr.trajectories["action/weight"] == 2.0).all()
    # the autouse fixture checks that no segment and no process is left


_OUT_OF_FDS = """
import functools, multiprocessing, os, resource, sys
from rlstructures.batchers import InferenceBatcher, MultiProcessBatcher
from rlstructures.batchers.testing import CountingAgent, CountingEnv

if __name__ == "__main__":
    cls = {"MultiProcessBatcher": MultiProcessBatcher, "InferenceBatcher": InferenceBatcher}[
        sys.argv[1]]
    env = functools.partial(CountingEnv, n_envs=2)
    cls(CountingAgent, env, n_timesteps=2, seeds=[0]).close()  # imports done
    before = len(os.listdir("/proc/self/fd"))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (before + 3, hard))
    try:
        cls(CountingAgent, env, n_timesteps=2, seeds=[0, 1])
    except OSError as exc:
        print(exc)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    print(len(multiprocessing.active_children()), len(os.listdir("/proc/self/fd")) - before)
"""


@pytest.mark.parametrize("cls", [k for k in QUICK if k.env_processes])
def test_out_of_file_descriptors_is_a_clear_error_and_leaves_nothing(
        cls: BatcherKind, tmp_path: Any) -> None:
    """EMFILE at construction was a bare "Too many open files"."""
    import os
    import subprocess
    import sys

    script = tmp_path / "out_of_fds.py"
    script.write_text(_OUT_OF_FDS)
    done = subprocess.run([sys.executable, str(script), cls.name], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert done.returncode == 0, done.stderr
    message, left = done.stdout.strip().splitlines()
    assert "out of file descriptors" in message, message
    assert "ulimit -n" in message, message
    assert left == "0 0"  # no worker process, no file descriptor left


@pytest.mark.parametrize("cls", QUICK)
def test_timeouts_of_weeks_or_beyond_float64_wait_as_asked(cls: BatcherKind) -> None:
    """MultiProcessBatcher's epoll took at most ~24 days: 3e6 s or 1e308 s were an
    OverflowError; an int beyond float64 (10**400) was one in every batcher."""
    with cls(CountingAgent, ENV, n_timesteps=2, seeds=[0]) as b:
        b.reset()
        for timeout in (3e6, 1e308, 10**400):
            b.execute()
            tr, _ = b.get(timeout=timeout)
            b.update({"w": np.ones(1)}, timeout=timeout)
            assert tr.lengths.tolist() == [2, 2]
