"""Torch devices: trajectories handed over to CUDA, and InferenceBatcher's per-step staging.

The only module of this package importing torch. Everything CUDA follows one rule: host
memory that a non-blocking copy reads or writes is pinned and allocated once (pinning per
call costs more than a plain copy), copies run on one side stream of their own, and the
host waits for a device-to-host copy (``synchronize``) before it reads the result.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from rlstructures.agents import Agent
from rlstructures.dicttensor import DictTensor, TemporalDictTensor, Trajectories

__all__ = ["DeviceAgent", "DeviceHandover", "StepStager", "parse_device"]


def parse_device(device: Any) -> torch.device | None:
    """None for the CPU (trajectories stay numpy), else the torch device to copy to.

    Raises:
        ValueError: not a device torch knows, or CUDA requested but not available.
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device={device!r} is not a torch device; use 'cpu' or 'cuda:N'."
        ) from exc
    if dev.type == "cpu":
        return None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} needs CUDA, which this torch build or machine does not "
                "have; use device='cpu'."
            )
        index: int | None = dev.index
        if index is not None and index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r}: there are only {torch.cuda.device_count()} CUDA devices."
            )
    return dev


def _pinned(nbytes: int) -> torch.Tensor:
    """``nbytes`` of pinned host memory (uint8), allocated once by the callers."""
    return torch.empty(max(nbytes, 1), dtype=torch.uint8, pin_memory=True)


class DeviceHandover:
    """``get()``'s trajectories copied to a CUDA device through one reused pinned buffer.

    The first call allocates a pinned buffer of the trajectories' size; each call copies
    the numpy trajectories into it (a host memcpy), then launches non-blocking copies to
    fresh device tensors on a side stream and makes the caller's current stream wait for
    them (the host does not): kernels launched afterwards see complete data, and the
    copies overlap the next collection. Before the buffer is overwritten by the next call,
    the host waits for the previous copies (an event; they had a whole collection to end).

    Args:
        device: a CUDA ``torch.device``.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._stream = torch.cuda.Stream(device)  # type: ignore[no-untyped-call]
        self._done: torch.cuda.Event | None = None
        self._host: torch.Tensor | None = None

    def __call__(self, trajectories: Trajectories) -> Trajectories:
        """The same trajectories as torch tensors on the device."""
        info = trajectories.info.numpy().to_dict()
        steps = trajectories.trajectories.dict_tensor.numpy().to_dict()  # key -> [B, T, *row]
        arrays = {**{f"i{k}": v for k, v in info.items()}, **{f"s{k}": v for k, v in steps.items()}}
        lengths = np.asarray(trajectories.trajectories.lengths)
        arrays["lengths"] = lengths
        nbytes = sum(-(-a.nbytes // 64) * 64 for a in arrays.values())
        if self._done is not None:
            self._done.synchronize()  # the previous copies read the buffer
        if self._host is None or self._host.numel() < nbytes:
            self._host = _pinned(nbytes)
        host = self._host.numpy()
        current = torch.cuda.current_stream(self.device)
        out: dict[str, torch.Tensor] = {}
        with torch.cuda.device(self.device):
            dst = {
                k: torch.empty(a.shape, dtype=_dtype(a), device=self.device)
                for k, a in arrays.items()
            }
        self._stream.wait_stream(current)  # the destinations are allocated on `current`
        offset = 0
        with torch.cuda.stream(self._stream):
            for k, a in arrays.items():
                view = host[offset : offset + a.nbytes].view(a.dtype).reshape(a.shape)
                np.copyto(view, a)
                out[k] = dst[k].copy_(torch.from_numpy(view), non_blocking=True)
                offset += -(-a.nbytes // 64) * 64
        self._done = torch.cuda.Event()  # type: ignore[no-untyped-call]
        self._done.record(self._stream)
        current.wait_stream(self._stream)
        b, t = trajectories.trajectories.batch_shape
        return Trajectories(
            DictTensor({k: out[f"i{k}"] for k in info}, batch_shape=(b,)),
            TemporalDictTensor(
                DictTensor({k: out[f"s{k}"] for k in steps}, batch_shape=(b, t)), out["lengths"]
            ),
        )


def _dtype(a: npt.NDArray[Any]) -> torch.dtype:
    return torch.from_numpy(np.empty(0, a.dtype)).dtype


class StepStager:
    """InferenceBatcher's per-step moves on CUDA: observations to the device, actions back.

    Allocated once: pinned host buffers and device buffers for ``n_envs`` rows of every
    observation key, pinned buffers for the actions (at their first step), and, for an
    agent that requires history, device arrays ``[n_envs, T, *row]`` of the slice's
    observations and actions, filled as the steps go (``history`` returns views of them:
    no host-to-device copy of the past). One side stream carries every copy,
    ``non_blocking=True`` both ways. The agent's kernels run on the current stream, which
    waits for the observation copies; the action copies wait for the agent's kernels, and
    the side stream is synchronised before ``actions`` returns, so the host (and the
    workers after it) never reads a half-copied action.

    Args:
        device: a CUDA ``torch.device``.
        observation: ``key -> (row shape, numpy dtype)``.
        action: likewise for the agent's outputs (from the probe step).
        n_envs: rows at most (every worker's envs).
        n_timesteps: T, for the history arrays.
        history: keep the history arrays (the agent requires history).
    """

    def __init__(
        self,
        device: torch.device,
        observation: Mapping[str, tuple[tuple[int, ...], np.dtype[Any]]],
        action: Mapping[str, tuple[tuple[int, ...], np.dtype[Any]]],
        *,
        n_envs: int,
        n_timesteps: int,
        history: bool,
    ) -> None:
        self.device = device
        self._stream = torch.cuda.Stream(device)  # type: ignore[no-untyped-call]

        def host(shape: tuple[int, ...], dtype: np.dtype[Any]) -> torch.Tensor:
            tdtype = _dtype(np.empty(0, dtype))
            count = int(np.prod(shape))
            return (
                _pinned(count * dtype.itemsize)[: count * dtype.itemsize].view(tdtype).view(shape)
            )

        def dev(shape: tuple[int, ...], dtype: np.dtype[Any]) -> torch.Tensor:
            return torch.zeros(shape, dtype=_dtype(np.empty(0, dtype)), device=device)

        self._obs_host = {k: host((n_envs, *s), d) for k, (s, d) in observation.items()}
        self._act_host = {k: host((n_envs, *s), d) for k, (s, d) in action.items()}
        with torch.cuda.device(device):
            self._obs_dev = {k: dev((n_envs, *s), d) for k, (s, d) in observation.items()}
            self._past: dict[str, torch.Tensor] = {}
            if history:
                for prefix, specs in (("observation", observation), ("action", action)):
                    for k, (s, d) in specs.items():
                        self._past[f"{prefix}/{k}"] = dev((n_envs, n_timesteps, *s), d)
        self._all = n_envs

    def _index(self, rows: npt.NDArray[np.int64] | None) -> Any:
        if rows is None or len(rows) == self._all:
            return slice(None)
        return torch.from_numpy(rows).to(self.device, non_blocking=False)

    def observations(
        self, obs: Mapping[str, npt.NDArray[Any]], rows: npt.NDArray[np.int64] | None, t: int
    ) -> dict[str, torch.Tensor]:
        """``obs`` (``key -> [n, *row]`` numpy) as device tensors, valid until the next call.

        Args:
            obs: the observations of the running envs.
            rows: which envs they are (sorted global indices; None: all).
            t: the step, where the history arrays get them.
        """
        current = torch.cuda.current_stream(self.device)
        self._stream.wait_stream(current)  # the agent's reads of the previous step's rows
        out = {}
        index = self._index(rows) if self._past else None
        with torch.cuda.stream(self._stream):
            for k, v in obs.items():
                n = v.shape[0]
                host = self._obs_host[k][:n]
                np.copyto(host.numpy(), v)
                out[k] = self._obs_dev[k][:n].copy_(host, non_blocking=True)
                if index is not None:
                    self._past[f"observation/{k}"][index, t] = out[k]
        current.wait_stream(self._stream)
        return out

    def actions(self, action: Mapping[str, Any]) -> dict[str, Any]:
        """``action``'s leaves, those on a CUDA device as numpy views of pinned memory.

        Other leaves (numpy, CPU tensors) are returned as they are; the caller checks them
        all. Leaves of an unknown key or shape are moved with a plain ``.cpu()`` (the check
        then names what is wrong).
        """
        current = torch.cuda.current_stream(self.device)
        self._stream.wait_stream(current)  # the agent's kernels that produce the actions
        out: dict[str, Any] = {}
        moved = False
        with torch.cuda.stream(self._stream):
            for k, a in action.items():
                if not (isinstance(a, torch.Tensor) and a.device.type == "cuda"):
                    out[k] = a
                    continue
                host = self._act_host.get(k)
                if (
                    host is None
                    or host.dtype != a.dtype
                    or a.ndim == 0
                    or host.shape[1:] != a.shape[1:]
                    or a.shape[0] > host.shape[0]
                ):
                    out[k] = a.cpu()  # wrong: the caller's check reports it
                    continue
                out[k] = host[: a.shape[0]].copy_(a, non_blocking=True).numpy()
                moved = True
        if moved:
            self._stream.synchronize()  # before anyone reads them (the workers)
        return out

    def record(
        self, action: Mapping[str, npt.NDArray[Any]], rows: npt.NDArray[np.int64] | None, t: int
    ) -> None:
        """Store the checked actions of step ``t`` in the history arrays (if kept)."""
        if not self._past:
            return
        index = self._index(rows)
        for k, a in action.items():
            self._past[f"action/{k}"][index, t] = torch.from_numpy(np.ascontiguousarray(a)).to(
                self.device
            )

    def history(self, rows: npt.NDArray[np.int64] | None, t: int) -> dict[str, torch.Tensor]:
        """The slice's steps before ``t`` of the running envs: ``name -> [n, t, *row]``.

        Views of the device arrays when every env runs, else gathered copies.
        """
        index = self._index(rows)
        return {k: v[index, :t] for k, v in self._past.items()}


class DeviceAgent(Agent):
    """InferenceBatcher's agent on a CUDA device: tensors there in, numpy actions out.

    Wraps the owner's agent: ``observation`` reaches it through ``stager`` (pinned memory,
    side stream), ``agent_info`` as device tensors, ``history`` as views of the stager's
    device arrays; the leaves of its ``action`` on the device come back as numpy arrays
    (pinned, synchronised) for the checks and the workers. Its state stays where the agent
    puts it. The batcher sets ``rows`` (the running envs) before each call in episode mode.

    Args:
        agent: the agent built by ``make_agent()``.
        stager: the batcher's ``StepStager``.
    """

    def __init__(self, agent: Agent, stager: StepStager) -> None:
        self.agent = agent
        self.stager = stager
        self.rows: npt.NDArray[np.int64] | None = None

    def initial_state(self, agent_info: DictTensor, batch_size: int) -> DictTensor:
        """The wrapped agent's, from device ``agent_info``."""
        return self.agent.initial_state(agent_info.to(self.stager.device), batch_size)

    def __call__(
        self,
        state: DictTensor,
        observation: DictTensor,
        agent_info: DictTensor,
        history: TemporalDictTensor | None = None,
    ) -> tuple[DictTensor, DictTensor]:
        """The wrapped agent's step on the device; device action leaves moved to numpy."""
        stager, dev = self.stager, self.stager.device
        n = observation.batch_shape[0]
        rows = self.rows if self.rows is not None and len(self.rows) == n else None
        t = 0 if history is None else history.batch_shape[1]
        obs = DictTensor(stager.observations(observation.to_dict(), rows, t), batch_shape=(n,))
        info = agent_info.to(dev)
        if history is None:
            action, new_state = self.agent(state, obs, info)
        else:
            past = DictTensor(stager.history(rows, t), batch_shape=(n, t))
            action, new_state = self.agent(state, obs, info, TemporalDictTensor(past))
        if isinstance(action, DictTensor):
            leaves = stager.actions(action.to_dict())
            if all(isinstance(v, np.ndarray) for v in leaves.values()):
                action = DictTensor(leaves, batch_shape=action.batch_shape)
                stager.record(leaves, rows, t)
        return action, new_state

    def require_history(self) -> bool:
        """The wrapped agent's."""
        return self.agent.require_history()

    def update(self, state_dict: Mapping[str, Any]) -> None:
        """The wrapped agent's."""
        self.agent.update(state_dict)

    def seed(self, seed: int) -> None:
        """The wrapped agent's."""
        self.agent.seed(seed)

    def close(self) -> None:
        """The wrapped agent's."""
        self.agent.close()
