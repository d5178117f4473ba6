"""Helpers shared by the algorithms' tests."""

from __future__ import annotations

from pathlib import Path

from rlstructures.logging import read_logs

__all__ = ["logged_scalars"]


def logged_scalars(logdir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every logged scalar of a run, as ``{tag: [(step, value), ...]}`` in file order."""
    table = read_logs(logdir).to_pydict()
    out: dict[str, list[tuple[int, float]]] = {}
    for tag, step, value in zip(table["tag"], table["step"], table["value"], strict=True):
        out.setdefault(tag, []).append((step, value))
    return out
