"""`RayBatcher`: one Ray actor per seed, on one machine or a Ray cluster."""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from rlstructures.agents import Agent, VecEnv
from rlstructures.batchers._base import Batcher, BatcherOptions, check_timeout
from rlstructures.batchers._exceptions import interrupted, remote_error
from rlstructures.batchers._layout import BufferLayout
from rlstructures.batchers._ray_actor import ActorLocation, CollectorActor, Failure
from rlstructures.batchers._ray_runtime import acquire, import_ray, release
from rlstructures.batchers._weights import split
from rlstructures.batchers.errors import (
    AgentOutputError,
    BatcherTimeoutError,
    WorkerError,
)
from rlstructures.dicttensor import DictTensor, Trajectories

if TYPE_CHECKING:
    from typing import Unpack  # Python >= 3.11; annotations only (3.10 at runtime)

__all__ = ["RayBatcher"]

_SLICE = 0.2  # seconds: every wait for the actors is cut in slices of at most this
_CLOSE_WAIT = 2.0  # seconds close() lets the actors close their envs before killing them
# what each actor asks of Ray unless actor_options says otherwise: one CPU, and no restart
# (a restarted actor would have lost its envs' state: the batcher reports the death instead)
_DEFAULT_OPTIONS: Mapping[str, Any] = {"num_cpus": 1, "max_restarts": 0, "max_task_retries": 0}


class _Call(NamedTuple):
    ref: Any  # ray.ObjectRef
    worker: int


class RayBatcher(Batcher):
    """One Ray actor per seed, each with its VecEnv, its agent copy and the same collector.

    Same methods, semantics and results as ``LocalBatcher`` and ``MultiProcessBatcher``
    (given the same seeds and a deterministic agent). Each actor collects into its own
    buffer and returns it as one numpy array through Ray's object store; ``get()`` reads
    it as a zero-copy, read-only view and copies it once into the output it hands back.
    ``execute()`` and ``get(blocking=False)`` are asynchronous (ObjectRefs); an actor runs
    the calls it receives in order, so an ``update()`` reaches every agent before the next
    ``execute()``. ``update(state_dict)`` puts the parameters into the object store once,
    as one flat array, and sends every actor the same reference; it never waits (its
    ``timeout`` is only checked).

    Ray: ``address=None`` uses this process's Ray connection if ``ray.init`` ran, else
    calls ``ray.init()``, which joins the cluster named by ``RAY_ADDRESS`` or started by
    ``ray start`` on this machine, or else starts a local Ray; an address (``"host:6379"``)
    joins that cluster. The batcher shuts Ray down only if it connected it, once the last
    RayBatcher using that connection is closed. Every node needs this package installed
    (the actors import it) and the envs' dependencies.

    Faults: an exception of an env or an agent is raised from ``get()`` / ``reset()`` as
    ``WorkerError`` with the actor's traceback (a bad agent output as
    ``AgentOutputError``); an actor whose process died or whose node was lost is a
    ``WorkerError`` as soon as Ray reports it (a killed process: at once; a lost node:
    after Ray's node health checks fail). Every wait is cut in slices, so ``close()`` from
    another thread interrupts it. After a WorkerError the batcher is closed. ``close()``
    asks the actors to close their envs and agents, waits up to 2 s, and kills them; it is
    idempotent and also runs on garbage collection and at interpreter exit.

    Args:
        make_agent, make_env, n_timesteps, seeds, agent_info, env_info, agent_seeds, device,
        store_agent_state: see ``Batcher`` (the callables are pickled by Ray's cloudpickle).
        address: the Ray cluster to join (see above); None: this process's connection,
            Ray's discovery, or a new local Ray.
        actor_options: options of ``ray.remote(...).options`` for every actor (one mapping),
            or one mapping per seed, e.g. ``{"num_cpus": 2}`` or a ``scheduling_strategy``
            placing each actor on a node. They override the defaults ``num_cpus=1,
            max_restarts=0, max_task_retries=0``.
        start_timeout: seconds to wait at most for every actor to be placed and built
            (a cluster without the resources they ask for keeps them pending); None or
            ``math.inf``: no limit.

    Raises:
        ImportError: Ray is not installed (the ``ray`` extra installs it).
        BatcherTimeoutError: the actors were not all started after ``start_timeout``.
        WorkerError: building an actor's env or agent raised.

    Example (on a running Ray, or a local one it starts)::

        batcher = RayBatcher(make_agent, make_env, n_timesteps=100, seeds=[0, 1000],
                             address="10.0.0.5:6379", actor_options={"num_cpus": 1})
        batcher.reset()
        batcher.execute()
        trajectories, n_running = batcher.get()   # [n_envs, 100] steps
        batcher.close()
    """

    def __init__(
        self,
        make_agent: Callable[[], Agent],
        make_env: Callable[[int], VecEnv],
        *,
        address: str | None = None,
        actor_options: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        start_timeout: float | None = 120.0,
        **common: Unpack[BatcherOptions],
    ) -> None:
        given: object = address
        if given is not None and not isinstance(given, str):
            raise TypeError(
                f"address must be None or a str such as '10.0.0.5:6379', got "
                f"{type(given).__name__} {given!r}."
            )
        self._actor_options = actor_options  # checked by _start, against the seeds
        self._start_timeout = check_timeout(start_timeout, "start_timeout")
        self.address = address
        import_ray()  # before the probe step: a missing extra is the first thing to hear
        super().__init__(make_agent, make_env, **common)

    # ------------------------------------------------------------------ public extras
    @property
    def locations(self) -> tuple[ActorLocation, ...]:
        """Where each actor runs (node id, node address, pid, host name), one per seed."""
        return self._locations

    # ------------------------------------------------------------------ lifecycle
    def _start(self) -> None:
        self._actors: list[Any] = []  # ray.actor.ActorHandle, one per seed
        self._owns_connection = [False]  # shared with the finalizer
        # kills the actors and releases the connection on close(), garbage collection or
        # interpreter exit, once
        self._finalizer = weakref.finalize(self, _shutdown, self._actors, self._owns_connection)
        self._interrupted = threading.Event()
        self._calls: list[_Call] = []  # execute() (or reset(), start) calls in flight
        self._updates: list[_Call] = []  # update() calls not yet known to be done
        self._done: dict[int, Any] = {}  # worker -> the result of its call in self._calls
        self._locations: tuple[ActorLocation, ...] = ()
        self._actor_layout = BufferLayout.build(
            self.specs, self.n_envs_per_worker, self.n_timesteps, self.store_agent_state
        )
        self._owns_connection[0] = acquire(self.address)
        ray = import_ray()
        options = _options_per_actor(self._actor_options, self.n_workers)
        timeout = self._start_timeout
        remote = ray.remote(CollectorActor)
        factories = _put_factories(ray, self.make_agent, self.make_env)  # once for all actors
        for opts in options:
            self._actors.append(remote.options(**opts).remote())
        self._calls = [
            _Call(actor.start.remote(factories, **self._start_args(w)), w)
            for w, actor in enumerate(self._actors)
        ]
        deadline = None if timeout is None else time.monotonic() + timeout
        self._gather(deadline, lambda: self._placement_error(timeout, options))
        self._locations = tuple(self._done.pop(w) for w in range(self.n_workers))

    def _start_args(self, worker: int) -> dict[str, Any]:
        return {
            "seed": self.seeds[worker],
            "agent_seed": None if self.agent_seeds is None else self.agent_seeds[worker],
            "specs": self.specs,
            "n_envs": self.n_envs_per_worker,
            "n_timesteps": self.n_timesteps,
            "store_agent_state": self.store_agent_state,
            "worker": worker,
        }

    def _placement_error(self, timeout: float | None, options: list[dict[str, Any]]) -> Exception:
        ray = import_ray()
        waiting = sorted({c.worker for c in self._calls})
        try:
            available = dict(ray.available_resources())
        except Exception:
            available = {}
        return BatcherTimeoutError(
            f"RayBatcher: actor(s) {waiting} were not started within start_timeout={timeout} "
            f"s. Each asked Ray for {options[waiting[0]]} (actor_options over the defaults "
            f"{dict(_DEFAULT_OPTIONS)}) and the cluster has {available} available: add nodes or "
            "CPUs (`ray start --address=...` on another machine), lower the resources in "
            "`actor_options`, or raise `start_timeout` if the nodes are slow to start workers."
        )

    def _close(self) -> None:
        self._calls, self._updates, self._done = [], [], {}
        self._finalizer()

    def _interrupt(self) -> None:
        self._interrupted.set()

    # ------------------------------------------------------------------ per implementation
    def _reset(self, agent_info: DictTensor, env_info: DictTensor) -> None:
        self._calls = [
            _Call(
                actor.reset.remote(
                    self._worker_rows(agent_info, w), self._worker_rows(env_info, w)
                ),
                w,
            )
            for w, actor in enumerate(self._actors)
        ]
        self._gather(None, None)
        self._done = {}

    def _execute(self, agent_info: DictTensor | None) -> None:
        self._done = {}
        self._calls = [
            _Call(
                actor.execute.remote(
                    None if agent_info is None else self._worker_rows(agent_info, w)
                ),
                w,
            )
            for w, actor in enumerate(self._actors)
        ]

    def _wait(self, blocking: bool, timeout: float | None) -> int | None:
        if not blocking:
            self._poll(0.0)
            if self._calls:
                return None
        else:
            deadline = None if timeout is None else time.monotonic() + timeout
            self._gather(deadline, lambda: _timeout_error(timeout))
        return sum(int(n) for _, n in self._done.values())

    def _assemble(self) -> Trajectories:
        results, self._done = self._done, {}
        # zero-copy, read-only views of the object-store copies, copied once into the output
        parts = [results.pop(w)[0] for w in range(self.n_workers)]
        return self._pool.gather(self._pool.take(), parts, self._actor_layout)

    def _update(self, state_dict: Mapping[str, Any], timeout: float | None) -> None:
        ray = import_ray()
        layout, arrays, others = split(state_dict)
        buffer = np.empty(layout.size, np.uint8)
        layout.write(buffer, arrays)
        ref = ray.put((layout, buffer, others))  # once: every actor gets this reference
        self._updates += [_Call(a.update.remote(ref), w) for w, a in enumerate(self._actors)]
        self._poll(0.0)  # forget the updates already applied; report a failed one

    # ------------------------------------------------------------------ waiting
    def _gather(self, deadline: float | None, on_timeout: Callable[[], Exception] | None) -> None:
        """Wait for every call in ``self._calls`` (their results land in ``self._done``).

        Raises ``on_timeout()`` past ``deadline`` (None: no limit), the WorkerError of a
        failed call, or BatcherStateError when ``close()`` interrupts the wait.
        """
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            self._poll(_SLICE if left is None else max(0.0, min(_SLICE, left)))
            if not self._calls:
                return
            if self._interrupted.is_set():
                raise interrupted("the Ray actors")
            if deadline is not None and time.monotonic() >= deadline:
                assert on_timeout is not None
                raise on_timeout()

    def _poll(self, wait: float) -> None:
        """Fetch what ``self._calls`` and ``self._updates`` finished within ``wait`` s.

        The finished calls leave those lists; the results of ``self._calls`` go into
        ``self._done`` by worker (update results are None).
        """
        ray = import_ray()
        pending = self._calls + self._updates
        if not pending:
            return
        refs = [c.ref for c in pending]
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=wait)
        if not ready:
            return
        done = set(ready)
        for call in self._updates:
            if call.ref in done:
                self._fetch(call)
        for call in self._calls:
            if call.ref in done:
                self._done[call.worker] = self._fetch(call)
        self._calls = [c for c in self._calls if c.ref not in done]
        self._updates = [c for c in self._updates if c.ref not in done]

    def _fetch(self, call: _Call) -> Any:
        """The result of a finished call, or the batcher closed and its error raised."""
        ray = import_ray()
        worker, seed = call.worker, self.seeds[call.worker]
        try:
            value = ray.get(call.ref)
        except ray.exceptions.RayActorError as exc:
            self._fail(self._death(worker, exc))
        except ray.exceptions.RayError as exc:  # e.g. an object lost with its node
            self._fail(
                WorkerError(
                    f"worker {worker} (seed {seed}): Ray failed to return its result: "
                    f"{type(exc).__name__}: {_clip(str(exc))}",
                    worker=worker,
                )
            )
        if isinstance(value, Failure):
            if value.name == AgentOutputError.__name__:
                self._fail(AgentOutputError(value.message))
            self._fail(remote_error(worker, seed, value.name, value.message, value.traceback))
        return value

    def _death(self, worker: int, exc: Exception) -> WorkerError:
        where = ""
        if worker < len(self._locations):
            loc = self._locations[worker]
            where = f", pid {loc.pid} on node {loc.node_ip}"
        return WorkerError(
            f"worker {worker} (seed {self.seeds[worker]}{where}): its Ray actor died (its "
            "process was killed or crashed, or its node was lost). Ray says: "
            f"{_clip(str(exc))}",
            worker=worker,
        )

    def _fail(self, error: Exception) -> Any:
        self.close()
        raise error


def _clip(text: str, keep: int = 2000) -> str:
    return text if len(text) <= keep else f"{text[:keep]} [...]"


def _timeout_error(timeout: float | None) -> BatcherTimeoutError:
    return BatcherTimeoutError(
        f"get(timeout={timeout}): the Ray actors did not finish the collection in time. The "
        "batcher stays usable: call get() again (or close() it)."
    )


def _put_factories(ray: Any, make_agent: object, make_env: object) -> Any:
    """``(make_agent, make_env)`` put in the object store, pickled once for every actor.

    Raises a TypeError naming the one that cannot be pickled (Ray's own message shows the
    pair without saying which one failed).
    """
    try:
        return ray.put((make_agent, make_env))
    except TypeError as exc:
        for name, factory in (("make_agent", make_agent), ("make_env", make_env)):
            try:
                ray.cloudpickle.dumps(factory)
            except Exception as error:
                raise TypeError(
                    f"RayBatcher sends {name} to its actors, so it must be picklable, but "
                    f"{name}={factory!r} cannot be pickled: {type(error).__name__}: {error}. "
                    "Lambdas and local functions are fine; what they use must be picklable "
                    "too: build locks, files, sockets or threads inside the function rather "
                    "than capturing them."
                ) from exc
        raise


def _options_per_actor(
    actor_options: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None, n: int
) -> list[dict[str, Any]]:
    """One ``.options(...)`` mapping per actor: ``actor_options`` over the defaults."""
    given: object = actor_options
    if given is None:
        per: list[Mapping[str, Any]] = [{}] * n
    elif isinstance(given, Mapping):
        per = [given] * n
    elif isinstance(given, Sequence) and not isinstance(given, (str, bytes)):
        per = list(given)
        if len(per) != n or not all(isinstance(o, Mapping) for o in per):
            raise ValueError(
                f"actor_options is a sequence of {len(per)} items; expected one mapping per "
                f"seed ({n}), or a single mapping for every actor."
            )
    else:
        raise TypeError(
            f"actor_options must be None, a mapping of ray .options(...) such as "
            f"{{'num_cpus': 1}}, or one mapping per seed; got {type(given).__name__}."
        )
    return [{**_DEFAULT_OPTIONS, **o} for o in per]


def _shutdown(actors: list[Any], owns_connection: list[bool]) -> None:
    """Close and kill the actors, then release the Ray connection if the batcher took it."""
    try:
        if actors:
            ray = import_ray()
            if ray.is_initialized():
                try:
                    refs = [a.close.remote() for a in actors]
                    ray.wait(refs, num_returns=len(refs), timeout=_CLOSE_WAIT)
                except Exception:
                    pass
                for actor in actors:
                    try:
                        ray.kill(actor, no_restart=True)
                    except Exception:
                        pass
            actors.clear()
    finally:
        if owns_connection[0]:
            owns_connection[0] = False
            release()
