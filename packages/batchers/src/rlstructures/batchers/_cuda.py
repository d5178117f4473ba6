"""Moving trajectories to a torch device (the only module of this package importing torch)."""

from __future__ import annotations

from typing import Any

import torch

from rlstructures.dicttensor import Trajectories

__all__ = ["to_device"]


def to_device(trajectories: Trajectories, device: Any) -> Trajectories:
    """Trajectories as torch tensors on ``device``.

    CUDA targets go through pinned host memory with non-blocking copies, so the copy
    overlaps whatever the caller does next (the next ``execute()`` included); the copy is
    ordered on the current CUDA stream, so kernels launched after it see complete data.
    """
    dev = torch.device(device)
    if dev.type == "cpu":
        return trajectories.torch()
    return Trajectories(
        trajectories.info.pin_memory().to(dev, non_blocking=True),
        trajectories.trajectories.pin_memory().to(dev, non_blocking=True),
    )
