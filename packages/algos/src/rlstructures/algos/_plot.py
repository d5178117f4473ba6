"""The run's ``learning_curve.png``: training returns smoothed, evaluation points on top."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from rlstructures.logging import read_logs

__all__ = ["plot_run"]

F64 = npt.NDArray[np.float64]


def _series(columns: dict[str, list[Any]], tag: str) -> tuple[F64, F64]:
    keep = [i for i, t in enumerate(columns["tag"]) if t == tag]
    steps = np.asarray([columns["step"][i] for i in keep], np.float64)
    values = np.asarray([columns["value"][i] for i in keep], np.float64)
    uniq, inverse = np.unique(steps, return_inverse=True)  # one point per step: the mean
    sums = np.bincount(inverse, weights=values, minlength=len(uniq))
    return uniq, sums / np.maximum(np.bincount(inverse, minlength=len(uniq)), 1)


def _smooth(values: F64, window: int) -> F64:
    if window <= 1 or len(values) < 2:
        return values
    window = min(window, len(values))
    padded = np.concatenate([np.full(window - 1, values[0]), values])
    return np.convolve(padded, np.ones(window) / window, mode="valid")


def plot_run(
    logdir: str | os.PathLike[str], output: str | os.PathLike[str], *, title: str, name: str
) -> Path:
    """Draw ``charts/episodic_return`` (moving average) and ``eval/episodic_return`` points.

    Args:
        logdir: the run's log directory.
        output: the PNG to write.
        title: the figure's title (``"ppo on CartPole-v1"``).
        name: the run's name, used in the legend.

    Returns:
        ``output`` as a Path.

    Raises:
        MissingDependencyError: matplotlib is not installed (the logging ``plot`` extra).
    """
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        from rlstructures.logging import MissingDependencyError

        raise MissingDependencyError(
            "learning_curve.png needs matplotlib, which is not installed. Install it with: "
            "pip install 'rlstructures-logging[plot]' (or pass --no-plot)."
        ) from exc
    table = read_logs(logdir).select(["step", "tag", "value"]).to_pydict()
    fig = Figure(figsize=(8.0, 4.0), layout="constrained")
    ax = fig.subplots()
    steps, values = _series(table, "charts/episodic_return")
    if len(steps):
        window = max(1, len(values) // 25)
        label = f"{name}: training episodes" + (
            f" (moving mean of {window} updates)" if window > 1 else ""
        )
        ax.plot(steps, _smooth(values, window), linewidth=1.5, label=label)
    e_steps, e_values = _series(table, "eval/episodic_return")
    if len(e_steps):
        ax.plot(e_steps, e_values, "o", markersize=5, label=f"{name}: evaluation (mean)")
    ax.set_title(title)
    ax.set_xlabel("global env steps")
    ax.set_ylabel("episodic return")
    ax.grid(alpha=0.3)
    if len(steps) or len(e_steps):
        ax.legend(loc="best", fontsize="small")
    out = Path(output)
    fig.savefig(str(out), dpi=100)
    return out
