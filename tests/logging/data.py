"""Deterministic Trajectories shared by the logging tests (and the subprocesses they kill)."""

from __future__ import annotations

import numpy as np

from rlstructures.dicttensor import DictTensor, TemporalDictTensor, Trajectories

__all__ = ["make_batch"]


def make_batch(b: int, t: int, lengths: list[int] | None = None, seed: int = 0) -> Trajectories:
    """B sequences of T steps (frames, actions, rewards, dones) and two info keys."""
    rng = np.random.default_rng(seed)
    steps = TemporalDictTensor(
        {
            "observation/frame": rng.random((b, t, 3, 2)).astype(np.float32),
            "action/action": rng.integers(0, 4, (b, t)),
            "reward": rng.random((b, t)).astype(np.float32),
            "done": rng.random((b, t)) > 0.5,
        },
        lengths=None if lengths is None else np.array(lengths),
    )
    info = DictTensor({
        "agent_info/epsilon": rng.random(b).astype(np.float32),
        "env_info/seed": np.arange(b, dtype=np.int64) + seed,
    })
    return Trajectories(info, steps)
