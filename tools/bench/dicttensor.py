"""Benchmark: DictTensor overhead against a plain dict of numpy arrays (and TensorDict).

Six keys as in an RL batch: obs (4,) float32, action () int64, reward () float32, done ()
bool, logp () float32, hidden (64,) float32; B rows. Each op is timed three ways, in the
same run and interleaved repeat by repeat:

* ``floor``: the same work on a plain ``dict`` of numpy arrays with dict comprehensions
  (``{k: v[i] for k, v in d.items()}`` for an int index, ``np.concatenate`` per key for
  ``cat``, ``torch.from_numpy`` per key for ``torch()``, a ``pyarrow.RecordBatch`` built
  with ``pa.array`` / ``FixedSizeListArray`` for ``to_arrow``, ...);
* ``ours``: ``rlstructures.dicttensor.DictTensor``;
* ``tensordict``: ``tensordict.TensorDict`` over the zero-copy torch views, when importable
  (the ``bench`` extra); ops it has no counterpart for are left blank.

``cat of 8`` concatenates 8 parts of B/8 rows and ``stack of 16`` stacks 16 parts of B/16
rows, so every op handles B rows. torch runs on one thread (like numpy). Times are medians
over ``--repeats`` repeats of a timeit loop long enough to last about ``--min-time`` seconds,
in microseconds of process CPU time per call (CPU time, not wall time: the machine is
shared, and time spent descheduled is not the code's cost).

Bar (issue 2): ``ours <= 1.2 * floor + 1.5 us`` for every op (construction, which
validates: ``+ 3 us``); and ``to_arrow`` / ``from_arrow`` of float leaves take a time that
does not grow with B (checked as ``t(B=4096) <= 1.5 * t(B=256) + 1 us``).

Usage: ``python tools/bench/dicttensor.py [--sizes 256 4096] [--repeats 15] [--check]``
"""

from __future__ import annotations

import os
import sys

# Run as a script, this folder is sys.path[0]: keep its modules (e.g. a bench named like a
# stdlib module) from shadowing the libraries imported below.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]

import argparse
import importlib.metadata
import platform
import statistics
import time
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from rlstructures.dicttensor import DictTensor

SLOPE, CONSTANT_US, CONSTRUCTION_US = 1.2, 1.5, 3.0
KEYS: dict[str, tuple[tuple[int, ...], str]] = {
    "obs": ((4,), "float32"),
    "action": ((), "int64"),
    "reward": ((), "float32"),
    "done": ((), "bool"),
    "logp": ((), "float32"),
    "hidden": ((64,), "float32"),
}


@dataclass
class Row:
    op: str
    b: int
    floor_us: float
    ours_us: float
    tensordict_us: float | None
    constant_us: float = CONSTANT_US

    @property
    def bar_us(self) -> float:
        return SLOPE * self.floor_us + self.constant_us

    @property
    def ok(self) -> bool:
        return self.ours_us <= self.bar_us


def make_data(b: int, rng: np.random.Generator) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, (row, dtype) in KEYS.items():
        shape = (b, *row)
        if dtype == "bool":
            data[key] = rng.random(shape) < 0.5
        elif dtype == "int64":
            data[key] = rng.integers(0, 10, shape)
        else:
            data[key] = rng.standard_normal(shape).astype(dtype)
    return data


# ---------------------------------------------------------------------- floors
def floor_to_arrow(d: dict[str, Any]) -> Any:
    columns = []
    for v in d.values():
        if v.ndim == 1:
            columns.append(pa.array(v))
        else:
            columns.append(pa.FixedSizeListArray.from_arrays(pa.array(v.reshape(-1)), v.shape[1]))
    return pa.RecordBatch.from_arrays(columns, names=list(d))


def floor_from_arrow(rb: Any) -> dict[str, Any]:
    out = {}
    for name, col in zip(rb.schema.names, rb.columns, strict=True):
        if isinstance(col.type, pa.FixedSizeListType):
            out[name] = col.values.to_numpy(zero_copy_only=False).reshape(
                len(col), col.type.list_size
            )
        else:
            out[name] = col.to_numpy(zero_copy_only=False)
    return out


# ---------------------------------------------------------------------- timing
def per_call_us(fn: Callable[[], object], number: int) -> float:
    return timeit.timeit(fn, number=number, timer=time.process_time) / number * 1e6


def calibrate(fn: Callable[[], object], min_time: float) -> int:
    number = 1
    while True:
        elapsed = timeit.timeit(fn, number=number, timer=time.process_time)
        if elapsed >= min_time / 5 or number >= 1_000_000:
            return max(1, int(number * min_time / max(elapsed, 1e-9)))
        number *= 10


def measure(
    contenders: list[Callable[[], object] | None], repeats: int, min_time: float
) -> list[float | None]:
    """Median us per call of each contender, timed interleaved repeat by repeat."""
    numbers = [None if f is None else calibrate(f, min_time) for f in contenders]
    samples: list[list[float]] = [[] for _ in contenders]
    for _ in range(repeats):
        for i, (f, n) in enumerate(zip(contenders, numbers, strict=True)):
            if f is not None and n is not None:
                samples[i].append(per_call_us(f, n))
    return [statistics.median(s) if s else None for s in samples]


def ops_for(b: int, td_cls: Any) -> list[tuple[str, list[Callable[[], object] | None], float]]:
    rng = np.random.default_rng(b)
    d = make_data(b, rng)
    dt = DictTensor(d)
    tv = {k: torch.from_numpy(v) for k, v in d.items()}
    td = None if td_cls is None else td_cls(tv, batch_size=[b])
    i, lo, hi = b // 3, b // 4, b // 2
    fancy = np.sort(rng.choice(b, 64, replace=False))
    mask = rng.random(b) < 0.5
    fancy_t, mask_t = torch.from_numpy(fancy), torch.from_numpy(mask)
    cat_parts = [make_data(b // 8, rng) for _ in range(8)]
    cat_dts = [DictTensor(p) for p in cat_parts]
    stack_parts = [make_data(b // 16, rng) for _ in range(16)]
    stack_dts = [DictTensor(p) for p in stack_parts]
    keys = list(d)
    rb = floor_to_arrow(d)
    ours_rb = dt.to_arrow()

    def td_op(f: Callable[[Any], object]) -> Callable[[], object] | None:
        return None if td is None else (lambda: f(td))

    td_cat = None if td_cls is None else [
        td_cls({k: torch.from_numpy(v) for k, v in p.items()}, batch_size=[b // 8])
        for p in cat_parts
    ]
    td_stack = None if td_cls is None else [
        td_cls({k: torch.from_numpy(v) for k, v in p.items()}, batch_size=[b // 16])
        for p in stack_parts
    ]
    return [
        ("construction", [lambda: dict(d), lambda: DictTensor(d),
                          None if td_cls is None else lambda: td_cls(tv, batch_size=[b])],
         CONSTRUCTION_US),
        ("int index", [lambda: {k: v[i] for k, v in d.items()}, lambda: dt[i],
                       td_op(lambda t: t[i])], CONSTANT_US),
        ("slice", [lambda: {k: v[lo:hi] for k, v in d.items()}, lambda: dt[lo:hi],
                   td_op(lambda t: t[lo:hi])], CONSTANT_US),
        ("fancy index (64)", [lambda: {k: v[fancy] for k, v in d.items()}, lambda: dt[fancy],
                              td_op(lambda t: t[fancy_t])], CONSTANT_US),
        ("bool mask", [lambda: {k: v[mask] for k, v in d.items()}, lambda: dt[mask],
                       td_op(lambda t: t[mask_t])], CONSTANT_US),
        ("cat of 8", [lambda: {k: np.concatenate([p[k] for p in cat_parts]) for k in keys},
                      lambda: DictTensor.cat(cat_dts),
                      None if td_cat is None else lambda: torch.cat(td_cat)], CONSTANT_US),
        ("stack of 16", [lambda: {k: np.stack([p[k] for p in stack_parts]) for k in keys},
                         lambda: DictTensor.stack(stack_dts),
                         None if td_stack is None else lambda: torch.stack(td_stack)],
         CONSTANT_US),
        ("torch()", [lambda: {k: torch.from_numpy(v) for k, v in d.items()}, dt.torch, None],
         CONSTANT_US),
        ("clone", [lambda: {k: v.copy() for k, v in d.items()}, dt.clone,
                   td_op(lambda t: t.clone())], CONSTANT_US),
        ("to_arrow", [lambda: floor_to_arrow(d), dt.to_arrow, None], CONSTANT_US),
        ("from_arrow", [lambda: floor_from_arrow(rb), lambda: DictTensor.from_arrow(ours_rb),
                        None], CONSTANT_US),
    ]


def arrow_constant_in_b(sizes: list[int], repeats: int, min_time: float) -> list[str]:
    """to_arrow / from_arrow of float leaves only, at each size (no bool: Arrow bit-packs)."""
    lines = []
    times: dict[str, list[float]] = {"to_arrow": [], "from_arrow": []}
    for b in sizes:
        d = {k: v for k, v in make_data(b, np.random.default_rng(b)).items() if v.dtype.kind == "f"}
        dt = DictTensor(d)
        rb = dt.to_arrow()
        def from_arrow(rb: Any = rb) -> object:
            return DictTensor.from_arrow(rb)

        to_us, from_us = measure([dt.to_arrow, from_arrow], repeats, min_time)
        assert to_us is not None
        assert from_us is not None
        times["to_arrow"].append(to_us)
        times["from_arrow"].append(from_us)
    for op, ts in times.items():
        ok = ts[-1] <= 1.5 * ts[0] + 1.0
        cells = ", ".join(f"B={b}: {t:.1f} us" for b, t in zip(sizes, ts, strict=True))
        lines.append(f"{op} (float leaves only): {cells} -> {'constant' if ok else 'GROWS'}")
    return lines


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = ", ".join(
        f"{name} {importlib.metadata.version(name)}" for name in ("numpy", "torch", "pyarrow")
    )
    return (f"{os.cpu_count()}-core {platform.machine()} ({cpu}), Python "
            f"{platform.python_version()}, {versions}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 4096])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--min-time", type=float, default=0.02,
                        help="CPU seconds per timed repeat (default 0.02)")
    parser.add_argument("--check", action="store_true", help="exit 1 when an op misses the bar")
    args = parser.parse_args(argv)
    # One thread, like numpy: on a shared 2-core machine torch's thread pool turns any
    # descheduled worker into a millisecond stall, which is noise and not TensorDict's cost.
    torch.set_num_threads(1)
    try:
        from tensordict import TensorDict

        td_cls: Any = TensorDict
        td_version = importlib.metadata.version("tensordict")
    except ImportError:
        td_cls, td_version = None, None
    rows = []
    for b in args.sizes:
        for op, fns, constant in ops_for(b, td_cls):
            floor, ours, td = measure(fns, args.repeats, args.min_time)
            assert floor is not None
            assert ours is not None
            rows.append(Row(op, b, floor, ours, td, constant))
    print(f"machine: {machine()}")
    print(f"tensordict: {td_version or 'not installed'}; median of {args.repeats} repeats\n")
    print("| op | B | floor_us | ours_us | ratio | bar_us | pass | tensordict_us |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | :---: | ---: |")
    for r in rows:
        td_cell = "" if r.tensordict_us is None else f"{r.tensordict_us:.1f}"
        print(f"| {r.op} | {r.b} | {r.floor_us:.2f} | {r.ours_us:.2f} | "
              f"{r.ours_us / r.floor_us:.2f} | {r.bar_us:.2f} | {'yes' if r.ok else 'NO'} | "
              f"{td_cell} |")
    print()
    arrow_lines = arrow_constant_in_b(args.sizes, args.repeats, args.min_time)
    for line in arrow_lines:
        print(line)
    failed = [r for r in rows if not r.ok]
    if failed:
        print(f"\n{len(failed)} op(s) miss the bar: "
              + ", ".join(f"{r.op} (B={r.b})" for r in failed))
    grows = any("GROWS" in line for line in arrow_lines)
    return 1 if args.check and (failed or grows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
