"""Logger and read_logs: backends, validation, hparams, flushing, tensorboard read-back."""

from __future__ import annotations

import inspect
import json
import math
import os
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.ipc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlstructures.logging import (
    CorruptFileError,
    HParamsError,
    InvalidScalarError,
    Logger,
    LoggingError,
    MissingDependencyError,
    NoDataError,
    ScalarLogger,
    UnknownTagError,
    WriterClosedError,
    read_logs,
)

COLUMNS = ["wall_time", "step", "tag", "value"]


def event_accumulator(logdir: Path) -> Any:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(logdir), size_guidance={"scalars": 0})  # 0: keep every scalar
    acc.Reload()
    return acc


def log_some(logdir: Path, backends: tuple[str, ...] = ("csv", "tensorboard", "arrow")) -> None:
    with Logger(logdir, backends=backends) as logger:
        for step in range(0, 500, 100):
            logger.add_scalar("charts/episodic_return", step / 10, step)
            logger.add_scalars({"losses/value_loss": 1.0 / (step + 1), "charts/SPS": 1e3}, step)


@pytest.mark.parametrize("source", ["arrow", "csv", "tensorboard"])
def test_every_backend_reads_back_the_same_long_table(tmp_path: Path, source: str) -> None:
    log_some(tmp_path)
    table = read_logs(tmp_path, source=source)  # type: ignore[arg-type]
    assert table.column_names == COLUMNS
    assert [str(t) for t in table.schema.types] == ["double", "int64", "string", "double"]
    assert table.num_rows == 15
    rows = [r for r in table.to_pylist() if r["tag"] == "charts/episodic_return"]
    assert [r["step"] for r in rows] == [0, 100, 200, 300, 400]
    assert [r["value"] for r in rows] == [0.0, 10.0, 20.0, 30.0, 40.0]
    sps = [r["value"] for r in table.to_pylist() if r["tag"] == "charts/SPS"]
    assert sps == [1000.0] * 5


def test_auto_source_and_no_data(tmp_path: Path) -> None:
    log_some(tmp_path / "a", backends=("csv",))
    assert read_logs(tmp_path / "a").num_rows == 15
    with pytest.raises(NoDataError, match="holds no"):
        read_logs(tmp_path / "a", source="arrow")
    with pytest.raises(NoDataError, match="does not exist"):
        read_logs(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError):
        read_logs(tmp_path / "empty")
    with pytest.raises(ValueError, match="source must be"):
        read_logs(tmp_path / "a", source="json")  # type: ignore[arg-type]


def test_tensorboard_event_files_hold_every_scalar(tmp_path: Path) -> None:
    n = 10_500  # more than EventAccumulator's default reservoir of 10,000 scalars
    with Logger(tmp_path, backends=("tensorboard",), max_pending=4096) as logger:
        for step in range(n):
            logger.add_scalar("charts/episodic_return", step * 0.5, step * 8)
        logger.add_scalar("eval/episodic_return", math.pi, 7)
    acc = event_accumulator(tmp_path)
    assert sorted(acc.Tags()["scalars"]) == ["charts/episodic_return", "eval/episodic_return"]
    events = acc.Scalars("charts/episodic_return")
    assert [e.step for e in events] == [8 * i for i in range(n)]
    assert [e.value for e in events] == [float(np.float32(i * 0.5)) for i in range(n)]
    assert acc.Scalars("eval/episodic_return")[0].value == pytest.approx(math.pi, rel=1e-6)


def test_hparams_go_to_json_and_into_the_same_tensorboard_run(tmp_path: Path) -> None:
    from tensorboard.plugins.hparams import plugin_data_pb2

    hparams = {"lr": 2.5e-4, "env_id": "CartPole-v1", "anneal": True, "n_envs": np.int64(8),
               "target_kl": None, "hidden": (64, 64)}
    with Logger(tmp_path) as logger:
        logger.add_hparams(hparams)
        logger.add_scalar("charts/episodic_return", 1.0, 1)
        with pytest.raises(HParamsError, match="already called"):
            logger.add_hparams({"lr": 1.0})
    saved = json.loads((tmp_path / "hparams.json").read_text())
    assert saved == {"lr": 2.5e-4, "env_id": "CartPole-v1", "anneal": True, "n_envs": 8,
                     "target_kl": None, "hidden": [64, 64]}
    assert len(list(tmp_path.glob("*tfevents*"))) == 1  # one run: scalars and hparams together
    acc = event_accumulator(tmp_path)
    content = acc.PluginTagToContent("hparams")
    assert list(content) == ["_hparams_/session_start_info"]
    info = plugin_data_pb2.HParamsPluginData.FromString(
        content["_hparams_/session_start_info"]).session_start_info
    assert info.hparams["lr"].number_value == 2.5e-4
    assert info.hparams["env_id"].string_value == "CartPole-v1"
    assert info.hparams["anneal"].bool_value is True
    assert info.hparams["n_envs"].number_value == 8
    assert info.hparams["hidden"].string_value == "[64, 64]"
    assert acc.Scalars("charts/episodic_return")[0].value == 1.0


def test_hparams_errors(tmp_path: Path) -> None:
    with Logger(tmp_path, backends=("csv",)) as logger:
        with pytest.raises(HParamsError, match=r"'net/a' is a object"):
            logger.add_hparams({"net": {"a": object()}})
        with pytest.raises(HParamsError, match="must be str"):
            logger.add_hparams({1: 2})  # type: ignore[dict-item]  # the error tested
        logger.add_hparams({"lr": 0.1, "nan": float("nan")})
    with Logger(tmp_path, backends=("csv",)) as logger:  # same run, same values: fine
        logger.add_hparams({"lr": 0.1, "nan": float("nan")})
    with Logger(tmp_path, backends=("csv",)) as logger:
        with pytest.raises(HParamsError, match="already holds other hyperparameters"):
            logger.add_hparams({"lr": 0.2})


@pytest.mark.parametrize(
    ("tag", "value", "step", "message"),
    [
        ("", 1.0, 0, "non-empty"),
        ("a\nb", 1.0, 0, "line break"),
        (3, 1.0, 0, "tag must be a str"),
        ("x", "1.0", 0, "got the string"),
        ("x", [1.0, 2.0], 0, "must be a real number"),
        ("x", np.ones(3), 0, r"of shape \(3,\)"),
        ("x", 1.0, 1.5, "must be an int"),
        ("x", 1.0, True, "got the bool"),
        ("x", 1.0, 2**63, "int64"),
        ("bad/\udcff", 1.0, 0, r"lone surrogate '\\udcff' at index 4"),
        pytest.param("x" * 5000, 1.0, 0, "5000 bytes long", id="huge-tag"),
        pytest.param("x", 10**400, 0, "too large for a float64", id="10**400"),
        pytest.param("x", 10**5000, 0, "too large for a float64", id="10**5000"),
        pytest.param("x", Decimal("1e400"), 0, "too large for a float64", id="Decimal-1e400"),
        ("x", np.complex128(1 + 2j), 0, "complex number"),
        ("x", 1 + 2j, 0, "complex number"),
        ("x", np.array([1 + 0j]), 0, "complex number"),
    ],
)
def test_bad_scalars_are_refused_with_the_reason(
    tmp_path: Path, tag: Any, value: Any, step: Any, message: str
) -> None:
    with Logger(tmp_path, backends=("csv",)) as logger:
        with pytest.raises(InvalidScalarError, match=message):
            logger.add_scalar(tag, value, step)
        with pytest.raises(InvalidScalarError):  # add_scalars logs nothing of a bad batch
            logger.add_scalars({"ok": 1.0, tag: value}, step)
    assert read_logs(tmp_path).num_rows == 0


def test_a_refused_scalar_loses_nothing_else(tmp_path: Path) -> None:
    """A bad tag or value is refused at add_scalar; the good rows around it all get written."""
    with Logger(tmp_path, backends=("csv", "arrow"), max_pending=3) as logger:
        logger.add_scalar("a", 1.0, 0)
        with pytest.raises(InvalidScalarError):
            logger.add_scalar("bad/\udcff", 2.0, 1)
        logger.add_scalar("b", 3.0, 2)
        with pytest.raises(InvalidScalarError):
            logger.add_scalar("c", 10**400, 3)
        logger.add_scalars({"c": 4.0, "d": 5.0}, 4)  # the third row: a flush
        logger.add_scalar("e", 6.0, 5)
    for source in ("csv", "arrow"):
        table = read_logs(tmp_path, source=source)
        assert table.column("tag").to_pylist() == ["a", "b", "c", "d", "e"]
        assert table.column("value").to_pylist() == [1.0, 3.0, 4.0, 5.0, 6.0]


@pytest.mark.skipif(bool(np.finfo(np.longdouble).max <= np.finfo(np.float64).max),
                    reason="long double is float64 on this platform")
def test_a_long_double_beyond_float64_is_refused_not_logged_as_inf(tmp_path: Path) -> None:
    with Logger(tmp_path, backends=("csv",)) as logger:
        with pytest.raises(InvalidScalarError, match="too large for a float64"):
            logger.add_scalar("x", np.longdouble("1e400"), 0)
        logger.add_scalar("x", np.longdouble("inf"), 1)  # a true inf is kept
        logger.add_scalar("x", Decimal("-Infinity"), 2)
    assert read_logs(tmp_path).column("value").to_pylist() == [math.inf, -math.inf]


def test_a_scalars_csv_that_is_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    """A FIFO would hang, /dev/null would swallow every row: both refused at once."""
    fifo, null = tmp_path / "fifo", tmp_path / "null"
    fifo.mkdir()
    os.mkfifo(fifo / "scalars.csv")
    null.mkdir()
    os.symlink(os.devnull, null / "scalars.csv")
    with pytest.raises(CorruptFileError, match="is a FIFO"):
        Logger(fifo, backends=("csv",))
    with pytest.raises(CorruptFileError, match="is a device"):
        Logger(null, backends=("csv",))


def test_an_unreadable_hparams_json_is_named_as_such(tmp_path: Path) -> None:
    (tmp_path / "hparams.json").write_bytes(b"\xff\xfe not json")
    with Logger(tmp_path, backends=("csv",)) as logger:
        with pytest.raises(HParamsError, match="cannot be read as the JSON"):
            logger.add_hparams({"lr": 0.1})


def test_values_of_every_numeric_kind(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    values = [3, 2.5, np.float32(1.5), np.int64(4), np.array(7.0), torch.tensor(0.25),
              torch.tensor([9.0]), True, float("inf"), float("-inf"), float("nan")]
    with Logger(tmp_path, backends=("csv", "arrow")) as logger:
        for i, value in enumerate(values):
            logger.add_scalar("x", value, step=np.int32(i))
    for source in ("csv", "arrow"):
        got = read_logs(tmp_path, source=source).column("value").to_pylist()
        assert got[:9] == [3.0, 2.5, 1.5, 4.0, 7.0, 0.25, 9.0, 1.0, math.inf]
        assert got[9] == -math.inf
        assert math.isnan(got[10])


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(
    st.text(min_size=1).filter(lambda s: "\n" not in s and "\r" not in s),
    st.floats(allow_nan=False) | st.integers(-(2**53), 2**53),
    st.integers(-(2**63), 2**63 - 1)), max_size=8))
def test_any_tag_and_value_round_trip_through_csv_and_arrow(
        rows: list[tuple[str, float, int]]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        with Logger(tmp, backends=("csv", "arrow")) as logger:
            for tag, value, step in rows:
                logger.add_scalar(tag, value, step)
        for source in ("csv", "arrow"):
            table = read_logs(tmp, source=source)
            assert table.column("tag").to_pylist() == [r[0] for r in rows]
            assert table.column("value").to_pylist() == [float(r[1]) for r in rows]
            assert table.column("step").to_pylist() == [r[2] for r in rows]


def test_flush_policy_and_lifecycle(tmp_path: Path) -> None:
    logger = Logger(tmp_path, backends=("csv", "arrow"), flush_secs=3600, max_pending=3)
    logger.add_scalars({"a": 1.0, "b": 2.0}, 1)
    assert read_logs(tmp_path, source="csv").num_rows == 0  # still in memory
    logger.add_scalar("c", 3.0, 1)  # the third pending row triggers a flush
    assert read_logs(tmp_path, source="csv").num_rows == 3
    assert read_logs(tmp_path, source="arrow").num_rows == 3  # readable while being written
    logger.add_scalar("d", 4.0, 2)
    logger.flush()
    assert read_logs(tmp_path, source="arrow").num_rows == 4
    logger.close()
    logger.close()  # idempotent
    assert logger.closed
    assert "closed" in repr(logger)
    calls: list[Callable[[], None]] = [
        lambda: logger.add_scalar("e", 1.0, 3), logger.flush, lambda: logger.add_hparams({})]
    for call in calls:
        with pytest.raises(WriterClosedError, match="after close"):
            call()
    eager = Logger(tmp_path / "eager", backends=("csv",), flush_secs=0)
    eager.add_scalar("a", 1.0, 0)
    assert read_logs(tmp_path / "eager").num_rows == 1
    eager.close()


def test_an_unclosed_logger_is_flushed_when_collected(tmp_path: Path) -> None:
    logger = Logger(tmp_path, backends=("csv", "arrow"))
    logger.add_scalar("a", 1.0, 0)
    del logger
    assert read_logs(tmp_path, source="csv").num_rows == 1
    # closed: the stream has its end-of-stream marker
    assert pa.ipc.open_stream(tmp_path / "scalars-00000.arrows").read_all().num_rows == 1


def test_a_second_logger_continues_the_run_without_rewriting(tmp_path: Path) -> None:
    log_some(tmp_path, backends=("csv", "arrow"))
    csv_before = (tmp_path / "scalars.csv").read_bytes()
    log_some(tmp_path, backends=("csv", "arrow"))
    assert (tmp_path / "scalars.csv").read_bytes().startswith(csv_before)
    assert sorted(p.name for p in tmp_path.glob("*.arrows")) == [
        "scalars-00000.arrows", "scalars-00001.arrows"]
    assert read_logs(tmp_path, source="csv").num_rows == 30
    assert read_logs(tmp_path, source="arrow").num_rows == 30


def test_constructor_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown Logger backend 'wandb'"):
        Logger(tmp_path, backends=("csv", "wandb"))
    with pytest.raises(ValueError, match="at least one backend"):
        Logger(tmp_path, backends=())
    with pytest.raises(ValueError, match="flush_secs"):
        Logger(tmp_path, flush_secs=-1)
    (tmp_path / "f").write_text("")
    with pytest.raises(NotADirectoryError):
        Logger(tmp_path / "f")
    with Logger(tmp_path / "one", backends="csv") as logger:  # a single name is accepted
        assert logger.backends == ("csv",)
        assert logger.logdir == tmp_path / "one"
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "scalars.csv").write_text("a,b\n1,2\n")
    with pytest.raises(LoggingError, match="not the header"):
        Logger(tmp_path / "other", backends=("csv",))


def test_missing_tensorboard_names_the_extra(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m.split(".")[0] == "tensorboard"] + ["tensorboard"]:
        monkeypatch.setitem(sys.modules, name, None)  # None: "import fails" for the importer
    with pytest.raises(MissingDependencyError, match=r"rlstructures-logging\[tensorboard\]"):
        Logger(tmp_path)
    with pytest.raises(ImportError):
        Logger(tmp_path, backends=("tensorboard",))
    with Logger(tmp_path, backends=("csv", "arrow")) as logger:  # no tensorboard needed
        logger.add_scalar("a", 1.0, 0)
    assert not list(tmp_path.glob("*tfevents*"))
    assert os.path.getsize(tmp_path / "scalars.csv") > 0


def test_nested_hparams_are_flattened_with_slashes(tmp_path: Path) -> None:
    from tensorboard.plugins.hparams import plugin_data_pb2

    nested = {"env_id": "CartPole-v1", "opt": {"lr": 1e-3, "betas": (0.9, 0.99),
                                               "schedule": {"kind": "linear", "end": 0.0}},
              "empty": {}}
    flat = {"env_id": "CartPole-v1", "opt/lr": 1e-3, "opt/betas": [0.9, 0.99],
            "opt/schedule/kind": "linear", "opt/schedule/end": 0.0}
    with Logger(tmp_path) as logger:
        logger.add_hparams(nested)
    assert json.loads((tmp_path / "hparams.json").read_text()) == flat
    content = event_accumulator(tmp_path).PluginTagToContent("hparams")
    info = plugin_data_pb2.HParamsPluginData.FromString(
        content["_hparams_/session_start_info"]).session_start_info
    assert sorted(info.hparams) == sorted(flat)
    assert info.hparams["opt/schedule/kind"].string_value == "linear"
    with Logger(tmp_path, backends=("csv",)) as logger:  # the same run given flat: the same
        logger.add_hparams(flat)


def test_nested_hparams_errors(tmp_path: Path) -> None:
    loop: dict[str, Any] = {"a": 1}
    loop["self"] = loop
    with Logger(tmp_path, backends=("csv",)) as logger:
        with pytest.raises(HParamsError, match="'opt/lr' is given twice"):
            logger.add_hparams({"opt/lr": 1, "opt": {"lr": 2}})
        with pytest.raises(HParamsError, match="'opt/lr' is given twice"):
            logger.add_hparams({"opt": {"lr": 2}, "opt/lr": 1})
        with pytest.raises(HParamsError, match=r"must be str, got 3 \(int\) under 'opt'"):
            logger.add_hparams({"opt": {3: 2}})
        with pytest.raises(HParamsError, match="'self' contains itself"):
            logger.add_hparams(loop)
        with pytest.raises(HParamsError, match="takes a mapping"):
            logger.add_hparams([("lr", 1)])  # type: ignore[arg-type]  # the error tested
    assert not (tmp_path / "hparams.json").exists()  # nothing written by a refused call


def test_hparams_no_file_can_store_are_refused_before_anything_is_written(
        tmp_path: Path) -> None:
    with Logger(tmp_path) as logger:
        cases: list[tuple[dict[str, Any], str]] = [
            ({"env": "bad/\udcff"}, "lone surrogate"),
            ({"bad\udcff": 1}, "hyperparameter name"),
            ({"seeds": [1, "x\udcff"]}, "lone surrogate"),
            ({"n": 10**5000}, "too large to record"),
        ]
        for bad, message in cases:
            with pytest.raises(HParamsError, match=message):
                logger.add_hparams(bad)
            assert not (tmp_path / "hparams.json").exists()
        logger.add_hparams({"n": 10**400, "x": np.float32(0.5), "l": [np.int64(3)]})
    assert json.loads((tmp_path / "hparams.json").read_text()) == {
        "n": 10**400, "x": 0.5, "l": [3]}
    assert not list(tmp_path.glob(".hparams*"))


def test_add_scalars_flattens_nested_mappings(tmp_path: Path) -> None:
    with Logger(tmp_path, backends=("csv",)) as logger:
        logger.add_scalars({"losses": {"pg": -0.5, "vf": 0.25}, "charts/SPS": 100}, 7)
        with pytest.raises(InvalidScalarError, match="'losses/pg' is given twice"):
            logger.add_scalars({"losses": {"pg": 1.0}, "losses/pg": 2.0}, 8)
        with pytest.raises(InvalidScalarError, match="must be a real number"):
            logger.add_scalars({"losses": {"pg": "high"}}, 9)
    table = read_logs(tmp_path)
    assert table.column("tag").to_pylist() == ["losses/pg", "losses/vf", "charts/SPS"]
    assert table.column("value").to_pylist() == [-0.5, 0.25, 100.0]


def test_last_is_the_latest_value_logged(tmp_path: Path) -> None:
    with Logger(tmp_path, backends=("csv",), max_pending=2) as logger:
        logger.add_scalar("charts/episodic_return", 10.0, 100)
        logger.add_scalars({"charts/episodic_return": np.float32(12.5), "losses/vf": 1}, 200)
        logger.add_scalar("charts/episodic_return", 9.0, 150)  # the latest call, not max step
        assert logger.last("charts/episodic_return") == 9.0
        assert logger.last("losses/vf") == 1.0
        assert type(logger.last("losses/vf")) is float
        with pytest.raises(InvalidScalarError):
            logger.add_scalar("losses/vf", "nan", 300)  # type: ignore[arg-type]  # refused
        assert logger.last("losses/vf") == 1.0
        with pytest.raises(KeyError, match=r"never logged.*Did you mean 'charts/episodic_return'"):
            logger.last("charts/episodic_retrun")
        with pytest.raises(UnknownTagError, match="never logged"):
            logger.last(["not", "hashable"])  # type: ignore[arg-type]  # the error tested
    assert logger.last("losses/vf") == 1.0  # still answers after close
    with Logger(tmp_path, backends=("csv",)) as second:  # another session: its own values
        with pytest.raises(UnknownTagError):
            second.last("losses/vf")


def test_one_logger_shared_by_threads_keeps_every_row_whole(tmp_path: Path) -> None:
    import threading

    n_threads, n_rows = 4, 5000
    logger = Logger(tmp_path, backends=("csv", "arrow"), max_pending=97)
    start = threading.Barrier(n_threads)

    def log(i: int) -> None:
        start.wait()
        for step in range(n_rows):
            logger.add_scalar(f"thread{i}", float(i * n_rows + step), i * n_rows + step)

    threads = [threading.Thread(target=log, args=(i,)) for i in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    logger.close()
    for source in ("csv", "arrow"):
        rows = read_logs(tmp_path, source=source).to_pylist()
        assert len(rows) == n_threads * n_rows
        assert all(r["value"] == r["step"] for r in rows)  # no row mixes two threads' values
        assert all(r["tag"] == f"thread{r['step'] // n_rows}" for r in rows)
        assert sorted(r["step"] for r in rows) == list(range(n_threads * n_rows))


def test_a_logger_cannot_be_pickled_or_copied(tmp_path: Path) -> None:
    import copy
    import pickle

    with Logger(tmp_path, backends=("csv",)) as logger:
        for attempt in (pickle.dumps, copy.copy, copy.deepcopy):
            with pytest.raises(TypeError, match=r"cannot be pickled or copied.*Create the Logger"):
                attempt(logger)


def test_logger_satisfies_the_protocol(tmp_path: Path) -> None:
    def train(logger: ScalarLogger) -> None:
        logger.add_scalar("charts/episodic_return", 1.0, 10)
        logger.close()

    train(Logger(tmp_path, backends=("csv",)))
    assert read_logs(tmp_path).num_rows == 1


def test_str_subclass_tags_are_logged_as_their_text(tmp_path: Path) -> None:
    """An enum.StrEnum member or a numpy.str_ is a str: it was refused as "not a str"."""
    import enum

    class Tag(enum.StrEnum):
        RETURN = "charts/episodic_return"

    with Logger(tmp_path, backends=("csv", "arrow")) as logger:
        logger.add_scalar(Tag.RETURN, 1.0, 1)
        logger.add_scalar(np.str_("losses/pg"), 2.0, 1)
        logger.add_scalars({Tag.RETURN: 3.0}, 2)
        assert logger.last("charts/episodic_return") == 3.0
        logger.add_hparams({np.str_("lr"): 0.1})
    assert json.loads((tmp_path / "hparams.json").read_text()) == {"lr": 0.1}
    for source in ("csv", "arrow"):
        tags = read_logs(tmp_path, source=source).column("tag").to_pylist()
        assert tags == ["charts/episodic_return", "losses/pg", "charts/episodic_return"]
        assert all(type(t) is str for t in tags)


def test_help_shows_the_parameters_of_init_not_new() -> None:
    params = inspect.signature(Logger).parameters
    assert list(params) == ["logdir", "backends", "flush_secs", "max_pending"]
    assert params["flush_secs"].kind is inspect.Parameter.KEYWORD_ONLY
