"""Checkpoints under ``<logdir>/checkpoints/``: weights, optimiser state, config, step.

* ``last.pt``: ``{"format": 1, "algo": str, "step": int, "state": {name: state_dict}}``
  with every ``state_dict`` of the learner (networks and optimisers). Only tensors, numbers,
  strings, lists and dicts: ``torch.load(path, weights_only=True)`` reads it (no
  arbitrary pickle).
* ``config.json``: the run's config (``config_to_dict``), ``"algo"`` included.
* ``last.json``: ``{"algo", "step", "seconds"}`` of ``last.pt``, readable without torch.

Files are written to a temporary name then renamed, so a crash mid-save keeps the previous
checkpoint.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Protocol

import torch

from rlstructures.algos.errors import CheckpointError

__all__ = [
    "CHECKPOINT_DIR",
    "Stateful",
    "checkpoint_path",
    "load_checkpoint",
    "read_saved_config",
    "save_checkpoint",
]

CHECKPOINT_DIR: Final = "checkpoints"
FORMAT: Final = 1


class Stateful(Protocol):
    """What a checkpoint saves: ``nn.Module`` and ``torch.optim.Optimizer`` both fit."""

    def state_dict(self) -> Any:
        """The object's state."""

    def load_state_dict(self, state_dict: Any, /) -> Any:
        """Restore the state."""


def checkpoint_path(logdir: str | os.PathLike[str]) -> Path:
    """``<logdir>/checkpoints/last.pt``."""
    return Path(logdir) / CHECKPOINT_DIR / "last.pt"


def _replace(path: Path, write: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def save_checkpoint(
    logdir: str | os.PathLike[str],
    *,
    algo: str,
    step: int,
    seconds: float,
    state: Mapping[str, Stateful],
    config: Mapping[str, Any],
) -> Path:
    """Save ``state``'s state_dicts, ``config`` and ``step``; returns the ``.pt`` path."""
    path = checkpoint_path(logdir)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "algo": algo,
        "step": int(step),
        "state": {name: obj.state_dict() for name, obj in state.items()},
    }
    _replace(path, lambda p: torch.save(payload, p))
    _replace(
        path.with_name("config.json"),
        lambda p: p.write_text(json.dumps(dict(config), indent=2) + "\n"),
    )
    meta = {"algo": algo, "step": int(step), "seconds": round(float(seconds), 3)}
    _replace(path.with_name("last.json"), lambda p: p.write_text(json.dumps(meta) + "\n"))
    return path


def read_saved_config(logdir: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``config.json`` of the run in ``logdir`` (``"algo"`` included).

    Raises:
        CheckpointError: ``logdir`` holds no checkpoint.
    """
    path = Path(logdir) / CHECKPOINT_DIR / "config.json"
    if not path.is_file() or not checkpoint_path(logdir).is_file():
        raise CheckpointError(
            f"--resume {str(logdir)!r}: no checkpoint there (expected {path.parent}/last.pt "
            "and config.json, written at the end of a run and every --checkpoint-every steps)."
        )
    values: dict[str, Any] = json.loads(path.read_text())
    return values


def load_checkpoint(
    logdir: str | os.PathLike[str],
    *,
    algo: str,
    state: Mapping[str, Stateful],
    device: torch.device | str = "cpu",
) -> int:
    """Restore ``state`` from ``logdir``'s last checkpoint; returns its global step.

    Raises:
        CheckpointError: no checkpoint, another algorithm's, or state that does not fit
            (other network sizes): the message says which entry.
    """
    path = checkpoint_path(logdir)
    if not path.is_file():
        raise CheckpointError(f"--resume {str(logdir)!r}: {path} does not exist.")
    payload = torch.load(path, map_location=device, weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an rlstructures-algos checkpoint (format {FORMAT}).")
    if payload["algo"] != algo:
        raise CheckpointError(
            f"{path} was saved by {payload['algo']}, not {algo}: resume it with "
            f"`rlstructures-train {payload['algo']} --resume {logdir}`."
        )
    saved = payload["state"]
    missing = sorted(set(state) - set(saved))
    if missing:
        raise CheckpointError(f"{path} holds no state for {missing} (it has {sorted(saved)}).")
    for name, obj in state.items():
        try:
            obj.load_state_dict(saved[name])
        except (RuntimeError, ValueError, KeyError) as exc:
            first = str(exc).strip().splitlines()[0]
            raise CheckpointError(
                f"{path}: the saved {name!r} does not fit this run's (different network sizes "
                f"or settings?): {first}"
            ) from exc
    return int(payload["step"])
