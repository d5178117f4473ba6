"""Moving trajectories to a torch device (the only module of this package importing torch)."""

from __future__ import annotations

from typing import Any

import torch

from rlstructures.dicttensor import Trajectories

__all__ = ["parse_device", "to_device"]


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
