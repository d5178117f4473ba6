"""Lazy access to the optional dependencies of rlstructures.agents (gymnasium, torch)."""

from __future__ import annotations

import sys
from typing import Any, Final

from rlstructures.agents.errors import MissingDependencyError

__all__ = ["GYM_EXTRA_MSG", "is_tensor", "require_gymnasium"]

GYM_EXTRA_MSG: Final = (
    "{what} needs gymnasium, which is not installed. "
    "Install it with: pip install 'rlstructures-agents[gym]'"
)


def require_gymnasium(what: str) -> None:
    """Import gymnasium once (later imports of it are free), or explain how to install it.

    Raises:
        MissingDependencyError: gymnasium is not installed; the message names the extra.
    """
    try:
        import gymnasium  # noqa: F401 - imported for its side effect of being importable
    except ImportError as exc:
        raise MissingDependencyError(GYM_EXTRA_MSG.format(what=what)) from exc


def is_tensor(x: object) -> bool:
    """True when ``x`` is a torch tensor; never imports torch (it checks ``sys.modules``)."""
    mod: Any = sys.modules.get("torch")
    return mod is not None and isinstance(x, mod.Tensor)
