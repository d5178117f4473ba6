"""``python -m rlstructures.algos ...`` runs the ``rlstructures-train`` command."""

from rlstructures.algos._cli import main

if __name__ == "__main__":
    raise SystemExit(main())
