"""Fuzzing the readers: real log and trajectory files, damaged at random, read back.

Run as a script (``python -m tests.logging.fuzz_readers WORKDIR FIRST_SEED N_CASES``), in a
process of its own, so that a reader that crashes the interpreter (SIGSEGV, SIGBUS) is a
failed test, not a dead pytest. Each case copies one dataset, damages one of its files
(flipped bits, overwritten, zeroed, deleted or repeated ranges, a truncation), reads it and
prints one JSON line. A reader may answer only with data that is what was written (a prefix
of each file, where damage or a cut stopped it), `CorruptFileError` naming the damaged file,
or `NoDataError`; anything else is reported as ``"bad"``. A ``{"start": seed}`` line goes
out before each case, so the case that killed the process is known.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import signal
import sys
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from rlstructures.dicttensor import DictTensor, TemporalDictTensor, Trajectories
from rlstructures.logging import (
    CorruptFileError,
    Logger,
    NoDataError,
    TrajectoryWriter,
    read_logs,
    read_trajectories,
)

__all__ = ["build", "main", "run_case"]

#: Datasets and how each is read back: name -> (reader, kind of check).
DATASETS = ("logs_csv", "logs_arrow", "traj_arrow", "traj_lz4", "traj_parquet")
_CASE_SECONDS = 20


def _batch(seed: int, first_uid: int) -> Trajectories:
    rng = np.random.default_rng(seed)
    b, t = 3, 5
    steps = TemporalDictTensor(
        {"observation/frame": rng.random((b, t, 2, 3)).astype(np.float32),
         "action": rng.integers(0, 4, (b, t)),
         "done": rng.random((b, t)) > 0.5,
         "reward": rng.random((b, t)).astype(np.float32)},
        lengths=rng.integers(0, t + 1, b))
    info = DictTensor({"env_info/uid": np.arange(first_uid, first_uid + b, dtype=np.int64),
                       "agent_info/eps": rng.random(b).astype(np.float32)})
    return Trajectories(info, steps)


def build(root: Path) -> dict[str, Any]:
    """Write the original datasets under ``root``; what each must read back as."""
    logs = root / "logs"
    step = 0
    for session in range(3):  # three Loggers: three Arrow parts, one CSV
        with Logger(logs, backends=("csv", "arrow"), max_pending=17) as logger:
            for _ in range(40 + 10 * session):
                logger.add_scalar(f"charts/tag{step % 3}", step / 7, step)
                step += 1
    shutil.copytree(logs, root / "logs_csv")
    shutil.copytree(logs, root / "logs_arrow")
    writes = [_batch(seed, 3 * seed) for seed in range(6)]
    for name, fmt, compression in (("traj_arrow", "arrow", None), ("traj_lz4", "arrow", "lz4"),
                                   ("traj_parquet", "parquet", None)):
        with TrajectoryWriter(root / name, fmt, max_file_bytes=2500,  # type: ignore[arg-type]
                              compression=compression) as writer:
            for write in writes:
                writer.write(write)
    table = read_logs(logs, source="arrow")
    return {"steps": table.column("step").to_pylist(), "trajectories": Trajectories.cat(writes),
            "parts": _part_uids(root / "traj_arrow")}


def _part_uids(dataset: Path) -> list[list[int]]:
    parts = sorted(dataset.glob("part-*"))
    return [read_trajectories(p).info["env_info/uid"].tolist() for p in parts]


def _mutate(data: bytearray, rng: random.Random) -> tuple[bytes, str]:
    n = len(data)
    kind = rng.choice(["flip", "flip", "overwrite", "zero", "truncate", "delete", "repeat"])
    at = rng.randrange(n) if n else 0
    span = rng.randint(1, 64)
    if kind == "flip":
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(n)
            data[pos] ^= 1 << rng.randrange(8)
    elif kind == "overwrite":
        data[at : at + span] = bytes(rng.randrange(256) for _ in range(len(data[at:at + span])))
    elif kind == "zero":
        data[at : at + span] = bytes(len(data[at : at + span]))
    elif kind == "truncate":
        del data[at:]
    elif kind == "delete":
        del data[at : at + span]
    else:
        data[at:at] = data[at : at + span]
    return bytes(data), f"{kind} at {at}"


def _mutate_dataset(case: Path, target: Path, rng: random.Random) -> str:
    """Whole-file damage: a part lost, two swapped, one copied over another."""
    parts = sorted(case.rglob("part-*"))
    other = rng.choice([p for p in parts if p != target] or parts)
    kind = rng.choice(["delete", "swap", "copy"])
    if kind == "delete":
        target.unlink()
    elif kind == "swap":
        data = target.read_bytes()
        target.write_bytes(other.read_bytes())
        other.write_bytes(data)
    else:
        target.write_bytes(other.read_bytes())
    return f"{kind} {target.relative_to(case)} / {other.relative_to(case)}"


def _check_logs(table: Any, expected: list[int], csv: bool) -> str | None:
    steps = table.column("step").to_pylist()
    if csv:  # no checksum: a changed digit or a repeated line reads back as it reads
        return None
    i = 0  # Arrow: every row is a row that was written, in order, each part a prefix
    for s in steps:
        while i < len(expected) and expected[i] != s:
            i += 1
        if i == len(expected):
            return f"a row of step {s} that was not written there"
        i += 1
    values = table.column("value").to_pylist()
    if any(v != s / 7 for s, v in zip(steps, values, strict=True)):
        return "a value that was not written"
    return None


def _check_trajectories(back: Trajectories, original: Trajectories, parts: list[list[int]],
                        checked_values: bool) -> str | None:
    uids = back.info["env_info/uid"].tolist()
    if uids != sorted(set(uids)) or not set(uids) <= set(range(len(original))):
        return f"trajectory uids {uids}"
    for part in parts:  # each part gives a prefix of its trajectories
        got = [u for u in uids if u in part]
        if got != part[: len(got)]:
            return f"part {part} gave {got}"
    want = original[np.asarray(uids, dtype=np.int64)]
    if not back.info.equal(want.info) or back.lengths.tolist() != want.lengths.tolist():
        return "info or lengths that were not written"
    if checked_values and not back.trajectories.shorten().equal(want.trajectories.shorten()):
        return "step values that were not written"
    return None


def run_case(seed: int, work: Path, originals: Path, expected: dict[str, Any]) -> dict[str, Any]:
    """Damage one file of one dataset (chosen by ``seed``) and read it back."""
    rng = random.Random(seed)
    name = DATASETS[seed % len(DATASETS)]
    case = work / f"case{seed}"
    shutil.copytree(originals / name, case)
    candidates = sorted(p for p in case.rglob("*") if p.is_file() and p.name != "hparams.json")
    if name == "logs_csv":
        candidates = [case / "scalars.csv"]
    elif name == "logs_arrow":
        candidates = [p for p in candidates if p.suffix == ".arrows"]
    target = rng.choice(candidates)
    if name.startswith("traj") and rng.random() < 0.15:  # damage the dataset, not a file
        mutation = _mutate_dataset(case, target, rng)
    else:
        damaged, mutation = _mutate(bytearray(target.read_bytes()), rng)
        target.write_bytes(damaged)
    report: dict[str, Any] = {"seed": seed, "dataset": name, "mutation": mutation,
                              "file": str(target.relative_to(case))}
    try:
        problem: str | None
        if name.startswith("logs"):
            csv = name == "logs_csv"
            table = read_logs(case, source="csv" if csv else "arrow")
            table.to_pandas()  # touches every buffer: unvalidated ones could crash here
            problem = _check_logs(table, expected["steps"], csv)
        else:
            back = read_trajectories(case)
            problem = _check_trajectories(back, expected["trajectories"], expected["parts"],
                                          checked_values=name == "traj_parquet")
        report["outcome"] = "ok" if problem is None else "bad"
        if problem is not None:
            report["detail"] = f"silently wrong: {problem}"
    except CorruptFileError as exc:
        path = getattr(exc, "path", None)
        named = path is not None and Path(str(path)).name in str(exc)
        report["outcome"] = "corrupt" if named else "bad"
        report["detail"] = str(exc)[:300] + ("" if named else " (the file is not named)")
    except NoDataError as exc:
        report["outcome"] = "nodata"
        report["detail"] = str(exc)[:200]
    except Exception as exc:  # anything else is what this fuzzing looks for
        report["outcome"] = "bad"
        report["detail"] = f"{type(exc).__name__}: {exc}"[:300]
        report["traceback"] = traceback.format_exc()[-2000:]
    shutil.rmtree(case)
    return report


def _alarm(signum: int, frame: Any) -> None:
    raise TimeoutError(f"a case took more than {_CASE_SECONDS} s")


def main(argv: list[str]) -> int:
    """``WORKDIR FIRST_SEED N_CASES``: build the datasets, then run the cases."""
    work, first, count = Path(argv[0]), int(argv[1]), int(argv[2])
    logging.disable(logging.WARNING)  # the readers' recovery warnings
    originals = work / "originals"
    expected = build(originals)
    signal.signal(signal.SIGALRM, _alarm)
    def emit(report: dict[str, Any]) -> None:
        print(json.dumps(report), flush=True)

    for seed in range(first, first + count):
        emit({"start": seed})
        signal.alarm(_CASE_SECONDS)
        try:
            emit(run_case(seed, work, originals, expected))
        except TimeoutError as exc:
            emit({"seed": seed, "outcome": "bad", "detail": str(exc)})
        signal.alarm(0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
