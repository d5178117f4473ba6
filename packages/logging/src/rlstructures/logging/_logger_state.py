"""What a `Logger` must flush and close, even when it is garbage-collected unclosed.

Kept apart from the Logger object so that its finalizer (``weakref.finalize``) can hold it
without keeping the Logger alive.
"""

from __future__ import annotations

import logging

from rlstructures.logging._process import Sections
from rlstructures.logging._scalars import ScalarBackend, ScalarRows
from rlstructures.logging.errors import LogWriteError

__all__ = ["LoggerState"]

_log = logging.getLogger(__name__)


class LoggerState(Sections):
    """What must be flushed and closed, even if the Logger is garbage-collected unclosed.

    ``lock`` serialises every use (a Logger may be shared by threads); the methods here
    assume the caller holds it, except ``close``, which takes it. ``backlog[i]`` holds the
    rows that backend ``i`` failed to write (its file was left as it was); they go first in
    its next write, so a disk that fills up and is freed again loses nothing.
    """

    __slots__ = ("backends", "backlog", "closed", "max_backlog", "pending")

    def __init__(self, backends: list[ScalarBackend], max_backlog: int) -> None:
        super().__init__()
        self.backends = backends
        self.pending = ScalarRows()
        self.backlog: dict[int, ScalarRows] = {}
        self.max_backlog = max_backlog
        self.closed = False

    def flush(self) -> None:
        rows, self.pending = self.pending, ScalarRows()
        failures: list[tuple[ScalarBackend, OSError]] = []
        for i, backend in enumerate(self.backends):
            todo = self.backlog.pop(i, None)
            if todo is None:
                todo = rows
            else:
                todo.extend(rows)
            if not todo:
                continue
            try:
                backend.write(todo)  # all or nothing
            except OSError as exc:
                failures.append((backend, exc))
                self._keep(i, todo)
            except BaseException:  # KeyboardInterrupt...: nothing lost, then re-raised
                self._keep(i, todo)
                for j in range(i + 1, len(self.backends)):
                    self._keep(j, rows, self.backlog.pop(j, None))
                raise
        if failures:
            waiting = max(len(r) for r in self.backlog.values())
            detail = "; ".join(f"{type(b).__name__}: {exc}" for b, exc in failures)
            raise LogWriteError(
                failures[0][1].errno,
                f"{len(failures)} of {len(self.backends)} Logger backends could not write "
                f"({detail}). Their files were left as they were; {waiting} rows wait in "
                "memory and go first in the next flush.",
            ) from failures[0][1]

    def _keep(self, i: int, rows: ScalarRows, before: ScalarRows | None = None) -> None:
        """Keep ``rows`` (after ``before``) for backend ``i``'s next write, within bounds."""
        kept = before if before is not None else ScalarRows()
        if kept is not rows:
            kept.extend(rows)
        excess = len(kept) - self.max_backlog
        if excess > 0:
            kept.drop_first(excess)
            _log.error("Logger backend %s: dropped its %d oldest unwritten rows (more than "
                       "%d waiting).", type(self.backends[i]).__name__, excess,
                       self.max_backlog)
        self.backlog[i] = kept

    def close(self) -> None:
        if not self.in_owner():
            return  # a forked child: the files and the pending rows are the parent's
        self.run_or_defer(self._close_now)

    def _close_now(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.flush()
        finally:
            for backend in self.backends:
                backend.close()
            if self.backlog:
                _log.error("Logger closed with %d rows that could not be written.",
                           max(len(rows) for rows in self.backlog.values()))
