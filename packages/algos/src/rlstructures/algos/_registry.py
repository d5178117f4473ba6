"""The algorithms the command line knows, where they live and which action spaces they handle.

Torch-free, so that listing the algorithms (``rlstructures-train --help``) and checking an
env against them cost nothing. An algorithm whose module is not shipped is listed as not
available yet, and choosing it is a clear error rather than a pretence.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from types import ModuleType
from typing import Final, Literal

from rlstructures.algos.errors import AlgorithmNotAvailableError

__all__ = ["ALGORITHMS", "Algorithm", "ActionKind", "algorithm", "algorithms_for"]

ActionKind = Literal["discrete", "box"]


@dataclass(frozen=True, slots=True)
class Algorithm:
    """One entry of the command line.

    Attributes:
        name: the command-line name (``"ppo"``).
        module: the module holding its config dataclass and ``train``.
        config: the name of the config dataclass in ``module``.
        actions: the action space kinds it handles.
        summary: one line for ``--help``.
    """

    name: str
    module: str
    config: str
    actions: frozenset[ActionKind]
    summary: str

    @property
    def available(self) -> bool:
        """Whether this version of the package ships the module."""
        return importlib.util.find_spec(self.module) is not None

    def load(self) -> ModuleType:
        """Import the algorithm's module.

        Raises:
            AlgorithmNotAvailableError: the module is not part of this version.
        """
        if not self.available:
            ready = ", ".join(a.name for a in ALGORITHMS.values() if a.available)
            raise AlgorithmNotAvailableError(
                f"{self.name} ({self.summary}) is not available yet in this version of "
                f"rlstructures-algos; available now: {ready}."
            )
        return importlib.import_module(self.module)


ALGORITHMS: Final[dict[str, Algorithm]] = {
    a.name: a
    for a in (
        Algorithm(
            "a2c",
            "rlstructures.algos.a2c",
            "A2CConfig",
            frozenset({"discrete", "box"}),
            "advantage actor-critic with GAE",
        ),
        Algorithm(
            "ppo",
            "rlstructures.algos.ppo",
            "PPOConfig",
            frozenset({"discrete", "box"}),
            "proximal policy optimisation (clipped)",
        ),
        Algorithm(
            "ddqn",
            "rlstructures.algos.dqn",
            "DQNConfig",
            frozenset({"discrete"}),
            "double deep Q-network",
        ),
        Algorithm(
            "sac",
            "rlstructures.algos.sac",
            "SACConfig",
            frozenset({"box"}),
            "soft actor-critic",
        ),
    )
}


def algorithm(name: str) -> Algorithm:
    """The entry named ``name``.

    Raises:
        AlgorithmNotAvailableError: no algorithm of that name.
    """
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise AlgorithmNotAvailableError(
            f"unknown algorithm {name!r}; choose one of {', '.join(ALGORITHMS)}."
        ) from None


def algorithms_for(kind: ActionKind) -> list[str]:
    """The names of the algorithms that handle ``kind`` action spaces."""
    return [a.name for a in ALGORITHMS.values() if kind in a.actions]
