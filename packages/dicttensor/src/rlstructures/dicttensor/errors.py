"""Exceptions raised by rlstructures.dicttensor.

Every leaf class also subclasses the builtin exception it refines, so ``except ValueError``
keeps working for code that does not know this package.
"""

from __future__ import annotations

__all__ = [
    "DictTensorError",
    "BatchShapeError",
    "KeyMismatchError",
    "SpecMismatchError",
    "BackendError",
    "MissingDependencyError",
]


class DictTensorError(Exception):
    """Base class of every error raised by rlstructures.dicttensor."""


class BatchShapeError(DictTensorError, ValueError):
    """A leaf or an index does not agree with the batch shape."""


class KeyMismatchError(DictTensorError, ValueError):
    """Two DictTensors that must hold the same keys do not."""


class SpecMismatchError(DictTensorError, ValueError):
    """Two leaves that must share a per-row shape and dtype do not."""


class BackendError(DictTensorError, TypeError):
    """A leaf is not a numpy array or a torch tensor, or backends are mixed."""


class MissingDependencyError(DictTensorError, ImportError):
    """An optional dependency (an extra) is needed but not installed."""
