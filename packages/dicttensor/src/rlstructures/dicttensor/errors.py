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
    "RemovedNameError",
    "RemovedImportError",
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


class RemovedNameError(DictTensorError, AttributeError):
    """A name of RLStructures 0.2 (e.g. ``dt.truncate_key``) that was renamed or replaced.

    The message says what to write instead. Agents raises it too, for its own 0.2 names.
    """


class RemovedImportError(DictTensorError, ImportError):
    """A module-level name of RLStructures 0.2 (``masked_dicttensor``, ``RL_Agent``, ...).

    An ImportError, so that ``from rlstructures.dicttensor import masked_dicttensor`` shows
    the message (a ``from`` import replaces an AttributeError by its own).
    """
