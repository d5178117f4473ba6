"""``rlstructures-plot``: learning curves of one or several runs, to a PNG (the ``plot`` extra).

Runs whose directory names differ only by a trailing seed suffix (``ppo_seed1``,
``ppo_seed2``; ``ppo-seed-3``; ``ppo_s3``) share one curve: the mean over those runs,
with a band for their spread. The x-axis is the logged ``step`` (global env steps).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

# pyarrow is a hard dependency of rlstructures-logging, so a module-level import is allowed.
import pyarrow.compute as pc  # noqa: TID253

from rlstructures.logging._csv import CSV_NAME
from rlstructures.logging._logger import read_logs
from rlstructures.logging._scalars import arrow_parts
from rlstructures.logging._tensorboard import has_event_files
from rlstructures.logging.errors import LoggingError, MissingDependencyError, NoDataError

__all__ = ["DEFAULT_GROUP", "DEFAULT_TAG", "main", "plot_learning_curves", "run_name"]

DEFAULT_TAG: Final = "charts/episodic_return"
#: Default ``--group``: the directory name without a trailing seed suffix.
DEFAULT_GROUP: Final = r"^(.+?)(?:[-_.]+(?:seed|s)[-_.]?\d+)?$"
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Curve:
    """One run's values of one tag: ``steps`` increasing, one (mean) value per step."""

    steps: FloatArray
    values: FloatArray


def run_name(logdir: Path, group: str | None = DEFAULT_GROUP) -> str:
    """The curve a run belongs to: its directory name, reduced by the ``group`` regex.

    The regex's first group (or its whole match) is the name; None or no match keeps the
    directory name.

    Example:
        >>> run_name(Path("runs/ppo_seed2")), run_name(Path("runs/CartPole-v1"))
        ('ppo', 'CartPole-v1')
    """
    name = logdir.resolve().name
    if group is None:
        return name
    match = re.search(group, name)
    if match is None:
        return name
    return match.group(1) if match.groups() and match.group(1) else match.group(0)


def _has_logs(path: Path) -> bool:
    return bool(arrow_parts(path)) or (path / CSV_NAME).is_file() or has_event_files(path)


def expand_logdirs(paths: Sequence[str]) -> list[Path]:
    """Each path if it holds logs, else its sub-directories that do (``runs/`` -> runs)."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            raise NoDataError(f"{raw!r} is not a directory.")
        found = [path] if _has_logs(path) else [
            p for p in sorted(path.iterdir()) if p.is_dir() and _has_logs(p)
        ]
        if not found:
            raise NoDataError(
                f"{raw!r} holds no logs (scalars-*.arrows, scalars.csv or event files), "
                "nor do its sub-directories."
            )
        out.extend(found)
    return out


def load_curve(table: Any, tag: str, smooth: int) -> Curve | None:
    """The values of ``tag`` in a scalar table, averaged per step and smoothed."""
    rows = table.filter(pc.equal(table.column("tag"), tag))
    if rows.num_rows == 0:
        return None
    steps = np.asarray(rows.column("step").to_numpy(), np.float64)
    values = np.asarray(rows.column("value").to_numpy(), np.float64)
    uniq, inverse = np.unique(steps, return_inverse=True)
    sums = np.bincount(inverse, weights=values, minlength=len(uniq))
    mean = sums / np.bincount(inverse, minlength=len(uniq))
    if smooth > 1 and len(mean) > 1:
        window = min(smooth, len(mean))
        kernel = np.ones(window) / window
        padded = np.concatenate([np.full(window - 1, mean[0]), mean])
        mean = np.convolve(padded, kernel, mode="valid")
    return Curve(uniq, mean)


def aggregate(curves: list[Curve]) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """``(steps, mean, mean - std, mean + std)`` across runs.

    Each run is linearly interpolated on the union of the runs' steps, restricted to the
    range every run reached (the whole union if the ranges do not overlap); a point averages
    the runs that cover it.
    """
    grid = np.unique(np.concatenate([c.steps for c in curves]))
    start, stop = max(c.steps[0] for c in curves), min(c.steps[-1] for c in curves)
    if start <= stop:
        grid = grid[(grid >= start) & (grid <= stop)]
    stacked = np.full((len(curves), len(grid)), np.nan)
    for i, c in enumerate(curves):
        inside = (grid >= c.steps[0]) & (grid <= c.steps[-1])
        stacked[i, inside] = np.interp(grid[inside], c.steps, c.values)
    counts = np.sum(~np.isnan(stacked), axis=0)
    safe = np.where(np.isnan(stacked), 0.0, stacked)
    mean = safe.sum(axis=0) / counts
    std = np.sqrt(np.maximum((safe**2).sum(axis=0) / counts - mean**2, 0.0))
    return grid, mean, mean - std, mean + std


def _matplotlib_figure(n_panels: int) -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise MissingDependencyError(
            "rlstructures-plot needs matplotlib, which is not installed. Install it with: "
            "pip install 'rlstructures-logging[plot]'"
        ) from exc
    return Figure(figsize=(8.0, 3.6 * n_panels), layout="constrained")


def plot_learning_curves(
    logdirs: Sequence[str],
    output: str | Path,
    *,
    tags: Sequence[str] = (DEFAULT_TAG,),
    group: str | None = DEFAULT_GROUP,
    smooth: int = 1,
    title: str | None = None,
    dpi: int = 100,
) -> dict[str, dict[str, int]]:
    """Draw one panel per tag, one curve per run name, and save the figure.

    Returns:
        ``{tag: {run name: number of runs drawn}}``.

    Raises:
        NoDataError: no logdir holds logs, or no run holds any of ``tags``.
        MissingDependencyError: matplotlib is not installed.
    """
    runs = [(run_name(p, group), read_logs(p)) for p in expand_logdirs(logdirs)]
    drawn: dict[str, dict[str, int]] = {}
    fig = _matplotlib_figure(len(tags))
    axes = fig.subplots(len(tags), 1, squeeze=False)[:, 0]
    for ax, tag in zip(axes, tags, strict=True):
        groups: dict[str, list[Curve]] = {}
        for name, table in runs:
            curve = load_curve(table, tag, smooth)
            if curve is not None:
                groups.setdefault(name, []).append(curve)
        for name, curves in groups.items():
            steps, mean, low, high = aggregate(curves)
            label = name if len(curves) == 1 else f"{name} ({len(curves)} runs)"
            (line,) = ax.plot(steps, mean, label=label, linewidth=1.5)
            if len(curves) > 1:
                ax.fill_between(steps, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
        drawn[tag] = {name: len(curves) for name, curves in groups.items()}
        ax.set_title(tag)
        ax.set_xlabel("global env steps")
        ax.set_ylabel(tag.rsplit("/", 1)[-1])
        ax.grid(alpha=0.3)
        if groups:
            ax.legend(loc="best", fontsize="small")
    if not any(drawn.values()):
        seen = sorted({t for _, table in runs for t in pc.unique(table.column("tag")).to_pylist()})
        raise NoDataError(
            f"no run holds the tag(s) {list(tags)}; the tags logged are {seen}. Pick one "
            "with --tag."
        )
    if title:
        fig.suptitle(title)
    fig.savefig(str(output), dpi=dpi)
    return drawn


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rlstructures-plot",
        description="Draw learning curves (mean and spread over runs sharing a name) from "
        "rlstructures log directories to a PNG.",
    )
    parser.add_argument("logdirs", nargs="+", metavar="LOGDIR",
                        help="run directories, or directories of runs")
    parser.add_argument("--tag", action="append", dest="tags", metavar="TAG",
                        help=f"scalar to draw (default {DEFAULT_TAG}); repeat for more panels")
    parser.add_argument("-o", "--output", default="curve.png", help="image file (curve.png)")
    parser.add_argument("--group", default=DEFAULT_GROUP, metavar="REGEX",
                        help="regex on run directory names; its first group names the curve "
                        "(default: the name without a trailing seed suffix)")
    parser.add_argument("--no-group", action="store_true", help="one curve per directory")
    parser.add_argument("--smooth", type=int, default=1, metavar="N",
                        help="moving average over N points (default 1: none)")
    parser.add_argument("--title", default=None, help="figure title")
    parser.add_argument("--dpi", type=int, default=100, help="resolution (default 100)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point of ``rlstructures-plot``; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.smooth < 1 or args.dpi < 1:
        parser.error("--smooth and --dpi must be >= 1")
    try:
        re.compile(args.group)
    except re.error as exc:
        parser.error(f"--group is not a valid regex: {exc}")
    tags = args.tags or [DEFAULT_TAG]
    try:
        drawn = plot_learning_curves(
            args.logdirs, args.output, tags=tags, group=None if args.no_group else args.group,
            smooth=args.smooth, title=args.title, dpi=args.dpi,
        )
    except (LoggingError, MissingDependencyError) as exc:
        print(f"rlstructures-plot: error: {exc}", file=sys.stderr)
        return 1
    for tag, groups in drawn.items():
        names = ", ".join(f"{n} ({k} run{'s' if k > 1 else ''})" for n, k in groups.items())
        print(f"{tag}: {names or 'no data'}")
    print(f"wrote {args.output}")
    return 0
