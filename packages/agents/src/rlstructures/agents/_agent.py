"""The `Agent` abstract base class: a policy with an explicit, batched internal state."""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any, Final

import numpy as np

from rlstructures.dicttensor import DictTensor, TemporalDictTensor, Trajectories, is_tensor

__all__ = ["Agent"]

#: The key groups of ``history``: the observations and the agent's own outputs.
_HISTORY_PREFIXES: Final = ("observation/", "action/")


class Agent(abc.ABC):
    """A batched policy: B observations in, B actions (and B new states) out.

    An agent is called once per time step on the envs that are still running. Its internal
    state (a recurrent hidden vector, the current option of a hierarchical policy, a step
    counter, ...) is not kept inside the object but passed in and returned as a DictTensor,
    so batchers can store it, slice it when envs drop out and replay it later.

    Everything the agent puts in the returned ``action`` DictTensor is stored by the batchers
    (under ``"action/..."``): that is how an agent says what is kept (log-probabilities,
    values, option ids, attention weights, ...). The key ``"action"`` is required and is what
    the environment receives.

    When an observation has ``initial_state`` True (a fresh episode, e.g. after an auto-reset),
    the agent must start from a fresh state for that row: see ``reset_where_initial``.

    Agents receive DictTensors whose backend they do not choose: observations from envs are
    numpy, and so is a state read back from stored trajectories (``replay_agent`` starts from
    the ``"agent_state/..."`` keys a batcher stored). A torch agent calls ``.torch()``
    (zero-copy, a no-op on torch) or ``.to(device)`` on its inputs, state included, and may
    return torch or numpy DictTensors. An agent that never imports torch works everywhere.

    A stateless agent defines ``__call__`` only: the default ``initial_state`` is a
    DictTensor without keys, and a keyless state is accepted whatever its batch shape
    (``DictTensor({})`` included), by ``replay_agent`` and the batchers alike.

    Example:
        >>> import numpy as np
        >>> class Greedy(Agent):  # stateless: no initial_state to write
        ...     def __call__(self, state, observation, agent_info, history=None):
        ...         action = observation["frame"].argmax(axis=1)
        ...         return DictTensor({"action": action}), state
        >>> agent = Greedy()
        >>> obs = DictTensor({"frame": np.array([[0.1, 0.9], [0.8, 0.2]])})
        >>> no_keys = DictTensor({}, batch_shape=(2,))
        >>> action, state = agent(agent.initial_state(no_keys, 2), obs, no_keys)
        >>> action["action"], state
        (array([1, 0]), DictTensor(batch_shape=(2,), backend=numpy, {}))
    """

    def initial_state(self, agent_info: DictTensor, batch_size: int) -> DictTensor:
        """The state of ``batch_size`` fresh episodes.

        The default, for a stateless agent, is a DictTensor without keys of batch
        ``(batch_size,)``. A recurrent agent overrides it (e.g. zeros of the hidden size).

        Args:
            agent_info: per-row agent parameters, batch ``(batch_size,)`` (may have no keys).
            batch_size: B.

        Returns:
            A DictTensor of batch ``(B,)``; it may hold no keys (a stateless agent).
        """
        return DictTensor({}, batch_shape=(batch_size,))

    @abc.abstractmethod
    def __call__(
        self,
        state: DictTensor,
        observation: DictTensor,
        agent_info: DictTensor,
        history: TemporalDictTensor | None = None,
    ) -> tuple[DictTensor, DictTensor]:
        """One step for B running envs.

        Args:
            state: ``[B]`` the agent state (from ``initial_state`` or the previous call; any
                backend).
            observation: ``[B]`` the observation keys of the env (``"frame"``, ``"reward"``,
                ``"initial_state"``, ...).
            agent_info: ``[B]`` per-row agent parameters (e.g. an exploration epsilon).
            history: when ``require_history()``: the previous steps of the current slice,
                ``[B, t, ...]``: the observations under ``"observation/..."`` and this
                agent's own earlier outputs under ``"action/..."`` (T = 0 at the first step
                of a slice and at the batchers' probe step). See ``history_at``.

        The arrays of ``observation``, ``agent_info`` and ``history`` may be views of a
        batcher's buffer (not contiguous), valid during the call: copy what you keep beyond
        it, and do not write into them (that would change the stored trajectories).

        Returns:
            ``(action, new_state)``, both of batch ``(B,)``; ``action`` holds ``"action"``.
        """

    def require_history(self) -> bool:
        """Whether ``__call__`` needs ``history`` (e.g. a transformer). Default: False."""
        return False

    def update(self, state_dict: Mapping[str, Any]) -> None:  # noqa: B027 - optional hook
        """Receive new parameters (e.g. a torch ``state_dict``). Default: ignore them."""

    def seed(self, seed: int) -> None:  # noqa: B027 - optional hook
        """Seed the agent's own random generator. Default: nothing to seed."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources. Default: nothing to release."""

    def call_replay(
        self, trajectories: Trajectories, t: int, state: DictTensor
    ) -> tuple[DictTensor, DictTensor]:
        """Re-run step ``t`` of stored trajectories (used by ``replay_agent``).

        ``trajectories`` holds only the sequences still running at step t (``t < lengths``)
        and ``state`` their states. The default feeds the stored observation at t
        (``"observation/..."`` keys), ``"agent_info/..."`` of ``trajectories.info`` and,
        when ``require_history()``, ``history_at(trajectories, t)`` (the history the
        batchers passed at that step) to ``__call__``, so replayed outputs equal acting
        outputs. Override it to compute extra outputs for a loss (values, logits with
        gradients, ...).

        Args:
            trajectories: the sequences still running at step t (a sub-batch).
            t: the step to re-run.
            state: their states at step t.

        Returns:
            ``(output, new_state)``, both of batch ``(len(trajectories),)``.
        """
        observation = trajectories.trajectories.temporal_index(t).select_prefix("observation/")
        agent_info = trajectories.info.select_prefix("agent_info/")
        if self.require_history():
            return self(state, observation, agent_info, self.history_at(trajectories, t))
        return self(state, observation, agent_info)

    @staticmethod
    def history_at(trajectories: Trajectories, t: int) -> TemporalDictTensor:
        """The ``history`` a batcher passes at step ``t`` of a slice, rebuilt from storage.

        The steps ``0 .. t-1`` of ``trajectories`` (``temporal_slice(0, t)``, a view),
        restricted to the ``"observation/..."`` keys and the agent's own stored outputs
        ``"action/..."``: exactly what ``__call__`` received as ``history`` while acting,
        when ``trajectories`` is one slice returned by a batcher (step 0 of each sequence
        is the first step of the slice).

        Args:
            trajectories: stored sequences (e.g. the sub-batch given to ``call_replay``).
            t: the step about to be (re-)run, ``0 <= t <= T``.

        Returns:
            TemporalDictTensor ``[B, t, ...]`` (T = 0 at ``t = 0``), lengths
            ``min(lengths, t)``.

        Example:
            >>> import numpy as np
            >>> steps = TemporalDictTensor({
            ...     "observation/frame": np.arange(6).reshape(2, 3),
            ...     "action/action": np.zeros((2, 3), np.int64),
            ...     "_observation/frame": np.arange(6).reshape(2, 3) + 1,
            ... })
            >>> tr = Trajectories(DictTensor({}, batch_shape=2), steps)
            >>> history = Agent.history_at(tr, 2)
            >>> sorted(history.keys()), history["observation/frame"]
            (['action/action', 'observation/frame'], array([[0, 1],
                   [3, 4]]))
        """
        past = trajectories.trajectories.temporal_slice(0, t)
        keys = [k for k in past.keys() if k.startswith(_HISTORY_PREFIXES)]
        return past.select(keys)

    @staticmethod
    def reset_where_initial(
        state: DictTensor, initial: DictTensor, observation: DictTensor
    ) -> DictTensor:
        """Reset the rows of ``state`` where a new episode starts.

        Returns ``state`` with the rows where ``observation["initial_state"]`` is True
        replaced by the rows of ``initial`` (e.g. ``self.initial_state(agent_info, B)``).
        The result has the backend (and torch device) of ``state``: ``initial`` and the mask
        are converted when needed. A stateless agent (no keys) gets its state back unchanged;
        so does any state when no row starts an episode. For torch states, gradients flow
        through the rows that are kept.

        Args:
            state: ``[B]`` the current state.
            initial: ``[B]`` fresh states, same keys and row specs as ``state``.
            observation: ``[B]`` holding the bool key ``"initial_state"``.

        Example:
            >>> import numpy as np
            >>> state = DictTensor({"h": np.array([5.0, 6.0, 7.0])})
            >>> fresh = DictTensor({"h": np.zeros(3)})
            >>> obs = DictTensor({"initial_state": np.array([False, True, False])})
            >>> Agent.reset_where_initial(state, fresh, obs)["h"]
            array([5., 0., 7.])
        """
        if not state.keys():
            return state
        mask = observation["initial_state"]
        if state.backend == "torch":
            device = next(iter(state.values())).device
            if initial.backend != "torch" or next(iter(initial.values())).device != device:
                initial = initial.to(device)
            if not is_tensor(mask):
                import torch

                mask = torch.from_numpy(np.asarray(mask))
            mask = mask.to(device)
        else:
            if initial.backend == "torch":
                initial = initial.numpy()
            if is_tensor(mask):
                mask = mask.detach().cpu().numpy()
        if not bool(mask.any()):
            return state
        return initial.where(mask, state)
