"""Lazy access to gymnasium, the optional dependency of GymVecEnv."""

from __future__ import annotations

from typing import Final

from rlstructures.dicttensor import MissingDependencyError

__all__ = ["GYM_EXTRA_MSG", "require_gymnasium"]

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
