"""`Logger` writes a run's scalars to CSV, TensorBoard and Arrow; `read_logs` reads them."""

from __future__ import annotations

import functools
import inspect
import logging
import os
import time
import weakref
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol, SupportsFloat, SupportsIndex

from rlstructures.logging._checks import (
    check_step,
    check_tag,
    check_value,
    flatten_hparams,
    write_hparams_json,
)
from rlstructures.logging._csv import CSV_NAME, CsvScalarWriter
from rlstructures.logging._legacy import check_legacy_keywords, removed_attribute
from rlstructures.logging._logger_state import LoggerState
from rlstructures.logging._process import not_picklable
from rlstructures.logging._scalar_reader import read_arrow_scalars, read_csv_scalars
from rlstructures.logging._scalars import ArrowScalarWriter, ScalarBackend
from rlstructures.logging._tensorboard import TensorboardWriter, has_event_files, read_tb_scalars
from rlstructures.logging.errors import (
    HParamsError,
    InvalidScalarError,
    LoggingError,
    NoDataError,
    UnknownTagError,
    WriterClosedError,
)

if TYPE_CHECKING:
    from typing import Self

    import pyarrow as pa

__all__ = ["BACKENDS", "HPARAMS_NAME", "Logger", "ScalarLogger", "read_logs"]

_log = logging.getLogger(__name__)
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1

Backend = Literal["csv", "tensorboard", "arrow"]
#: Every backend, in the order they are written.
BACKENDS: Final[tuple[Backend, ...]] = ("csv", "tensorboard", "arrow")
HPARAMS_NAME: Final = "hparams.json"


class ScalarLogger(Protocol):
    """What training code needs from a logger; `Logger` implements it.

    Type a parameter with it (``logger: ScalarLogger | None = None``) to accept any object
    with these methods, e.g. a test double.
    """

    def add_scalar(self, tag: str, value: SupportsFloat, step: SupportsIndex) -> None:
        """Log one value of ``tag`` at global env step ``step``."""

    def add_scalars(self, mapping: Mapping[str, Any], step: SupportsIndex) -> None:
        """Log several tags at the same step (nested mappings flattened with "/")."""

    def add_hparams(self, mapping: Mapping[str, Any]) -> None:
        """Record the run's hyperparameters, once (nested mappings flattened with "/")."""

    def last(self, tag: str) -> float:
        """The latest value logged for ``tag`` (a KeyError if none was)."""

    def flush(self) -> None:
        """Write everything pending."""

    def close(self) -> None:
        """Flush and release the files."""


def _open_backend(name: Backend, logdir: Path) -> ScalarBackend:
    if name == "csv":
        return CsvScalarWriter(logdir)
    if name == "tensorboard":
        return TensorboardWriter(logdir)
    return ArrowScalarWriter(logdir)


def _backend_names(backends: Iterable[str]) -> tuple[Backend, ...]:
    names = (backends,) if isinstance(backends, str) else tuple(backends)
    out: list[Backend] = []
    for name in names:
        if name not in BACKENDS:
            raise ValueError(
                f"unknown Logger backend {name!r}; choose among {list(BACKENDS)}, e.g. "
                "Logger(logdir, backends=('csv', 'arrow'))."
            )
        if name not in out:
            out.append(name)
    if not out:
        raise ValueError(f"Logger needs at least one backend among {list(BACKENDS)}, got none.")
    return tuple(out)


class Logger:
    """Scalars of one training run, written to several backends at once.

    Every value is one row ``wall_time, step, tag, value`` (``step``: global env steps, the
    x-axis of every curve; tags like ``charts/episodic_return``, ``charts/SPS``,
    ``eval/episodic_return``, ``losses/value_loss``). Rows wait in memory and are written
    to every backend by ``flush()``, which runs by itself every ``flush_secs`` seconds (checked
    when a value is added) or every ``max_pending`` rows, and at ``close()``. A Logger that is
    never closed is closed when garbage-collected or at interpreter exit.

    Backends, all in ``logdir``:

    * ``"csv"``: ``scalars.csv``, appended (a second Logger on the same logdir continues it);
    * ``"tensorboard"``: a new ``events.out.tfevents.*`` file (the ``tensorboard`` extra);
    * ``"arrow"``: a new Arrow IPC stream ``scalars-NNNNN.arrows``.

    A process killed at any point loses only the rows not yet flushed: the CSV holds only
    complete lines and the Arrow stream is readable up to its last flushed batch.

    A Logger may be shared by threads (its methods take a lock). It belongs to the process
    that created it: in a child made by ``fork`` it refuses to log and does nothing at exit
    (create a new Logger in the child); it cannot be pickled.

    Args:
        logdir: the run's directory (created if missing).
        backends: any of ``"csv"``, ``"tensorboard"``, ``"arrow"``.
        flush_secs: the longest time a row waits in memory, checked at each ``add_*``.
        max_pending: flush when this many rows wait.

    Raises:
        ValueError: an unknown backend name.
        MissingDependencyError: ``"tensorboard"`` without the tensorboard package.

    Example:
        >>> import tempfile
        >>> logdir = tempfile.mkdtemp()
        >>> with Logger(logdir, backends=("csv", "arrow")) as logger:
        ...     logger.add_hparams({"lr": 3e-4, "env_id": "CartPole-v1"})
        ...     logger.add_scalar("charts/episodic_return", 21.0, step=128)
        ...     logger.add_scalars({"losses/pg": -0.1, "losses/vf": 0.5}, step=256)
        >>> read_logs(logdir).column("tag").to_pylist()
        ['charts/episodic_return', 'losses/pg', 'losses/vf']
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        # Before __init__'s argument binding, whose TypeError could not name the fix.
        check_legacy_keywords(kwargs)
        return super().__new__(cls)

    def __init__(
        self,
        logdir: str | os.PathLike[str],
        backends: Iterable[str] = BACKENDS,
        *,
        flush_secs: float = 10.0,
        max_pending: int = 10_000,
    ) -> None:
        names = _backend_names(backends)
        if not flush_secs >= 0 or max_pending < 1:
            raise ValueError(
                f"need flush_secs >= 0 and max_pending >= 1, got {flush_secs} and {max_pending}."
            )
        self._logdir = Path(logdir)
        if self._logdir.exists() and not self._logdir.is_dir():
            raise NotADirectoryError(f"logdir {str(self._logdir)!r} exists and is not a directory.")
        self._logdir.mkdir(parents=True, exist_ok=True)
        opened: list[ScalarBackend] = []
        try:
            for name in names:
                opened.append(_open_backend(name, self._logdir))
        except BaseException:
            for backend in opened:
                backend.close()
            raise
        self._names = names
        self._state = LoggerState(opened, max_backlog=max(100 * max_pending, 1_000_000))
        self._finalizer = weakref.finalize(self, LoggerState.close, self._state)
        self._flush_secs = float(flush_secs)
        self._max_pending = int(max_pending)
        self._last_flush = time.monotonic()
        self._hparams_written = False
        self._tags: set[str] = set()  # tags already checked, for add_scalars' fast path
        self._last: dict[str, float] = {}

    @property
    def logdir(self) -> Path:
        """The run's directory."""
        return self._logdir

    @property
    def backends(self) -> tuple[str, ...]:
        """The backends written, in order."""
        return self._names

    @property
    def closed(self) -> bool:
        """True after ``close()``."""
        return self._state.closed

    def _check_open(self, method: str) -> None:
        state = self._state
        if state.closed or state.forked:
            self._raise_closed(method)

    def _raise_closed(self, method: str) -> None:
        state = self._state
        if not state.in_owner():
            raise WriterClosedError(
                f"Logger.{method}() in process {os.getpid()}, a child forked from process "
                f"{state.pid} that created this Logger (logdir {str(self._logdir)!r}): its "
                "files and pending rows belong to the parent. Create a new Logger in the "
                "child (the same logdir is fine: it continues the run)."
            )
        if state.closed:
            raise WriterClosedError(
                f"Logger.{method}() after close() (logdir {str(self._logdir)!r}). Open a new "
                "Logger on the same logdir to continue the run."
            )

    def add_scalar(self, tag: str, value: SupportsFloat, step: SupportsIndex) -> None:
        """Log ``value`` of ``tag`` at global env step ``step``.

        Args:
            tag: e.g. ``"charts/episodic_return"``; non-empty, no line break, valid Unicode
                (no lone surrogate), at most 4096 UTF-8 bytes.
            value: a real number: int, float, numpy scalar, 0-d array, 1-element tensor;
                within float64 (``10**400`` is refused); nan and inf are kept.
            step: an int, the global number of env steps (the x-axis).

        Raises:
            InvalidScalarError: a bad tag, value or step (nothing is logged).
            WriterClosedError: the Logger is closed.
        """
        if type(tag) is not str or tag not in self._tags:
            tag = check_tag(tag)
            self._tags.add(tag)
        value = value if type(value) is float else check_value(value, tag)
        step = step if type(step) is int and _INT64_MIN <= step <= _INT64_MAX else (
            check_step(step, tag))
        state = self._state
        if state.forked:  # before the lock: a thread of the parent may have held it at fork
            self._raise_closed("add_scalar")
        with state.lock:
            if state.closed:
                self._raise_closed("add_scalar")
            if state.depth:  # a signal handler, while this thread is inside this Logger
                state.deferred.append(functools.partial(self._queue, time.time(), step, tag,
                                                        value))
                return
            state.depth = 1
            try:
                pending = state.pending
                pending.append(time.time(), step, tag, value)
                self._last[tag] = value
                if len(pending.step) >= self._max_pending or (
                        time.monotonic() - self._last_flush >= self._flush_secs):
                    self._flush_now()
            finally:
                if state.deferred:  # a signal handler's work (rare): a call
                    state.end()
                else:
                    state.depth = 0

    def _queue(self, wall_time: float, step: int, tag: str, value: float) -> None:
        """A row that a signal handler logged while this thread was inside a section."""
        if not self._state.closed:
            self._state.pending.append(wall_time, step, tag, value)
            self._last[tag] = value

    def add_scalars(self, mapping: Mapping[str, Any], step: SupportsIndex) -> None:
        """Log several tags at the same ``step`` (all validated before any is logged).

        Args:
            mapping: ``{tag: value}``, as for ``add_scalar``; a nested mapping is flattened
                with "/": ``{"losses": {"pg": 0.1}}`` logs ``"losses/pg"`` (as 0.2's
                ``add_dict`` did).
            step: an int, the global number of env steps.

        Raises:
            InvalidScalarError: a bad tag, value or step (nothing of ``mapping`` is logged).
            WriterClosedError: the Logger is closed.
        """
        if not isinstance(mapping, Mapping):
            raise InvalidScalarError(
                f"add_scalars takes a mapping {{tag: value}}, got {type(mapping).__name__}."
            )
        known = self._tags
        for tag in mapping:
            if type(tag) is not str or tag not in known:
                known.add(check_tag(tag))
        steps = check_step(step, next(iter(mapping), "?"))
        try:
            checked = [(t if type(t) is str else check_tag(t), check_value(v, t))
                       for t, v in mapping.items()]
        except InvalidScalarError:
            if not any(isinstance(v, Mapping) for v in mapping.values()):
                raise
            flat = _flatten_tags(mapping)
            checked = [(t, check_value(v, t)) for t, v in flat.items()]
        self._append(checked, steps)

    def _append(self, checked: list[tuple[str, float]], step: int) -> None:
        """Queue validated rows; flush when ``max_pending`` rows wait or ``flush_secs`` passed."""
        state = self._state
        self._check_open("add_scalars")  # before the lock (fork), and again under it
        with state.lock:
            self._check_open("add_scalars")
            now = time.time()
            if state.depth:  # a signal handler, while this thread is inside this Logger
                for tag, value in checked:
                    state.deferred.append(functools.partial(self._queue, now, step, tag, value))
                return
            state.depth = 1
            try:
                pending, last = state.pending, self._last
                for tag, value in checked:
                    pending.append(now, step, tag, value)
                    last[tag] = value
                self._flush_if_due()
            finally:
                if state.deferred:
                    state.end()
                else:
                    state.depth = 0

    def _flush_if_due(self) -> None:
        """In a section: flush when ``max_pending`` rows wait or ``flush_secs`` passed."""
        if len(self._state.pending) >= self._max_pending or (
            time.monotonic() - self._last_flush >= self._flush_secs
        ):
            self._flush_now()

    def _flush_now(self) -> None:
        """In a section: write the pending rows (the flush that ``flush_secs`` counts from)."""
        self._last_flush = time.monotonic()
        self._state.flush()

    def last(self, tag: str) -> float:
        """The latest value logged for ``tag`` by this Logger (the last ``add_*`` call).

        Kept in memory, so a training loop can print progress without reading files back;
        still answers after ``close()``. Values logged by other Loggers (earlier sessions on
        the same logdir, other processes) are not seen: use `read_logs` for those.

        Raises:
            UnknownTagError: (a KeyError) this Logger never logged ``tag``.

        Example:
            >>> import tempfile
            >>> with Logger(tempfile.mkdtemp(), backends=("csv",)) as logger:
            ...     logger.add_scalar("charts/episodic_return", 21.0, step=128)
            ...     logger.add_scalar("charts/episodic_return", 35.5, step=256)
            ...     logger.last("charts/episodic_return")
            35.5
        """
        try:
            return self._last[tag]
        except (KeyError, TypeError):
            pass
        import difflib

        logged = sorted(self._last)
        close = difflib.get_close_matches(tag, logged, n=1) if type(tag) is str else []
        hint = f" Did you mean {close[0]!r}?" if close else ""
        shown = logged if len(logged) <= 20 else [*logged[:20], "..."]
        raise UnknownTagError(
            f"tag {tag!r} was never logged by this Logger (logdir {str(self._logdir)!r}); "
            f"logged tags: {shown}.{hint}"
        )

    def add_hparams(self, mapping: Mapping[str, Any]) -> None:
        """Record the run's hyperparameters, once per Logger.

        Written to ``logdir/hparams.json`` (JSON, atomically) and, with the tensorboard
        backend, as an HParams summary in the same run as the scalars.

        Args:
            mapping: ``{name: value}``; values bool, int, float, str, None, numpy scalars,
                lists of those, or mappings of those, flattened with "/" (``{"opt":
                {"lr": 0.1}}`` is recorded as ``{"opt/lr": 0.1}``, as TensorBoard's
                HParams and Stable-Baselines3 do). ``dataclasses.asdict(config)`` works,
                nested configs included.

        Raises:
            HParamsError: an unsupported value, a name given twice (nested and flat), a
                second call, or a ``hparams.json`` already holding other values (a log
                directory is one run).
        """
        hparams = flatten_hparams(mapping)
        self._check_open("add_hparams")
        with self._state.lock:
            self._check_open("add_hparams")
            if self._hparams_written:
                raise HParamsError(
                    "add_hparams was already called on this Logger; pass every hyperparameter "
                    "in one call."
                )
            if self._state.depth:  # a signal handler, while this thread is inside a flush
                raise LoggingError(
                    "add_hparams() from a signal handler that interrupted this Logger's own "
                    "work in the same thread; call it from the training code (add_scalar, "
                    "flush and close are allowed there: they run when that work ends)."
                )
            self._state.run(functools.partial(self._write_hparams, hparams))

    def _write_hparams(self, hparams: dict[str, Any]) -> None:
        write_hparams_json(self._logdir / HPARAMS_NAME, hparams)
        for backend in self._state.backends:
            backend.write_hparams(hparams)
        self._hparams_written = True

    def flush(self) -> None:
        """Write the pending rows to every backend and hand them to the operating system."""
        self._check_open("flush")
        state = self._state
        with state.lock:
            self._check_open("flush")
            self._last_flush = time.monotonic()
            if state.depth:  # a signal handler, while this thread is inside this Logger
                state.deferred.append(state.flush)
                return
            state.run(state.flush)

    def close(self) -> None:
        """Flush and close every backend. Calling it again does nothing."""
        self._finalizer()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"Logger({str(self._logdir)!r}, backends={self._names}, {state})"

    def __reduce_ex__(self, protocol: SupportsIndex) -> Any:
        raise not_picklable(
            "Logger",
            "Create the Logger in the process that logs (e.g. inside the worker function), "
            "on the same logdir to continue the same run.",
        )

    if not TYPE_CHECKING:  # for the type checker, a __getattr__ would accept any attribute

        def __getattr__(self, name: str) -> Any:
            raise removed_attribute(type(self).__name__, name)


# help(Logger), inspect.signature and IDEs show __init__'s parameters, not __new__'s
# (*args, **kwargs), which only screens 0.2 keywords before __init__ binds them.
_init_parameters = list(inspect.signature(Logger.__init__).parameters.values())[1:]
Logger.__signature__ = inspect.Signature(_init_parameters, return_annotation=None)  # type: ignore[attr-defined]


def _flatten_tags(mapping: Mapping[Any, Any], prefix: str = "",
                  parents: tuple[int, ...] = ()) -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a/b": 1}`` (0.2's ``add_dict``); the values checked later."""
    if id(mapping) in parents:
        raise InvalidScalarError(f"the mapping under tag {prefix.rstrip('/')!r} contains itself.")
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        name = prefix + check_tag(key) if prefix else check_tag(key)
        found = (_flatten_tags(value, name + "/", (*parents, id(mapping)))
                 if isinstance(value, Mapping) else {name: value})
        for tag in found:
            if tag in out:
                raise InvalidScalarError(
                    f"tag {tag!r} is given twice (once nested, flattened with '/', once by "
                    "its full name); keep one."
                )
        out.update(found)
    return out




Source = Literal["auto", "arrow", "csv", "tensorboard"]


def read_logs(logdir: str | os.PathLike[str], *, source: Source = "auto") -> pa.Table:
    """The scalars a `Logger` wrote in ``logdir``, as a ``pyarrow.Table``.

    Columns ``wall_time`` (float64, seconds since the epoch), ``step`` (int64), ``tag``
    (string), ``value`` (float64), in the order they were logged. Call ``.to_pandas()`` on
    the result for a DataFrame (needs pandas) or ``polars.from_arrow(...)``.

    Args:
        logdir: the run's directory.
        source: ``"auto"`` reads the Arrow parts if any, else ``scalars.csv``, else the
            TensorBoard event files (which need the ``tensorboard`` extra); or name one.

    Raises:
        NoDataError: ``logdir`` holds nothing from the chosen source.
        CorruptFileError: a file is not what Logger writes.

    Example:
        >>> import tempfile
        >>> logdir = tempfile.mkdtemp()
        >>> with Logger(logdir, backends=("csv",)) as logger:
        ...     logger.add_scalar("charts/SPS", 1500, step=64)
        >>> read_logs(logdir).to_pylist()[0]["value"]
        1500.0
    """
    path = Path(logdir)
    if not path.is_dir():
        raise NoDataError(f"log directory {str(path)!r} does not exist or is not a directory.")
    if source not in ("auto", "arrow", "csv", "tensorboard"):
        raise ValueError(f"source must be 'auto', 'arrow', 'csv' or 'tensorboard', got {source!r}.")
    if source in ("auto", "arrow"):
        table = read_arrow_scalars(path)
        if table is not None:
            return table
    csv_path = path / CSV_NAME
    if source in ("auto", "csv") and csv_path.is_file():
        return read_csv_scalars(csv_path)
    if source in ("auto", "tensorboard") and has_event_files(path):
        return read_tb_scalars(path)
    wanted = "scalars-*.arrows, scalars.csv or event files" if source == "auto" else source
    raise NoDataError(
        f"{str(path)!r} holds no {wanted} logs. Is it the directory given to Logger(logdir)?"
    )
