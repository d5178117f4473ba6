"""rlstructures.batchers (work in progress: filled by its own issue)."""

import importlib.metadata

__version__ = importlib.metadata.version("rlstructures-batchers")

__all__ = ["__version__"]
