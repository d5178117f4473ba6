"""Training progress on stdout: a bar on a terminal, a short line every few seconds otherwise.

A log file or CI output gets one line per ``interval`` seconds (no carriage-return
redraws), e.g.::

    ppo CartPole-v1 seed 0: 12,288/100,000 steps (12%) | 4,100 steps/s | return 123.4 |
    eval 250.0 @ 10,000 | 3 s

(one line, broken here).
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any, Final

from rlstructures.algos._config import ProgressMode

__all__ = ["Progress"]

INTERVAL: Final = 5.0


class Progress:
    """Shows the step count, steps/s, the recent training return and the last evaluation.

    Args:
        mode: ``"auto"`` (bar if ``stream`` is a terminal, else lines), ``"bar"``,
            ``"lines"`` or ``"none"``.
        total: the step budget.
        initial: the step count at the start (resumed runs).
        desc: the run's name (``"ppo CartPole-v1 seed 0"``).
        stream: where to write (default ``sys.stdout``).
        interval: seconds between lines in ``"lines"`` mode.
    """

    def __init__(
        self,
        mode: ProgressMode,
        *,
        total: int,
        initial: int,
        desc: str,
        stream: IO[str] | None = None,
        interval: float = INTERVAL,
    ) -> None:
        self._stream = sys.stdout if stream is None else stream
        if mode == "auto":
            isatty = getattr(self._stream, "isatty", None)
            mode = "bar" if isatty is not None and isatty() else "lines"
        self.mode: ProgressMode = mode
        self._total, self._desc, self._interval = total, desc, interval
        self._start = time.perf_counter()
        self._next_line = self._start + interval
        self._step = initial
        self._fields: dict[str, str] = {}
        self._bar: Any = None
        self._closed = False
        if mode == "bar":
            from tqdm import tqdm

            self._bar = tqdm(
                total=total,
                initial=initial,
                desc=desc,
                unit="step",
                file=self._stream,
                dynamic_ncols=True,
                mininterval=0.25,
                unit_scale=True,
            )

    def update(
        self,
        step: int,
        *,
        sps: float,
        recent_return: float | None,
        eval_return: float | None,
        eval_step: int | None,
    ) -> None:
        """Record the state after an update; draws or writes a line when it is time."""
        self._fields = {"steps/s": f"{sps:,.0f}"}
        if recent_return is not None:
            self._fields["return"] = f"{recent_return:.1f}"
        if eval_return is not None and eval_step is not None:
            self._fields["eval"] = f"{eval_return:.1f} @ {eval_step:,}"
        if self._bar is not None:  # tqdm shows the rate itself
            shown = {k: v for k, v in self._fields.items() if k != "steps/s"}
            self._bar.set_postfix(shown, refresh=False)
            self._bar.update(min(step, self._total) - self._bar.n)
        elif self.mode == "lines" and not self._closed:
            now = time.perf_counter()
            self._step = step
            if now >= self._next_line:
                self._next_line = now + self._interval
                self._write_line(now)
        self._step = step

    def _write_line(self, now: float) -> None:
        pct = 100.0 * min(self._step, self._total) / self._total
        parts = [f"{self._desc}: {self._step:,}/{self._total:,} steps ({pct:.0f}%)"]
        parts += [f"{v} {k}" if k == "steps/s" else f"{k} {v}" for k, v in self._fields.items()]
        parts.append(f"{now - self._start:.0f} s")
        print(" | ".join(parts), file=self._stream, flush=True)

    def close(self) -> None:
        """Finish the bar, or write a last line. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.mode == "lines":
            self._write_line(time.perf_counter())
