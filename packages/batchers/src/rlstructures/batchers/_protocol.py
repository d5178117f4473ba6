"""The messages between a batcher and its worker processes: one NamedTuple per message.

Messages are small and once per command (never per step): trajectories and weights go
through shared memory. Each message names its kind in its last field (an Enum member), and
each side dispatches on it with an ``else`` that raises, naming the unknown kind, so a
message nobody handles is an error, never silently dropped.

owner -> worker (``Command``), after the buffer's file descriptor (``send_handle``):
    ``Reset(agent_info, env_info)`` | ``Execute(agent_info | None)``
    | ``Weights(version, layout | None, others)`` (with a layout: the file descriptor of a
    new weights segment follows) | ``Close()``
worker -> owner (``Reply``):
    ``Ready()`` | ``ResetDone()`` | ``Done(n_running)`` | ``WeightsDone(version)``
    | ``Failed(type_name, message, traceback)``
"""

from __future__ import annotations

import enum
from typing import Literal, NamedTuple

from rlstructures.batchers._weights import WeightsLayout
from rlstructures.dicttensor import DictTensor

__all__ = [
    "Close",
    "Command",
    "Done",
    "Execute",
    "Failed",
    "Ready",
    "Reply",
    "Reset",
    "ResetDone",
    "Weights",
    "WeightsDone",
    "unknown",
]


class Command(enum.Enum):
    """What the owner asks a worker."""

    RESET = "reset"
    EXECUTE = "execute"
    WEIGHTS = "weights"
    CLOSE = "close"


class Reply(enum.Enum):
    """What a worker answers."""

    READY = "ready"
    RESET_DONE = "reset_done"
    DONE = "done"
    WEIGHTS_DONE = "weights_done"
    FAILED = "failed"


class Reset(NamedTuple):
    """Reset every env: ``[n_envs]`` rows of this worker."""

    agent_info: DictTensor
    env_info: DictTensor
    kind: Literal[Command.RESET] = Command.RESET


class Execute(NamedTuple):
    """Collect one slice; new ``[n_envs]`` agent_info rows first, unless None."""

    agent_info: DictTensor | None
    kind: Literal[Command.EXECUTE] = Command.EXECUTE


class Weights(NamedTuple):
    """New parameters, in the weights segment (a new one when ``layout`` is not None)."""

    version: int
    layout: WeightsLayout | None
    others: bytes  # the non-array values, pickled by `_weights.split`
    kind: Literal[Command.WEIGHTS] = Command.WEIGHTS


class Close(NamedTuple):
    """Stop: close the env and the agent, exit."""

    kind: Literal[Command.CLOSE] = Command.CLOSE


class Ready(NamedTuple):
    """The worker built its env and agent."""

    kind: Literal[Reply.READY] = Reply.READY


class ResetDone(NamedTuple):
    """The reset finished."""

    kind: Literal[Reply.RESET_DONE] = Reply.RESET_DONE


class Done(NamedTuple):
    """The slice is in the buffer; ``n_running`` envs still run."""

    n_running: int
    kind: Literal[Reply.DONE] = Reply.DONE


class WeightsDone(NamedTuple):
    """The agent took the weights of ``version``."""

    version: int
    kind: Literal[Reply.WEIGHTS_DONE] = Reply.WEIGHTS_DONE


class Failed(NamedTuple):
    """The worker raised (see ``describe_exception``); it exits after this message."""

    type_name: str
    message: str
    traceback: str
    kind: Literal[Reply.FAILED] = Reply.FAILED


def unknown(message: object, side: str, expected: type[enum.Enum]) -> ValueError:
    """The error for a message of no known kind (a bug of this package, or a mixed install).

    Args:
        message: what arrived.
        side: who received it, for the message ("worker 1", "the batcher").
        expected: the Enum of the kinds it handles.
    """
    kind = getattr(message, "kind", message)
    return ValueError(
        f"{side} received a message of unknown kind {kind!r} ({type(message).__name__}); it "
        f"handles {[k.name for k in expected]}. The owner and the workers run different code "
        "(reinstall rlstructures-batchers and restart), or a new kind lacks its handler."
    )
