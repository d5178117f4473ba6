"""Backend detection that never imports torch, and typed lazy access to torch.

torch is optional: the modules of this package reach it only through ``require_torch(what)``
then the module attributes ``torch`` (the torch module) and ``th`` (the ``_torch`` helpers),
both typed for the type checker and bound here the first time a torch feature is used::

    _backend.require_torch("DictTensor.cat()")
    out = _backend.torch.cat(arrays, dim=0)
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Final, Literal, TypeGuard

import numpy as np

from rlstructures.dicttensor.errors import MissingDependencyError

if TYPE_CHECKING:
    import torch as torch

    from rlstructures.dicttensor import _torch as th

__all__ = ["Backend", "backend_of", "is_tensor", "require_torch", "th", "torch"]

Backend = Literal["numpy", "torch"]

TORCH_EXTRA_MSG: Final = (
    "{what} needs PyTorch, which is not installed. "
    "Install it with: pip install 'rlstructures-dicttensor[torch]'"
)
_LOADED: list[bool] = []  # [True] once ``torch`` and ``th`` are bound


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


def require_torch(what: str) -> None:
    """Make ``torch`` and ``th`` (the helpers) available as attributes of this module.

    Args:
        what: the feature that needs torch, for the error message (e.g. "DictTensor.torch()").

    Raises:
        MissingDependencyError: torch is not installed; the message names the extra.
    """
    if _LOADED:
        return
    try:
        import torch

        from rlstructures.dicttensor import _torch
    except ImportError as exc:  # torch missing
        raise MissingDependencyError(TORCH_EXTRA_MSG.format(what=what)) from exc
    globals().update(torch=torch, th=_torch)  # declared for the type checker above
    _LOADED.append(True)


if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        """``torch`` or ``th`` read before ``require_torch``: load them (a generic message)."""
        if name in ("torch", "th"):
            require_torch("this torch feature")
            return globals()[name]
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}", name=name)
