"""Exceptions raised by rlstructures.logging.

Every leaf class also subclasses the builtin exception it refines, so ``except ValueError``
(or ``ImportError``, ``FileNotFoundError``) keeps working for code that does not know this
package.
"""

from __future__ import annotations

from typing import Any

# A missing extra (``tensorboard``, ``plot``): the one class every rlstructures package
# raises for it (an ImportError, not a LoggingError).
from rlstructures.dicttensor import MissingDependencyError as MissingDependencyError

__all__ = [
    "LoggingError",
    "MissingDependencyError",
    "InvalidScalarError",
    "HParamsError",
    "WriterClosedError",
    "SchemaMismatchError",
    "CorruptFileError",
    "NoDataError",
    "DatasetExistsError",
    "UnknownTagError",
    "LogWriteError",
    "RemovedNameError",
    "RemovedImportError",
]


class LoggingError(Exception):
    """Base class of every error raised by rlstructures.logging."""


class InvalidScalarError(LoggingError, ValueError):
    """A tag, step or value given to ``Logger.add_scalar`` cannot be logged."""


class HParamsError(LoggingError, ValueError):
    """Hyperparameters of an unsupported type, or written twice with different values."""


class WriterClosedError(LoggingError, ValueError):
    """A ``Logger`` or ``TrajectoryWriter`` was used after ``close()``."""


class SchemaMismatchError(LoggingError, ValueError):
    """Trajectories whose keys or specs differ from the file's schema, or reserved names."""


class CorruptFileError(LoggingError, ValueError):
    """A file is not what this package writes, or is damaged.

    Attributes:
        path: the damaged file (None when the damage is not in one file).
        offset: the byte offset where the damage starts (None when unknown).
        partial: what was read before the damage, where the format allows keeping it (a
            ``pyarrow.Table`` for ``read_logs``, `Trajectories` for ``read_trajectories``),
            else None.
    """

    def __init__(self, message: str, *, path: object = None, offset: int | None = None,
                 partial: Any = None) -> None:
        super().__init__(message)
        self.path = path
        self.offset = offset
        self.partial: Any = partial


class NoDataError(LoggingError, FileNotFoundError):
    """A path holds no log or trajectory file that this package can read."""


class DatasetExistsError(LoggingError, FileExistsError):
    """A TrajectoryWriter was given a directory that already holds trajectory files."""


class UnknownTagError(LoggingError, KeyError):
    """``Logger.last(tag)`` for a tag that this Logger never logged."""

    def __str__(self) -> str:
        # KeyError's str() is the repr of its argument (quotes, escaped newlines): the message.
        return str(self.args[0]) if self.args else ""


class LogWriteError(LoggingError, OSError):
    """Writing a log or trajectory file failed (disk full, file size limit, I/O error).

    The file was rolled back to its last complete record, so everything written before
    reads back; ``errno`` is the operating system's error number.
    """


class RemovedNameError(LoggingError, AttributeError):
    """A name of RLStructures 0.2 that no longer exists; the message names the replacement."""


class RemovedImportError(LoggingError, ImportError):
    """``from rlstructures.logging import X`` for a 0.2 name; the message names the replacement."""
