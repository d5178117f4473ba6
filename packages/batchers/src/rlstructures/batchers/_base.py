"""What every batcher shares: arguments, call order, agent_info/env_info rows, the result."""

from __future__ import annotations

import abc
import enum
import errno
import math
import operator
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypedDict, overload

import numpy as np

from rlstructures.agents import Agent, VecEnv
from rlstructures.batchers._layout import BufferLayout, Specs
from rlstructures.batchers._legacy import removed_attribute
from rlstructures.batchers._pool import OutputPool
from rlstructures.batchers._probe import probe_specs, replicate
from rlstructures.batchers.errors import BatcherError, BatcherStateError
from rlstructures.dicttensor import DictTensor, Spec, Trajectories

if TYPE_CHECKING:
    from typing import Required, Self  # Python >= 3.11; annotations only (3.10 at runtime)

__all__ = ["Batcher", "BatcherOptions"]


def _out_of_descriptors(kind: str, workers: int, exc: OSError) -> OSError:
    """The error for a batcher that could not start for want of file descriptors."""
    try:
        import resource

        limit = f"{resource.getrlimit(resource.RLIMIT_NOFILE)[0]} per process"
    except (ImportError, OSError, ValueError):  # pragma: no cover - not POSIX
        limit = "unknown"
    system = " (the system's table is full)" if exc.errno == errno.ENFILE else ""
    return OSError(
        exc.errno,
        f"{kind} with {workers} workers could not start: out of file descriptors{system} "
        f"({exc.strerror or exc}; limit: {limit}, open now: {_open_fds()}). Each worker holds "
        "a pipe and its process sentinel, each batcher its segments: close the batchers "
        "you no longer use, or raise the limit (`ulimit -n 4096`, "
        "resource.setrlimit(resource.RLIMIT_NOFILE, ...)). Nothing of this one is left.",
    )


def _open_fds() -> str:
    try:
        return str(len(os.listdir("/proc/self/fd")))
    except OSError:
        return "unknown"


def _int_seeds(seeds: object, name: str) -> list[int]:
    """``seeds`` as a list of Python ints; TypeError naming ``name`` for anything else."""
    if isinstance(seeds, str | bytes) or not isinstance(seeds, Iterable):
        raise TypeError(
            f"{name} must be a sequence of ints, one per worker (e.g. [0, 1000]), got "
            f"{seeds!r} ({type(seeds).__name__})."
        )
    out = []
    for seed in seeds:
        try:
            if isinstance(seed, bool | np.bool_):
                raise TypeError
            out.append(operator.index(seed))
        except TypeError:
            raise TypeError(
                f"{name} must hold ints (e.g. [0, 1000]), got {seed!r} "
                f"({type(seed).__name__}) at index {len(out)}. Convert them, e.g. "
                f"`[int(s) for s in {name}]`."
            ) from None
    return out

class BatcherOptions(TypedDict, total=False):
    """The keyword arguments of ``Batcher.__init__``, for subclasses with options of their own.

    Such a subclass writes only its own options and passes the rest on::

        def __init__(self, make_agent, make_env, *, start_method="spawn",
                     **common: Unpack[BatcherOptions]) -> None:
            self._start_method = start_method  # what _start() needs
            super().__init__(make_agent, make_env, **common)

    (``tests/batchers/test_contract.py`` checks that it lists the same names as
    ``Batcher.__init__``.)
    """

    n_timesteps: Required[int]
    seeds: Required[Sequence[int]]
    agent_info: DictTensor | None
    env_info: DictTensor | None
    agent_seeds: Sequence[int] | None
    device: Any
    store_agent_state: bool


class _State(enum.Enum):
    NEW = "new"  # built, never reset
    IDLE = "idle"  # reset, no execute in flight
    RUNNING = "running"  # execute() called, get() not yet returned the result
    CLOSED = "closed"


def _check_rows(value: DictTensor | None, expected: Mapping[str, Spec], n: int, what: str) -> None:
    if value is None:
        return
    if not isinstance(value, DictTensor):
        raise TypeError(
            f"{what} must be a DictTensor with one row per env, got {type(value).__name__}."
        )
    if value.batch_shape != (n,):
        raise ValueError(
            f"{what} has batch_shape {value.batch_shape}, expected ({n},): one row per env "
            f"(n_envs={n}, ordered by worker then env)."
        )
    specs = value.specs()
    if specs != dict(expected):
        raise ValueError(
            f"{what} has specs {specs}, but the batcher was built with {dict(expected)}. Pass "
            f"rows with the keys, shapes and dtypes of the `{what}` example given to the "
            "constructor."
        )


def check_timeout(timeout: object, name: str = "timeout") -> float | None:
    """``timeout`` as seconds to wait at most, None for no limit (``None`` or ``inf``).

    Args:
        timeout: the value given.
        name: the argument's name, for the messages.

    Raises:
        TypeError: not a number.
        ValueError: NaN or negative.
    """
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float, np.integer, np.floating)):
        raise TypeError(
            f"{name} must be None or a number of seconds, got {type(timeout).__name__} "
            f"{timeout!r}."
        )
    try:
        seconds = float(timeout)
    except OverflowError:  # an int beyond float64 (10**400): longer than any limit
        seconds = math.inf if timeout > 0 else -math.inf
    if math.isnan(seconds) or seconds < 0:
        raise ValueError(
            f"{name} must be None (no limit), a number of seconds >= 0, or math.inf (no "
            f"limit), got {timeout!r}."
        )
    return None if math.isinf(seconds) else seconds + 0.0  # -0.0 as 0.0


class Batcher(abc.ABC):
    """The interface of every batcher (see the subclasses for how agents run).

    Usage::

        batcher.reset(agent_info=None, env_info=None)   # one row per env
        batcher.execute(agent_info=None)                 # starts collecting; returns at once
        trajectories, n_running = batcher.get()          # (None, n) if not ready and blocking=False
        batcher.update(state_dict)                       # new weights for the agents
        batcher.close()                                  # also via `with`

    Args:
        make_agent: picklable callable returning an Agent (e.g. a ``functools.partial``).
        make_env: picklable callable ``make_env(seed) -> VecEnv``.
        n_timesteps: T, the steps collected per running env by one ``execute()``.
        seeds: one VecEnv (and one worker) per seed; VecEnv w is ``make_env(seeds[w])``.
        agent_info: an example row (batch ``(1,)``) fixing the keys, shapes and dtypes of the
            per-env agent information; it is also the default of ``reset``.
        env_info: likewise for the per-env environment information passed to env resets.
        agent_seeds: one seed per worker for ``agent.seed``; None leaves agents unseeded.
        device: ``"cpu"`` returns numpy trajectories; ``"cuda:N"`` torch tensors on that
            device, copied through pinned memory without blocking.
        store_agent_state: also store ``agent_state/*`` and ``_agent_state/*`` per step.

    A subclass builds what it runs (workers, buffers) in ``_start()``, which the constructor
    calls last, once the probe step found the specs and the layout; if it raises, the
    batcher is closed (``_close()`` must then release whatever ``_start()`` built so far).
    Its own constructor options, if any, come with ``**common: Unpack[BatcherOptions]``.
    """

    def __init__(
        self,
        make_agent: Callable[[], Agent],
        make_env: Callable[[int], VecEnv],
        *,
        n_timesteps: int,
        seeds: Sequence[int],
        agent_info: DictTensor | None = None,
        env_info: DictTensor | None = None,
        agent_seeds: Sequence[int] | None = None,
        device: Any = "cpu",
        store_agent_state: bool = False,
    ) -> None:
        self._state = _State.CLOSED  # until construction succeeds
        # One call at a time: another thread's call waits (get(blocking=False) returns
        # (None, n) instead); close() interrupts a call that waits for workers.
        self._lock = threading.RLock()
        self._pid = os.getpid()  # the process that owns the batcher (see _require)
        makers: tuple[object, object] = (make_agent, make_env)
        if not all(callable(m) for m in makers):
            raise TypeError(
                "make_agent and make_env must be callables (picklable ones for processes)."
            )
        steps: object = n_timesteps
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
            raise ValueError(f"n_timesteps must be a positive int, got {n_timesteps!r}.")
        if isinstance(seeds, (int, np.integer)):
            raise TypeError(
                f"seeds must be a sequence with one seed per worker (e.g. [0, 1000]), got the "
                f"int {seeds}."
            )
        seeds = _int_seeds(seeds, "seeds")
        if not seeds:
            raise ValueError("seeds must hold at least one seed (one VecEnv per seed).")
        if agent_seeds is not None:
            agent_seeds = _int_seeds(agent_seeds, "agent_seeds")
            if len(agent_seeds) != len(seeds):
                raise ValueError(
                    f"agent_seeds has {len(agent_seeds)} entries but seeds has {len(seeds)}: give "
                    "one agent seed per worker."
                )
        self.make_agent = make_agent
        self.make_env = make_env
        self.n_timesteps = int(n_timesteps)
        self.seeds = seeds
        self.agent_seeds = agent_seeds
        self.device = device
        self._target: Any = None  # a torch.device when trajectories are handed over on one
        self._handover: Any = None  # _cuda.DeviceHandover for that device (first get())
        if not (isinstance(device, str) and device.split(":")[0] == "cpu"):
            try:
                from rlstructures.batchers._cuda import parse_device
            except ImportError as exc:
                raise ImportError(
                    f"device={device!r} needs PyTorch; install it with: pip install "
                    "'rlstructures-batchers[torch]'"
                ) from exc
            self._target = parse_device(device)
        self.store_agent_state = bool(store_agent_state)
        specs, per_worker = probe_specs(make_agent, make_env, seeds[0], agent_info, env_info)
        self.specs: Specs = specs
        self.n_envs_per_worker = per_worker
        self.n_envs = per_worker * len(seeds)
        self.layout = BufferLayout.build(
            specs, self.n_envs, self.n_timesteps, self.store_agent_state
        )
        self._agent_info_default = replicate(agent_info, self.n_envs, "agent_info")
        self._env_info_default = replicate(env_info, self.n_envs, "env_info")
        self._n_running = 0
        self._state = _State.NEW
        self._pool = OutputPool(self.layout)  # get()'s copies, recycled
        try:
            self._start()
        except BaseException as exc:
            self.close()
            out_of_fds = getattr(exc, "errno", None) in (errno.EMFILE, errno.ENFILE)
            if out_of_fds and isinstance(exc, OSError) and not isinstance(exc, BatcherError):
                raise _out_of_descriptors(type(self).__name__, len(seeds), exc) from exc
            raise

    # ------------------------------------------------------------------ public API
    @property
    def n_workers(self) -> int:
        """How many VecEnvs (one per seed)."""
        return len(self.seeds)

    def reset(
        self, agent_info: DictTensor | None = None, env_info: DictTensor | None = None
    ) -> None:
        """Reset every env and agent state.

        Args:
            agent_info: ``[n_envs]`` rows (ordered by worker, then env); None keeps the
                constructor's example row for every env.
            env_info: ``[n_envs]`` rows passed to the env resets; None: the example row.
        """
        self._refuse_reentry("reset()")
        with self._lock:
            self._require(_State.NEW, _State.IDLE, what="reset()")
            _check_rows(agent_info, self.specs.agent_info, self.n_envs, "agent_info")
            _check_rows(env_info, self.specs.env_info, self.n_envs, "env_info")
            ai = self._agent_info_default if agent_info is None else agent_info.numpy()
            ei = self._env_info_default if env_info is None else env_info.numpy()
            self._reset(ai, ei)
            self._n_running = self.n_envs
            self._state = _State.IDLE

    def execute(self, agent_info: DictTensor | None = None) -> None:
        """Start collecting ``n_timesteps`` steps per running env; returns at once.

        Args:
            agent_info: new ``[n_envs]`` agent_info rows from now on (None: keep them).

        Raises:
            BatcherStateError: not reset, a previous result not yet fetched with ``get()``,
                or no env running (episode mode: call ``reset()``).
        """
        self._refuse_reentry("execute()")
        with self._lock:
            self._require(_State.IDLE, what="execute()")
            if self._n_running == 0:
                raise BatcherStateError(
                    "execute(): no env is running (every episode ended). Call `reset()` to start "
                    "new episodes, or build the envs with auto_reset=True."
                )
            _check_rows(agent_info, self.specs.agent_info, self.n_envs, "agent_info")
            self._execute(None if agent_info is None else agent_info.numpy())
            self._state = _State.RUNNING

    @overload
    def get(
        self, blocking: Literal[True] = ..., timeout: float | None = ...
    ) -> tuple[Trajectories, int]: ...

    @overload
    def get(
        self, blocking: bool, timeout: float | None = ...
    ) -> tuple[Trajectories | None, int]: ...

    def get(
        self, blocking: bool = True, timeout: float | None = None
    ) -> tuple[Trajectories | None, int]:
        """The result of the last ``execute()``.

        Args:
            blocking: wait for it; when False, return ``(None, n_running)`` if not ready.
            timeout: seconds to wait at most when blocking (None or ``math.inf``: no limit;
                worker deaths are detected regardless).

        Returns:
            ``(trajectories, n_running)``: B = n_envs sequences (ordered by worker then env)
            of T = n_timesteps steps, with ``lengths`` the steps each env made (steps past
            a length are zeros); the data is a copy the caller owns. ``n_running``
            counts envs still running. Typed ``tuple[Trajectories, int]`` when blocking
            (the default), ``tuple[Trajectories | None, int]`` otherwise.

        Raises:
            BatcherTimeoutError: ``timeout`` expired (the batcher stays usable: call
                ``get()`` again).
            ValueError: ``timeout`` is NaN or negative.
        """
        self._refuse_reentry("get()")
        if not self._lock.acquire(blocking=bool(blocking)):
            return None, self._n_running  # another thread is in a call: not ready for this one
        try:
            self._require(_State.RUNNING, what="get()")
            seconds = check_timeout(timeout)
            n_running = self._wait(blocking, seconds)
            if n_running is None:
                return None, self._n_running
            self._n_running = n_running
            self._state = _State.IDLE
            trajectories = self._assemble()
        finally:
            self._lock.release()
        if self._target is not None:
            if self._handover is None:  # pinned staging allocated once, at the first get()
                from rlstructures.batchers._cuda import DeviceHandover

                self._handover = DeviceHandover(self._target)
            trajectories = self._handover(trajectories)
        return trajectories, n_running

    def update(self, state_dict: Mapping[str, Any], timeout: float | None = None) -> None:
        """New parameters for every agent copy, applied before its next ``execute()``.

        Args:
            state_dict: a mapping of arrays (numpy or torch) and other picklable values,
                e.g. ``model.state_dict()``.
            timeout: seconds to wait at most for the workers to have read the previous
                update, which this one overwrites (None or ``math.inf``: no limit).

        Raises:
            BatcherTimeoutError: ``timeout`` expired; nothing was sent.
            ValueError: ``timeout`` is NaN or negative.
        """
        self._refuse_reentry("update()")
        with self._lock:
            self._require(_State.NEW, _State.IDLE, _State.RUNNING, what="update()")
            self._update(state_dict, check_timeout(timeout))

    @property
    def n_running(self) -> int:
        """Envs running after the last completed ``get()`` (n_envs after ``reset()``)."""
        return self._n_running

    @property
    def closed(self) -> bool:
        """Whether ``close()`` ran (or a WorkerError closed the batcher)."""
        return self._state is _State.CLOSED

    def close(self) -> None:
        """Stop the workers and release every resource. Idempotent.

        In a forked child of the process that created the batcher, only this copy of the
        object is marked closed: the workers and buffers belong to the creator. Called from
        another thread while a call waits for the workers (``get()``, ``update()``,
        ``reset()``), that call raises ``BatcherStateError`` at once and the batcher closes;
        while ``LocalBatcher`` collects, ``close()`` waits for the slice to end.
        """
        self._refuse_reentry("close()")
        if not self._lock.acquire(blocking=False):  # another thread is in a call
            self._interrupt()  # a wait there raises BatcherStateError and lets go
            self._lock.acquire()
        try:
            if self._state is not _State.CLOSED:
                self._state = _State.CLOSED
                if os.getpid() == self._pid:
                    self._close()
        finally:
            self._lock.release()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    if not TYPE_CHECKING:  # for the type checker, __getattr__ would accept any attribute

        def __getattr__(self, name: str) -> Any:
            """Only for names not found: 0.2's (``n_elems``) fail naming the replacement."""
            raise removed_attribute(type(self).__name__, name)

    # ------------------------------------------------------------------ helpers
    def _agent_thread(self) -> int | None:
        """The ident of the thread of this process running the agent or envs now, if any."""
        return None

    def _refuse_reentry(self, what: str) -> None:
        """BatcherStateError for a call from this batcher's own agent or env (a callback).

        Such a call would wait for the collection it is part of (InferenceBatcher: a hang)
        or run inside it (LocalBatcher: a nested collection, or a close() that the collection
        then undoes).
        """
        if self._agent_thread() == threading.get_ident():
            raise BatcherStateError(
                f"{what} was called from inside this batcher's own agent or env, which run "
                "as part of a collection: it cannot be started, waited for or closed from "
                "there. Call the batcher from the training loop (e.g. after get()), not from "
                "the agent or the env."
            )

    def _require(self, *states: _State, what: str) -> None:
        if self._state in states and os.getpid() == self._pid:
            return
        if os.getpid() != self._pid:
            raise BatcherStateError(
                f"{what} is not allowed here: this batcher was created in process {self._pid} "
                f"and this is process {os.getpid()} (a fork of it). A batcher works only in "
                "the process that created it (its workers, buffers and envs are that "
                "process's); build a new one in this process."
            )
        hints = {
            _State.CLOSED: "the batcher is closed (close() ran, or a WorkerError closed it).",
            _State.NEW: "call reset() first.",
            _State.IDLE: "call execute() first.",
            _State.RUNNING: "a collection is in flight: call get() first.",
        }
        raise BatcherStateError(f"{what} is not allowed now: {hints[self._state]}")

    def _assemble_from(self, buffer: Any) -> Trajectories:
        """Trajectories over a private copy of ``buffer`` (one memcpy, then views)."""
        return self._pool.fill(self._pool.take(), buffer)

    def _worker_rows(self, dt: DictTensor, worker: int) -> DictTensor:
        n = self.n_envs_per_worker
        return dt[worker * n : (worker + 1) * n]

    # ------------------------------------------------------------------ per implementation
    @abc.abstractmethod
    def _start(self) -> None:
        """Build the workers (or collectors) and buffers; called last by ``__init__``."""

    @abc.abstractmethod
    def _reset(self, agent_info: DictTensor, env_info: DictTensor) -> None: ...

    @abc.abstractmethod
    def _execute(self, agent_info: DictTensor | None) -> None: ...

    @abc.abstractmethod
    def _wait(self, blocking: bool, timeout: float | None) -> int | None:
        """Wait for the collection; the number of running envs, or None if not ready."""

    @abc.abstractmethod
    def _assemble(self) -> Trajectories: ...

    @abc.abstractmethod
    def _update(self, state_dict: Mapping[str, Any], timeout: float | None) -> None: ...

    @abc.abstractmethod
    def _close(self) -> None: ...

    def _interrupt(self) -> None:  # noqa: B027 - optional hook
        """Make a wait for the workers in another thread raise BatcherStateError (if any)."""
