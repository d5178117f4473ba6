"""Backend detection that never imports torch, and the lazy loader of the torch helpers."""

from __future__ import annotations

import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final, Literal, TypeGuard

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = ["Backend", "backend_of", "is_tensor", "torch_helpers"]

Backend = Literal["numpy", "torch"]

_TORCH_HELPERS: list[ModuleType] = []

TORCH_EXTRA_MSG: Final = (
    "{what} needs PyTorch, which is not installed. "
    "Install it with: pip install 'rlstructures-dicttensor[torch]'"
)


def is_tensor(x: object) -> TypeGuard[torch.Tensor]:
    """True when ``x`` is a torch tensor; never imports torch.

    It looks torch up in ``sys.modules``: if torch was never imported, ``x`` cannot be a
    tensor. Shared by every rlstructures package (numpy-only code calls it freely).

    Example:
        >>> import numpy as np
        >>> is_tensor(np.zeros(2)), is_tensor([1.0])
        (False, False)
    """
    mod = sys.modules.get("torch")
    return mod is not None and isinstance(x, mod.Tensor)


def backend_of(x: object) -> Backend | None:
    """``"numpy"`` for an ndarray, ``"torch"`` for a tensor, None for anything else."""
    if isinstance(x, np.ndarray):
        return "numpy"
    if is_tensor(x):
        return "torch"
    return None


def torch_helpers(what: str) -> Any:
    """Import (once) and return the ``_torch`` helper module.

    Raises:
        MissingDependencyError: torch is not installed; the message names the extra.
    """
    if _TORCH_HELPERS:
        return _TORCH_HELPERS[0]
    try:
        from rlstructures.dicttensor import _torch
    except ImportError as exc:  # torch missing
        from rlstructures.dicttensor.errors import MissingDependencyError

        raise MissingDependencyError(TORCH_EXTRA_MSG.format(what=what)) from exc
    _TORCH_HELPERS.append(_torch)
    return _torch
