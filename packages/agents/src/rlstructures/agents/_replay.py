"""`replay_agent`: re-run an agent over stored trajectories, step by step, carrying its state."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from rlstructures.agents._agent import Agent
from rlstructures.agents.errors import ReplayError
from rlstructures.dicttensor import (
    DictTensor,
    Spec,
    TemporalDictTensor,
    Trajectories,
    is_tensor,
)

__all__ = ["replay_agent"]


def replay_agent(
    agent: Agent, trajectories: Trajectories, method: str = "call_replay"
) -> TemporalDictTensor:
    """Run ``agent`` step by step over stored trajectories and return its outputs.

    For ``t = 0 .. T-1`` the agent's ``method`` (default ``call_replay``) is called as
    ``method(sub_trajectories, t, state)``, where ``sub_trajectories`` holds only the
    sequences still running at step t (``t < lengths``), in increasing order, and
    ``state`` their states. Rows past a sequence's length are never given to the agent.
    The initial state comes from the ``"agent_state/..."`` keys of ``trajectories.info``
    when there are any (what the batcher stored at the start of each sequence), else from
    ``agent.initial_state(info.select_prefix("agent_info/"), B)``. Each call's
    ``new_state`` is the state of those sequences at the next step.

    The outputs are gathered into a ``[B, T, ...]`` TemporalDictTensor with the lengths of
    ``trajectories`` and zeros on padding steps. When the agent returns torch tensors the
    result is built with ``torch.stack`` (and ``index_copy`` for the padding), so
    gradients flow back to the agent's parameters: a loss computed on the result is a loss
    on exactly what was acquired (recurrent agents included). Otherwise the result is numpy.

    Args:
        agent: the agent (any object with ``method`` and, when ``info`` has no
            ``"agent_state/..."`` keys, ``initial_state``).
        trajectories: B sequences of T steps (numpy or torch, on any device).
        method: the name of the method to call for each step.

    Returns:
        TemporalDictTensor ``[B, T, ...]``: what the method returned for every valid step
        (first element of its result), lengths those of ``trajectories``.

    Raises:
        ReplayError: the agent lacks ``method``, returns something other than two
            DictTensors of the right batch size, or changes keys or row specs between steps.

    Example:
        >>> import numpy as np
        >>> from rlstructures.dicttensor import DictTensor, TemporalDictTensor, Trajectories
        >>> class Doubler(Agent):  # stateless: the default initial_state
        ...     def __call__(self, state, observation, agent_info, history=None):
        ...         return DictTensor({"action": observation["frame"] * 2}), state
        >>> steps = TemporalDictTensor({"observation/frame": np.ones((2, 3), np.int64)},
        ...                            lengths=np.array([3, 1]))
        >>> out = replay_agent(Doubler(), Trajectories(DictTensor({}, batch_shape=2), steps))
        >>> out["action"]
        array([[2, 2, 2],
               [2, 0, 0]])
    """
    if not isinstance(trajectories, Trajectories):
        raise ReplayError(
            f"replay_agent takes a Trajectories (info + sequences), got "
            f"{type(trajectories).__name__}. Build one: `Trajectories(info, sequences)`."
        )
    fn = getattr(agent, method, None)
    if not callable(fn):
        raise ReplayError(
            f"{type(agent).__name__} has no method {method!r} to replay with; pass "
            "`method=` the name of a method taking (trajectories, t, state)."
        )
    b, t_max = trajectories.trajectories.batch_shape
    lengths = _numpy_lengths(trajectories.lengths)
    state = _initial_state(agent, trajectories.info, b)
    collected: list[tuple[npt.NDArray[np.int64], DictTensor]] = []
    running = np.arange(b, dtype=np.int64)
    sub = trajectories
    for t in range(t_max):
        now = np.flatnonzero(lengths > t)
        if not len(now):
            break
        if len(now) != len(running):  # some sequences ended: they are never needed again
            state = state[_index_like(np.searchsorted(running, now), state)]
            sub = trajectories[_index_like(now, trajectories.trajectories.dict_tensor)]
            running = now
        result = fn(sub, t, state)
        output, state = _check_result(result, t, len(now), method, agent)
        collected.append((now, output))
    return _assemble(collected, trajectories, b, t_max, method)


def _numpy_lengths(lengths: Any) -> npt.NDArray[np.int64]:
    if is_tensor(lengths):
        return np.asarray(lengths.detach().cpu().numpy(), dtype=np.int64)
    return np.asarray(lengths, dtype=np.int64)


def _initial_state(agent: Agent, info: DictTensor, b: int) -> DictTensor:
    stored = info.select_prefix("agent_state/")
    if stored.keys():
        return stored
    state: object = agent.initial_state(info.select_prefix("agent_info/"), b)
    if isinstance(state, DictTensor) and not state.keys():  # stateless: any batch shape
        return DictTensor({}, batch_shape=(b,))
    if not isinstance(state, DictTensor) or state.batch_shape != (b,):
        got = state.batch_shape if isinstance(state, DictTensor) else type(state).__name__
        raise ReplayError(
            f"{type(agent).__name__}.initial_state(agent_info, {b}) returned {got}; expected "
            f"a DictTensor of batch ({b},), one row per sequence."
        )
    return state


def _index_like(index: npt.NDArray[np.int64], like: DictTensor) -> Any:
    """``index`` as a torch tensor on the device of ``like``'s leaves when they are torch."""
    if like.backend == "torch" and like.keys():
        import torch

        device = next(iter(like.values())).device
        return torch.from_numpy(index).to(device)
    return index


def _check_result(
    result: Any, t: int, n: int, method: str, agent: Agent
) -> tuple[DictTensor, DictTensor]:
    name = f"{type(agent).__name__}.{method}"
    if not (
        isinstance(result, tuple)
        and len(result) == 2
        and all(isinstance(r, DictTensor) for r in result)
    ):
        raise ReplayError(
            f"{name} returned {type(result).__name__} at step {t}; it must return "
            "(output, new_state), two DictTensors."
        )
    output, new_state = result
    if not new_state.keys():  # a stateless agent: `DictTensor({})` is accepted as well
        new_state = DictTensor({}, batch_shape=(n,))
    for what, dt in (("output", output), ("new_state", new_state)):
        if dt.batch_shape != (n,):
            raise ReplayError(
                f"{name} returned {what} of batch_shape {dt.batch_shape} at step {t}; expected "
                f"({n},): one row per sequence still running at that step."
            )
    return output, new_state


def _assemble(
    collected: list[tuple[npt.NDArray[np.int64], DictTensor]],
    trajectories: Trajectories,
    b: int,
    t_max: int,
    method: str,
) -> TemporalDictTensor:
    lengths = trajectories.lengths
    if not collected:
        return TemporalDictTensor(DictTensor({}, batch_shape=(b, t_max)), lengths)
    first = collected[0][1]
    specs, backend = first.specs(), first.backend
    for t, (_, out) in enumerate(collected):
        if out.keys() and out.backend != backend:
            raise ReplayError(
                f"{method} returned a {out.backend} output at step {t} but a {backend} one at "
                "step 0; return one backend for every step."
            )
        if out.specs() != specs:
            raise ReplayError(
                f"{method} returned output keys/specs {_show(out.specs())} at step {t} but "
                f"{_show(specs)} at step 0; every step must return the same keys, row shapes "
                "and dtypes."
            )
    if backend == "torch" and specs:
        data = _assemble_torch(collected, b, t_max)
    else:
        data = _assemble_numpy(collected, specs, b, t_max)
    if is_tensor(lengths) and backend == "numpy":
        lengths = _numpy_lengths(lengths)
    return TemporalDictTensor(DictTensor(data, batch_shape=(b, t_max)), lengths)


def _assemble_numpy(
    collected: list[tuple[npt.NDArray[np.int64], DictTensor]],
    specs: dict[str, Spec],
    b: int,
    t_max: int,
) -> dict[str, Any]:
    data = {k: np.zeros((b, t_max, *s.shape), s.dtype) for k, s in specs.items()}
    for t, (rows, out) in enumerate(collected):
        for key, value in out.items():
            data[key][rows, t] = value
    return data


def _assemble_torch(
    collected: list[tuple[npt.NDArray[np.int64], DictTensor]], b: int, t_max: int
) -> dict[str, Any]:
    import torch

    first = collected[0][1]
    data: dict[str, Any] = {}
    for key, v0 in first.items():
        steps = []
        for rows, out in collected:
            value = out[key]
            if len(rows) != b:
                full = torch.zeros((b, *value.shape[1:]), dtype=value.dtype, device=value.device)
                index = torch.from_numpy(rows).to(value.device)
                value = full.index_copy(0, index, value)
            steps.append(value)
        pad = t_max - len(steps)
        if pad:
            steps += [torch.zeros((b, *v0.shape[1:]), dtype=v0.dtype, device=v0.device)] * pad
        data[key] = torch.stack(steps, dim=1)
    return data


def _show(specs: dict[str, Spec]) -> str:
    return "{" + ", ".join(f"{k!r}: {s.dtype}{list(s.shape)}" for k, s in specs.items()) + "}"
