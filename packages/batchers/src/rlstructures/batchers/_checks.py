"""Checks of what factories, envs and agents hand to a batcher, with errors that say where.

Every error names where it happened: ``"probe"`` (the step at construction) or
``(worker, step)`` during a collection, formatted only when an error is raised.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from rlstructures.agents import Agent, VecEnv
from rlstructures.batchers.errors import AgentOutputError
from rlstructures.dicttensor import DictTensor, Spec

__all__ = [
    "Checks",
    "StateCheck",
    "at",
    "check_agent",
    "check_env",
    "check_leaves",
    "check_output",
    "checks_of",
    "numpy_view",
]

Checks = tuple[tuple[str, tuple[int, ...], np.dtype[Any]], ...]
Where = str | tuple[int, int]

_AGENT_METHODS: Final = ("initial_state", "require_history", "update", "seed", "close")


def checks_of(specs: Mapping[str, Spec]) -> Checks:
    """``(key, row_shape, dtype)`` per key of ``specs``."""
    return tuple((k, s.shape, s.dtype) for k, s in specs.items())


def at(where: Where) -> str:
    """``where`` for a message: "probe", "worker 1, step 7", "the agent (...), step 7".

    Worker -1 is InferenceBatcher's one agent, acting for every worker.
    """
    if isinstance(where, str):
        return where
    who = f"worker {where[0]}" if where[0] >= 0 else "the agent (InferenceBatcher)"
    return f"{who}, step {where[1]}"


def check_env(env: object, where: str) -> VecEnv:
    """``env`` if it looks like a VecEnv, else a TypeError saying what ``make_env`` returned."""
    missing = [m for m in ("reset", "step", "close", "n_envs") if not hasattr(env, m)]
    if missing:
        raise TypeError(
            f"{where}: make_env(seed) must return a VecEnv (with reset, step, close, n_envs), "
            f"got {type(env).__name__} lacking {missing}. Wrap gymnasium envs with "
            "`rlstructures.agents.GymVecEnv(make_env, n_envs, seed)`. The batchers call "
            "`make_env(seed)` with the seed as its only positional argument."
        )
    return env  # type: ignore[return-value]  # duck-typed Protocol check just above


def check_agent(agent: object, where: str) -> Agent:
    """``agent`` if it looks like an Agent, else a TypeError saying what ``make_agent`` returned."""
    missing = [m for m in _AGENT_METHODS if not callable(getattr(agent, m, None))]
    if not callable(agent):
        missing.append("__call__")
    if missing:
        raise TypeError(
            f"{where}: make_agent() must return an Agent (a subclass of "
            f"`rlstructures.agents.Agent`), got {type(agent).__name__} lacking {missing}. "
            "Pass the agent's class or a function building one, e.g. "
            "`functools.partial(MyAgent, hidden=64)`, not an instance or its output."
        )
    return agent  # type: ignore[return-value]  # duck-typed check just above


def _keys_error(where: Where, what: str, got: Any, checks: Checks) -> AgentOutputError:
    expected = {c[0] for c in checks}
    missing = sorted(expected - set(got))
    extra = sorted(set(got) - expected)
    return AgentOutputError(
        f"{at(where)}: {what} lacks key(s) {', '.join(map(repr, missing)) or 'none'} and has "
        f"unexpected key(s) {', '.join(map(repr, extra)) or 'none'}; every step must return "
        f"the keys of the first step: {sorted(expected)}."
    )


def check_leaves(
    value: object, what: str, n: int, checks: Checks | None, where: Where
) -> dict[str, npt.NDArray[Any]]:
    """Validate one DictTensor returned by an agent or an env; returns its numpy leaves.

    Args:
        value: the returned object.
        what: its role, for messages ("action", "new_state", "observation").
        n: the expected batch size.
        checks: ``(key, row_shape, dtype)`` per key fixed by the probe step (None: any).
        where: for messages: "probe" or ``(worker, step)``.

    Raises:
        AgentOutputError: not a DictTensor, wrong batch size, keys, row shape or dtype.
    """
    if not isinstance(value, DictTensor):
        raise AgentOutputError(
            f"{at(where)}: {what} must be a DictTensor, got {type(value).__name__}."
        )
    if value.batch_shape != (n,):
        raise AgentOutputError(
            f"{at(where)}: {what} has batch_shape {value.batch_shape}, expected ({n},): one "
            "row per running env."
        )
    leaves = value.to_dict()
    for first in leaves.values():
        if not isinstance(first, np.ndarray):
            leaves = value.numpy().to_dict()
        break
    if checks is None:
        return leaves
    if len(leaves) != len(checks):
        raise _keys_error(where, what, leaves, checks)
    for key, shape, dtype in checks:
        arr = leaves.get(key)
        if arr is None:
            raise _keys_error(where, what, leaves, checks)
        if arr.dtype != dtype or arr.shape[1:] != shape:
            raise AgentOutputError(
                f"{at(where)}: {what}[{key!r}] is {arr.dtype}{list(arr.shape[1:])} per row, "
                f"expected {dtype}{list(shape)} as at the first step. Return the same shape "
                "and dtype at every step (cast with `.astype(...)`)."
            )
    return leaves


def numpy_view(leaf: Any) -> npt.NDArray[Any] | None:
    """A zero-copy numpy view of a plain CPU ``torch.Tensor`` that needs no grad, else None.

    The fast path of the action check (a torch action from ``Categorical.sample()``): any
    other leaf gets the full ``check_leaves``, which converts it or says why it cannot.
    """
    mod = sys.modules.get("torch")
    if mod is None or type(leaf) is not mod.Tensor or not leaf.is_cpu or leaf.requires_grad:
        return None
    try:
        view: npt.NDArray[Any] = leaf.numpy()
    except (RuntimeError, TypeError):  # conjugate/negative bits, dtypes numpy lacks
        return None
    return view


def check_output(value: object, what: str, n: int, checks: Checks | None, where: str) -> DictTensor:
    """Like ``check_leaves`` but returns a numpy DictTensor."""
    return DictTensor(check_leaves(value, what, n, checks, where), batch_shape=(n,))


class StateCheck:
    """Checks a state an agent returns (every step) against the probe's specs.

    A state without keys is the state of a stateless agent whatever its batch shape
    (``DictTensor({})`` has batch ``(0,)``): it is replaced by a keyless DictTensor of the
    expected size. Other states must have the probe's keys, row shapes and dtypes and one
    row per running env. The usual case costs a few attribute reads per key: each leaf is
    compared with the type and dtype of a leaf of that key that passed the full check
    before (numpy or torch, any device); anything else gets the full check, which raises
    ``AgentOutputError`` naming the worker, the step, the key, the expected and the actual.

    Args:
        specs: the per-row specs of the state found at the probe step.
        what: the role, for messages ("new_state", "initial_state", "state").
    """

    def __init__(self, specs: Mapping[str, Spec], what: str = "new_state") -> None:
        self.checks: Checks = checks_of(specs)
        self.what = what
        self._keyless = not self.checks
        self._seen: dict[str, tuple[Any, Any]] = {}  # key -> (leaf type, leaf dtype)
        self._rows = [(k, s) for k, s, _ in self.checks]
        self._empty: dict[int, DictTensor] = {}

    def keyless(self, n: int) -> DictTensor:
        """The keyless state of ``n`` rows (cached)."""
        empty = self._empty.get(n)
        if empty is None:
            empty = self._empty[n] = DictTensor({}, batch_shape=(n,))
        return empty

    def __call__(self, value: object, n: int, where: Where) -> DictTensor:
        """``value`` when valid for ``n`` running envs (a keyless one: of ``n`` rows).

        Raises:
            AgentOutputError: not a DictTensor, wrong batch size, keys, row shape or dtype.
        """
        if type(value) is DictTensor:
            leaves = value.to_dict()
            if not leaves and self._keyless:
                return value if value.batch_shape == (n,) else self.keyless(n)
            if value.batch_shape == (n,) and len(leaves) == len(self._rows):
                seen = self._seen
                for key, row in self._rows:
                    leaf: Any = leaves.get(key)
                    kind = seen.get(key)
                    if (
                        kind is None
                        or type(leaf) is not kind[0]  # None included
                        or leaf.dtype != kind[1]
                        or leaf.shape[1:] != row
                    ):
                        break
                else:
                    return value
        elif isinstance(value, DictTensor) and self._keyless and not value.keys():
            return self.keyless(n)
        check_leaves(value, self.what, n, self.checks, where)  # raises when wrong
        if not isinstance(value, DictTensor):  # pragma: no cover - check_leaves raised
            raise TypeError(type(value).__name__)
        for key, leaf in value.items():  # valid: the next leaves like these take the fast path
            self._seen[key] = (type(leaf), leaf.dtype)
        return value
