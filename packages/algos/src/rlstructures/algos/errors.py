"""Errors of rlstructures.algos: each also subclasses the builtin it refines."""

from __future__ import annotations

__all__ = [
    "AlgosError",
    "ConfigError",
    "UnsupportedSpaceError",
    "AlgorithmNotAvailableError",
    "CheckpointError",
]


class AlgosError(Exception):
    """Base class of every error raised by rlstructures.algos."""


class ConfigError(AlgosError, ValueError):
    """A configuration value is invalid (a non-positive budget, an unknown env id, ...).

    The command line turns it into a one-line message and exit status 2.
    """


class UnsupportedSpaceError(ConfigError):
    """The env's observation or action space is one the algorithm cannot handle."""


class AlgorithmNotAvailableError(ConfigError):
    """The algorithm is listed but not shipped by this version of the package."""


class CheckpointError(AlgosError, ValueError):
    """A checkpoint is missing, unreadable, or does not match the model being restored."""
