"""Exceptions raised by rlstructures.dicttensor.

Every leaf class also subclasses the builtin exception it refines, so ``except ValueError``
(or ``IndexError``, ``TypeError``, ``ImportError``) keeps working for code that does not know
this package, and ``except DictTensorError`` catches all of them.
"""

from __future__ import annotations

__all__ = [
    "DictTensorError",
    "BatchShapeError",
    "BatchIndexError",
    "KeyMismatchError",
    "SpecMismatchError",
    "BackendError",
    "MissingDependencyError",
]


class DictTensorError(Exception):
    """Base class of every error raised by rlstructures.dicttensor."""


class BatchShapeError(DictTensorError, ValueError):
    """A leaf, a batch shape, a dimension or ``lengths`` does not agree with the batch shape."""


class BatchIndexError(DictTensorError, IndexError):
    """A row index is out of range or has the wrong type or shape for the batch dimensions."""


class KeyMismatchError(DictTensorError, ValueError):
    """Two DictTensors that must hold the same keys do not (or must not share keys and do)."""


class SpecMismatchError(DictTensorError, ValueError):
    """Two leaves that must share a per-row shape and dtype do not, or a dtype is unsupported."""


class BackendError(DictTensorError, TypeError):
    """A leaf is not a numpy array or a torch tensor, or numpy and torch are mixed."""


class MissingDependencyError(DictTensorError, ImportError):
    """An optional dependency (an extra) is needed but not installed.

    The one class every rlstructures package raises for a missing extra (agents, batchers
    and logging re-export it); the message is the pip command that installs the extra.
    """
