"""``python -m rlstructures.logging.plot``: the ``rlstructures-plot`` command (``plot`` extra).

Example:
    ``python -m rlstructures.logging.plot runs/ --tag charts/episodic_return -o curve.png``
"""

from rlstructures.logging._plot import main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main())
