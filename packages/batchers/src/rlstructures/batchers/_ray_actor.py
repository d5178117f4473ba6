"""What runs in each Ray actor of a RayBatcher: one VecEnv, one agent copy, the collector.

The actor owns a private buffer laid out like the batcher's (``BufferLayout``) for its own
``n_envs`` rows and runs the same ``Collector`` as LocalBatcher and MultiProcessBatcher
over it. ``execute`` returns that buffer as one uint8 numpy array, which Ray copies into
the object store as the method returns (the actor then reuses its buffer); the learner
reads it as a zero-copy, read-only view and copies it once into its output. Steps past an
env's length are zeroed here, in parallel, so the learner's copy is all it does.

Every method catches the exceptions of the env and the agent (``SystemExit`` and
``KeyboardInterrupt`` included) and returns a ``Failure``
describing them (type name, message, traceback), turned into a WorkerError (or an
AgentOutputError) by the learner: Ray's own exception wrapping would lose the type of
AgentOutputError and format the traceback differently from the other batchers.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import NamedTuple, TypeVar

import numpy as np
import numpy.typing as npt

from rlstructures.agents import Agent, VecEnv
from rlstructures.batchers._build import build_collector
from rlstructures.batchers._collector import Collector
from rlstructures.batchers._exceptions import describe_exception
from rlstructures.batchers._layout import BufferLayout, Specs
from rlstructures.batchers._weights import WeightsLayout, restore
from rlstructures.dicttensor import DictTensor

__all__ = ["CollectorActor", "Failure", "ActorLocation"]

_T = TypeVar("_T")


class Failure(NamedTuple):
    """An exception raised in an actor, described: ``describe_exception``'s three parts."""

    name: str
    message: str
    traceback: str


class ActorLocation(NamedTuple):
    """Where one actor of a RayBatcher runs.

    Attributes:
        node_id: the Ray node id (hex) of the node running it.
        node_ip: that node's address.
        pid: the actor's process id on that node.
        hostname: the node's host name.
    """

    node_id: str
    node_ip: str
    pid: int
    hostname: str


def _guard(fn: Callable[[], _T]) -> _T | Failure:
    try:
        return fn()
    # SystemExit and KeyboardInterrupt too, as in MultiProcessBatcher's workers: left to Ray,
    # sys.exit() in an env ends the actor ("its Ray actor died", no traceback) and a
    # KeyboardInterrupt becomes a TaskCancelledError
    except BaseException as exc:
        return Failure(*describe_exception(exc))


class CollectorActor:
    """The body of one RayBatcher actor (made remote with ``ray.remote`` by the batcher).

    Built empty; ``start`` builds the env, the agent and the collector so that an exception
    there comes back as a ``Failure`` like any other.
    """

    def __init__(self) -> None:
        self._collector: Collector | None = None
        self._buffer: npt.NDArray[np.uint8] = np.zeros(0, np.uint8)

    def start(
        self,
        factories: tuple[Callable[[], Agent], Callable[[int], VecEnv]],
        *,
        seed: int,
        agent_seed: int | None,
        specs: Specs,
        n_envs: int,
        n_timesteps: int,
        store_agent_state: bool,
        worker: int,
    ) -> ActorLocation | Failure:
        """Build this actor's VecEnv, agent and collector; where the actor runs.

        Args:
            factories: ``(make_agent, make_env)`` (put in the object store once by the
                batcher: every actor reads the same copy).
            seed: ``make_env``'s seed.
            agent_seed: ``agent.seed``'s, or None.
            specs: the probe's specs.
            n_envs: the envs of this actor's VecEnv.
            n_timesteps: T.
            store_agent_state: also store the per-step agent state.
            worker: this actor's index in ``seeds``.
        """
        make_agent, make_env = factories

        def build() -> ActorLocation:
            layout = BufferLayout.build(specs, n_envs, n_timesteps, store_agent_state)
            self._buffer = np.zeros(layout.size, np.uint8)
            views = layout.views(self._buffer)
            self._collector = build_collector(
                make_agent,
                make_env,
                seed=seed,
                agent_seed=agent_seed,
                views=views,
                specs=specs,
                n_envs=n_envs,
                n_timesteps=n_timesteps,
                store_agent_state=store_agent_state,
                worker=worker,
            )
            return _location()

        return _guard(build)

    def reset(self, agent_info: DictTensor, env_info: DictTensor) -> Failure | None:
        """Reset every env and the agent state (``[n_envs]`` rows)."""
        return _guard(lambda: self._require().reset(agent_info, env_info))

    def execute(self, agent_info: DictTensor | None) -> tuple[npt.NDArray[np.uint8], int] | Failure:
        """Collect one slice: ``(buffer, n_running)``, the buffer being the whole layout."""

        def run() -> tuple[npt.NDArray[np.uint8], int]:
            n_running = self._require().execute(agent_info)  # padding zeroed (EnvSide)
            return self._buffer, n_running

        return _guard(run)

    def update(
        self, weights: tuple[WeightsLayout, npt.NDArray[np.uint8], bytes]
    ) -> Failure | None:
        """Load new parameters: ``(layout, flat buffer, other values)`` of ``_weights.split``.

        Ray hands every actor of a node the same object-store copy (read-only); ``restore``
        copies the arrays out of it.
        """
        layout, buffer, others = weights
        return _guard(lambda: self._require().agent.update(restore(layout, buffer, others)))

    def close(self) -> Failure | None:
        """Close the env and the agent."""
        collector, self._collector = self._collector, None
        if collector is None:
            return None
        return _guard(collector.close)

    def _require(self) -> Collector:
        if self._collector is None:
            raise RuntimeError("CollectorActor used before start()")  # the batcher starts it
        return self._collector


def _location() -> ActorLocation:
    import ray  # in an actor process: Ray is running

    context = ray.get_runtime_context()
    return ActorLocation(
        str(context.get_node_id()),
        str(ray.util.get_node_ip_address()),
        os.getpid(),
        socket.gethostname(),
    )
