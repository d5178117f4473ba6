"""rlstructures.algos (work in progress: filled by its own issue)."""

import importlib.metadata

__version__ = importlib.metadata.version("rlstructures-algos")

__all__ = ["__version__"]
