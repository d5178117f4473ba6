"""`InferenceBatcher`: workers step envs, the owner runs one batched agent call per step."""

from __future__ import annotations

import copy
import os
import pickle
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import reduction
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt

from rlstructures.agents import Agent, VecEnv
from rlstructures.batchers._agent_side import AgentSide
from rlstructures.batchers._base import BatcherOptions
from rlstructures.batchers._checks import check_agent
from rlstructures.batchers._exceptions import describe_exception, interrupted
from rlstructures.batchers._exchange import ExchangeLayout
from rlstructures.batchers._inference_worker import InferenceWorkerConfig, inference_worker_main
from rlstructures.batchers._multiprocess import (
    _EXECUTE,
    _WORKER_PROCESSES,
    START_TIMEOUT,
    MultiProcessBatcher,
    _describe_buffer,
    _Resources,
    _Worker,
)
from rlstructures.batchers._pool import Output
from rlstructures.batchers._protocol import Reset
from rlstructures.batchers._shm import Segment
from rlstructures.batchers._stepper import Stepper
from rlstructures.batchers._wakeup import Semaphores, semaphores_available, wait_bounded
from rlstructures.batchers._weights import check_state_dict
from rlstructures.batchers.errors import (
    AgentOutputError,
    BatcherError,
    BatcherStateError,
    BatcherTimeoutError,
    WorkerError,
)
from rlstructures.dicttensor import DictTensor

if TYPE_CHECKING:
    from typing import Unpack  # Python >= 3.11; annotations only (3.10 at runtime)

__all__ = ["InferenceBatcher"]

STOP_TIMEOUT: Final = 2.0  # seconds for the stepping thread to notice close()
#: The attributes that view the trajectory and exchange segments (dropped by close()).
_SEGMENT_VIEWS: Final = ("_go", "_done", "_status", "_xids", "_xpos", "_xobs", "_xaction",
                         "_traj_views", "_side", "_obs_at")


@dataclass(slots=True)
class _Owner:
    """What the owner's finalizer releases (it must not reference the batcher)."""

    stepper: Stepper[int]
    agent: Agent | None = None
    closing: bool = False

    def release(self) -> None:
        self.closing = True  # the stepping thread's next bounded wait raises
        stopped = self.stepper.close(STOP_TIMEOUT)
        agent, self.agent = self.agent, None
        if agent is not None and stopped:  # not while the thread may still call it
            agent.close()


@contextmanager
def _cuda_hidden() -> Iterator[None]:
    """CUDA_VISIBLE_DEVICES="" for the processes started inside (spawn copies os.environ)."""
    key = "CUDA_VISIBLE_DEVICES"
    old = os.environ.get(key)
    os.environ[key] = ""
    try:
        yield
    finally:
        if old is None:
            del os.environ[key]
        else:
            os.environ[key] = old


def _snapshot(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``state_dict`` that later in-place changes (optimizer steps) do not reach."""
    out: dict[str, Any] = {}
    for k, v in state_dict.items():
        if isinstance(v, np.ndarray):
            out[k] = v.copy()
        elif callable(getattr(v, "detach", None)) and callable(getattr(v, "clone", None)):
            out[k] = v.detach().clone()  # a torch tensor, on its device
        else:
            out[k] = copy.deepcopy(v)
    return out


class InferenceBatcher(MultiProcessBatcher):
    """Workers step the envs; the owner calls its one agent once per step for all of them.

    One worker process per seed holds a VecEnv and no agent. At each step the workers write
    their observations into one shared segment (``[N, *row]`` for the N envs of all
    workers), the owner calls the agent once on all rows (on ``device``), checks its
    outputs and writes the actions back; the workers step their envs with them. Trajectories
    accumulate in shared memory as with ``MultiProcessBatcher`` and ``get()`` hands back a
    copy the caller owns. Wake-ups are blocking POSIX semaphores (about 2.4 us each), every
    wait bounded (0.1 s, then a liveness check of the other side), so a dead or stuck
    worker is an error within seconds, never a hang.

    The stepping loop runs in a background thread of the owner, so ``execute()`` returns at
    once and ``get(blocking=False)`` polls. That thread competes with the caller's Python
    code for the GIL: it holds it while it calls the agent (except inside torch or numpy
    kernels, which release it) and releases it while it waits for the workers. A learner
    that mostly runs torch ops overlaps well; pure-Python work in the caller during
    ``execute()`` slows the collection by as much. Size it as one core for the thread
    plus the workers: on C cores, ``C - 1`` workers with enough envs each that an env step
    costs about as long as one agent call.

    ``update(state_dict)`` applies at once to the one agent (no copy per worker: a large
    model lives once in memory); during a collection it is kept (copied) and applied before
    the next ``execute()``.

    Args:
        make_agent, make_env, n_timesteps, seeds, agent_info, env_info, device,
        store_agent_state: see ``Batcher``. ``make_agent`` is only called in this process
            (any callable will do); workers unpickle ``make_env`` alone, so they import only
            what the env needs (not torch, for a torch agent defined elsewhere).
            ``device="cuda:N"``: the agent gets ``observation``, ``agent_info`` and
            ``history`` as torch tensors on that device (copied through pinned memory on a
            side stream; its model must live there) and ``get()`` returns tensors there;
            workers never touch CUDA (``CUDA_VISIBLE_DEVICES=""``).
        agent_seeds: the one agent is seeded with ``agent_seeds[0]`` (a stochastic agent
            then draws one stream for all envs: results differ from the other batchers').
        start_method: "spawn" (default) or "forkserver".
        batch_scheduling: see ``MultiProcessBatcher``.
        spin: wait for the other side by polling instead of sleeping (opt-in): ~2 us less
            per wake-up on an idle machine, but a spinning process takes a core the others
            may need (700+ us stalls at p99 on 2 cores once a third process runs).

    Raises:
        OSError: not on Linux (process-shared unnamed semaphores are needed).
    """

    def __init__(
        self,
        make_agent: Callable[[], Agent],
        make_env: Callable[[int], VecEnv],
        *,
        start_method: str = "spawn",
        batch_scheduling: bool = True,
        spin: bool = False,
        **common: Unpack[BatcherOptions],
    ) -> None:
        if not semaphores_available():
            raise OSError(
                "InferenceBatcher needs process-shared POSIX semaphores (Linux); use "
                "MultiProcessBatcher on this system."
            )
        self._spin = bool(spin)
        self._owner = _Owner(Stepper[int]("rlstructures-inference-stepper"))
        self._waiting_for = "the agent"
        self._pending: dict[str, Any] | None = None
        self._device_agent: Any = None  # _cuda.DeviceAgent with a CUDA device
        try:
            super().__init__(
                make_agent,
                make_env,
                start_method=start_method,
                torch_threads=None,  # workers run no agent
                batch_scheduling=batch_scheduling,
                **common,
            )
        except BaseException:
            self._owner.release()
            raise
        # created after MultiProcessBatcher's: at interpreter exit it runs first, so the
        # stepping thread stops before the workers and segments go
        self._owner_finalizer = weakref.finalize(self, self._owner.release)

    # ------------------------------------------------------------------ lifecycle
    def _start(self) -> None:
        self._res = _Resources()
        self._finalizer = weakref.finalize(self, self._res.release)
        self._prepared: Output | None = None  # the output of the running collection
        ctx, batch_scheduling = self._ctx, self._batch_scheduling
        try:  # only make_env crosses: the agent is built here (any callable will do)
            factory = pickle.dumps(self.make_env)
        except Exception as exc:
            raise TypeError(
                "InferenceBatcher sends make_env to its worker processes, so it must be "
                f"picklable; pickling failed: {exc}. Use a module-level function or class, or "
                "a functools.partial of one (not a lambda or a local function)."
            ) from exc
        n, w_count, T = self.n_envs_per_worker, self.n_workers, self.n_timesteps
        traj = Segment.create(
            self.layout.size,
            what=_describe_buffer(self.layout).replace("MultiProcessBatcher", "InferenceBatcher"),
            fix="Lower `n_timesteps` or the number of envs (`seeds` x the envs of each VecEnv), "
            "or make the observations smaller.",
        )
        self._res.segments.append(traj)
        np.frombuffer(traj.buffer, dtype=np.uint8)[:] = 0  # pre-touch (first touch ~10x)
        # T + 1 observation slots whatever the env mode (known once workers built their envs)
        xlayout = ExchangeLayout.build(self.specs, w_count, n, T + 1)
        xch = Segment.create(
            xlayout.size,
            what=f"InferenceBatcher's exchange segment ({self.n_envs} envs x {T + 1} steps of "
            "observations)",
            fix="Lower `n_timesteps` or the number of envs, or make the observations smaller.",
        )
        self._res.segments.append(xch)
        np.frombuffer(xch.buffer, dtype=np.uint8)[:] = 0
        self._xlayout = xlayout
        self._go = Semaphores(xch.buffer, xlayout.go, w_count, init=True)
        self._done = Semaphores(xch.buffer, xlayout.done, w_count, init=True)
        xviews = xlayout.views(xch.buffer)
        self._status, self._xids, self._xpos = xviews["status"], xviews["ids"], xviews["pos"]
        self._xobs = xlayout.of(xviews, "obs")
        self._xaction = xlayout.of(xviews, "action")
        with _cuda_hidden():
            for i, seed in enumerate(self.seeds):
                cfg = InferenceWorkerConfig(
                    index=i,
                    make_env=factory,
                    seed=seed,
                    layout=self.layout,
                    exchange=xlayout,
                    specs=self.specs,
                    n_envs=n,
                    spin=self._spin,
                    batch_scheduling=batch_scheduling,
                    parent_pid=os.getpid(),
                    from_main_thread=threading.current_thread() is threading.main_thread(),
                )
                parent, child = ctx.Pipe(duplex=True)
                process = ctx.Process(
                    target=inference_worker_main,
                    args=(cfg, child),
                    daemon=True,
                    name=f"rlstructures-inference-worker-{i}",
                )
                process.start()
                _WORKER_PROCESSES.add(process)
                child.close()
                self._res.workers.append(_Worker(i, seed, process, parent))
                try:  # the segments have no name: the worker gets their file descriptors
                    reduction.send_handle(parent, traj.fileno(), process.pid)
                    reduction.send_handle(parent, xch.fileno(), process.pid)
                except OSError:
                    pass  # it died already: the wait below reports how
        # the agent is built while the workers build their envs
        agent = check_agent(self.make_agent(), "InferenceBatcher's agent")
        self._owner.agent = agent
        if self.agent_seeds is not None:
            agent.seed(self.agent_seeds[0])
        views = self.layout.views(traj.buffer)
        self._traj_views = views
        self._wait_for(lambda: [w for w in self._workers if not w.ready], START_TIMEOUT, "start")
        modes = {int(m) for m in self._status}  # each worker wrote 1 (step_into) or 0
        if len(modes) > 1:
            raise ValueError(
                "InferenceBatcher: the VecEnvs of make_env differ in mode (some have step_into "
                "in auto-reset mode, others not); every worker must run the same kind of VecEnv."
            )
        self._fast = modes == {1}
        slots = T + 1 if self._fast else 1
        if self._target is not None:
            from rlstructures.batchers._cuda import DeviceAgent, StepStager

            self._stager = StepStager(
                self._target,
                {k: (s.shape, s.dtype) for k, s in self.specs.observation.items()},
                {k: (s.shape, s.dtype) for k, s in self.specs.action.items()},
                n_envs=self.n_envs,
                n_timesteps=T,
                history=agent.require_history(),
            )
            self._device_agent = DeviceAgent(agent, self._stager)
            acting: Agent = self._device_agent
        else:
            acting = agent
        self._side = AgentSide(
            acting,
            views,
            self.specs,
            n_envs=self.n_envs,
            n_timesteps=T,
            store_agent_state=self.store_agent_state,
            worker=-1,
            stage={k: v[:slots] for k, v in self._xobs.items()},
        )
        N = self.n_envs
        self._obs_at = [
            DictTensor({k: v[t] for k, v in self._xobs.items()}, batch_shape=(N,))
            for t in range(slots)
        ]
        self._ids: npt.NDArray[np.int64] = np.arange(N, dtype=np.int64)
        self._counts = [n] * w_count

    def _fail(self, error: Exception) -> None:
        if threading.current_thread() is self._owner.stepper.thread:
            raise error  # the owner's thread: get() closes the batcher and raises it
        super()._fail(error)

    def _close(self) -> None:
        self._owner.closing = True  # mid-slice workers are busy: release() kills them
        res = getattr(self, "_res", None)
        segments = list(res.segments) if res is not None else []
        super()._close()
        finalizer = getattr(self, "_owner_finalizer", None)
        if finalizer is not None:
            finalizer()
        else:  # construction failed
            self._owner.release()
        # Views of the segments keep their mappings (and /dev/shm pages) alive: drop them,
        # so the memory goes now and not when this closed object is garbage-collected.
        for name in _SEGMENT_VIEWS:
            self.__dict__.pop(name, None)
        for segment in segments:
            segment.close()

    def _agent_thread(self) -> int | None:
        return self._owner.stepper.thread.ident  # the agent runs only there

    def _interrupt(self) -> None:
        self._owner.closing = True
        super()._interrupt()

    # ------------------------------------------------------------------ the stepping thread
    def _check(self) -> None:
        """Between two bounded waits: raise if closing, a worker died or reported an error."""
        if self._owner.closing:
            raise BatcherStateError(
                "the collection was interrupted: close() was called; the batcher is closed."
            )
        self._pump(0)

    def _wait_done(self, w: int) -> None:
        self._waiting_for = f"worker {w}"
        wait_bounded(self._done, w, self._check, spin=self._spin)
        if self._status[w] == -1:  # it failed: its error is on the pipe (or it is dying)
            deadline = time.monotonic() + 5.0
            while time.monotonic() < deadline:
                self._pump(0.1)
            worker = self._workers[w]
            raise WorkerError(f"worker {w} (seed {worker.seed}) failed", worker=w)
        self._waiting_for = "the agent"

    def _slice(self, agent_info: DictTensor | None) -> int:
        """One collection, in the stepping thread; how many envs still run."""
        side, workers, n, T = self._side, self._workers, self.n_envs_per_worker, self.n_timesteps
        if agent_info is not None:
            side.set_agent_info(agent_info)
        side.begin(self._ids)  # first: a state viewing the stage is copied before it moves
        for w in workers:
            self._send_bytes(w, _EXECUTE)
        for w in workers:
            self._wait_done(w.index)  # the observations of step 0 are written
        go, xaction = self._go, self._xaction
        if self._fast:
            obs_at = self._obs_at
            for t in range(T):
                action = side.act_all(t, obs_at[t])
                for key, dst in xaction.items():
                    np.copyto(dst, action[key])
                for w in workers:
                    go.post(w.index)
                for w in workers:
                    self._wait_done(w.index)
            self._finish_slice()
            return self.n_envs
        counts, ids = [int(self._status[w.index]) for w in workers], self._ids
        for t in range(T):
            if not len(ids):
                break
            if self._device_agent is not None:
                self._device_agent.rows = ids  # which rows the device history is of
            action = side.act(t, self._gather(counts, len(ids)), ids)
            offset = 0
            for i, k in enumerate(counts):
                if k:
                    for key, dst in xaction.items():
                        dst[i * n : i * n + k] = action[key][offset : offset + k]
                    offset += k
            active = [i for i, k in enumerate(counts) if k]
            for i in active:
                go.post(i)
            new_counts = list(counts)
            positions: list[npt.NDArray[Any]] = []
            some_ended = False
            offset = 0
            for i in active:
                self._wait_done(i)
                status = int(self._status[i])
                if status >= 0:
                    new_counts[i] = status
                    positions.append(np.arange(offset, offset + counts[i]))
                else:
                    new_counts[i] = k = -2 - status
                    positions.append(offset + self._xpos[i * n : i * n + k])
                    some_ended = True
                offset += counts[i]
            side.carry(np.concatenate(positions) if some_ended else None)
            counts = new_counts
            ids = np.concatenate(
                [i * n + self._xids[i * n : i * n + k] for i, k in enumerate(counts) if k]
                or [np.zeros(0, np.int64)]
            )
        self._ids, self._counts = ids, counts
        self._finish_slice()
        return len(ids)

    def _gather(self, counts: list[int], total: int) -> DictTensor:
        """The observations of the running envs, ``[total]`` C-contiguous rows."""
        n = self.n_envs_per_worker
        if total == self.n_envs:
            return self._obs_at[0]
        return DictTensor(
            {
                key: np.concatenate([v[0, w * n : w * n + k] for w, k in enumerate(counts) if k])
                for key, v in self._xobs.items()
            },
            batch_shape=(total,),
        )

    def _finish_slice(self) -> None:
        for w in self._workers:
            w.busy = False

    # ------------------------------------------------------------------ Batcher hooks
    def _reset(self, agent_info: DictTensor, env_info: DictTensor) -> None:
        for w in self._workers:
            w.resetting = True
            rows = self._worker_rows
            self._send(w, Reset(rows(agent_info, w.index), rows(env_info, w.index)))
        self._wait_for(lambda: [w for w in self._workers if w.resetting], None, "reset()")
        self._side.reset(agent_info)
        self._ids = np.arange(self.n_envs, dtype=np.int64)
        self._counts = [self.n_envs_per_worker] * self.n_workers

    def _execute(self, agent_info: DictTensor | None) -> None:
        owner = self._owner
        if self._pending is not None and owner.agent is not None:
            pending, self._pending = self._pending, None
            owner.agent.update(pending)
        self._prepared = self._pool.take()
        for w in self._workers:
            w.busy = True
        owner.stepper.submit(lambda: self._slice(agent_info))

    def _wait(self, blocking: bool, timeout: float | None) -> int | None:
        stepper = self._owner.stepper
        if not blocking:
            if stepper.busy:
                return None
        else:
            deadline = None if timeout is None else time.monotonic() + timeout
            while not stepper.wait(
                0.1 if deadline is None else max(0.0, min(0.1, deadline - time.monotonic()))
            ):
                if self._owner.closing:
                    raise interrupted("the collection")
                if deadline is not None and time.monotonic() >= deadline:
                    raise BatcherTimeoutError(
                        f"get(): the collection did not end within {timeout} s (the stepping "
                        f"thread waits for {self._waiting_for}; the workers are alive: an env "
                        "or the agent may be stuck, or the machine overloaded). Call get() "
                        "again to keep waiting."
                    )
        try:
            return stepper.result()
        except (WorkerError, AgentOutputError, BatcherStateError) as exc:
            self._fail(exc)
        except BatcherError:
            raise
        except Exception as exc:
            name, message, tb = describe_exception(exc)
            self._fail(
                WorkerError(
                    f"the agent raised {name}: {message} (InferenceBatcher calls its one agent "
                    f"in this process, in its stepping thread)\n--- agent traceback ---\n{tb}",
                    worker=-1,
                    remote_traceback=tb,
                )
            )
        raise AssertionError("unreachable")  # pragma: no cover - _fail raises

    def _update(self, state_dict: Mapping[str, Any], timeout: float | None) -> None:
        del timeout  # nothing to wait for: the agent lives here
        check_state_dict(state_dict)
        agent = self._owner.agent
        if agent is None:  # pragma: no cover - closed batchers are refused before
            raise BatcherStateError("update(): the batcher is closed.")
        if self._owner.stepper.busy:
            self._pending = _snapshot(state_dict)  # applied before the next slice
        else:
            self._pending = None
            agent.update(state_dict)
