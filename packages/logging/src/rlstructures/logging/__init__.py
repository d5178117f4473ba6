"""rlstructures.logging (work in progress: filled by its own issue)."""

import importlib.metadata

__version__ = importlib.metadata.version("rlstructures-logging")

__all__ = ["__version__"]
