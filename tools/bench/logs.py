"""Benchmark: TrajectoryWriter throughput and read_trajectories time against raw baselines.

Writes (medians of ``--repeats`` interleaved repeats, all in this process):

* ``TrajectoryWriter``: ``write(trajectories)`` per batch, Arrow IPC files (then ``close``);
* ``pyarrow IPC``: the same long-format arrays written with ``pyarrow.ipc.new_file`` directly
  (valid rows gathered with a numpy mask first when the sequences are not all full);
* ``numpy.save``: every ``[B, T, ...]`` leaf saved as its own ``.npy`` file.

Throughput is MB of valid step data per second (the same bytes for the three), files going
to the page cache (no fsync). Bar (issue 4): TrajectoryWriter >= 0.8 x pyarrow IPC on full
sequences (ratio: median of the per-repeat ratios).

Reads: ``read_trajectories`` of a one-write file of full sequences at growing sizes (memory
mapped, zero-copy: should not grow with the size), and of a many-write file of
variable-length sequences (copied into padded arrays), against ``numpy.load``.

Usage: ``python tools/bench/logs.py [--repeats 5] [--quick] [--check] [--dir DIR]``
"""

# Named logs.py, not logging.py: a script named logging.py in tools/bench would shadow the
# standard library's logging module for every benchmark run from that folder.
import argparse
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.ipc

from rlstructures.dicttensor import DictTensor, TemporalDictTensor, Trajectories
from rlstructures.logging import TrajectoryWriter, read_trajectories

BAR = 0.8
MB = 1e6


@dataclass(frozen=True)
class Workload:
    """A list of batches to write, and the MB of valid step data they hold."""

    name: str
    batches: list[Trajectories]

    @property
    def mbytes(self) -> float:
        total = 0
        for batch in self.batches:
            valid = int(batch.lengths.sum())
            for _, leaf in batch.trajectories.items():
                total += valid * leaf.dtype.itemsize * int(np.prod(leaf.shape[2:]))
        return total / MB


def make_batches(n_writes: int, b: int, t: int, specs: dict[str, tuple[tuple[int, ...], str]],
                 full: bool, seed: int = 0) -> list[Trajectories]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_writes):
        data = {}
        for key, (shape, dtype) in specs.items():
            if np.dtype(dtype).kind == "f":
                data[key] = rng.random((b, t, *shape), np.float32).astype(dtype)
            else:
                data[key] = rng.integers(0, 255, (b, t, *shape)).astype(dtype)
        lengths = np.full(b, t) if full else rng.integers(t // 4, t + 1, b)
        info = DictTensor({"agent_info/epsilon": rng.random(b, np.float32),
                           "env_info/seed": np.arange(b, dtype=np.int64)})
        out.append(Trajectories(info, TemporalDictTensor(data, lengths=lengths)))
    return out


VECTOR = {"observation/x": ((17,), "float32"), "_observation/x": ((17,), "float32"),
          "action/action": ((6,), "float32"), "reward": ((), "float32"), "done": ((), "bool")}
FRAMES = {"observation/frame": ((4, 84, 84), "uint8"), "action/action": ((), "int64"),
          "reward": ((), "float32"), "done": ((), "bool")}


# ---------------------------------------------------------------------- writers
def write_trajectory_writer(batches: list[Trajectories], out: Path) -> None:
    with TrajectoryWriter(out, max_file_bytes=None) as writer:
        for batch in batches:
            writer.write(batch)


def _column(rows: Any) -> Any:
    flat = pa.array(rows.reshape(-1))
    size = int(np.prod(rows.shape[1:]))
    return flat if rows.ndim == 1 else pa.FixedSizeListArray.from_arrays(flat, size)


def write_raw_ipc(batches: list[Trajectories], out: Path) -> None:
    out.mkdir()
    writer = None
    with pa.OSFile(str(out / "steps.arrow"), "wb") as sink:
        for batch in batches:
            tdt = batch.trajectories
            b, t = tdt.batch_shape
            if bool((tdt.lengths == t).all()):
                leaves = {k: v.reshape((b * t, *v.shape[2:])) for k, v in tdt.items()}
                traj = np.repeat(np.arange(b, dtype=np.int64), t)
                steps = np.tile(np.arange(t, dtype=np.int64), b)
            else:
                mask = tdt.mask()
                leaves = {k: v[mask] for k, v in tdt.items()}
                traj, steps = (x.astype(np.int64) for x in np.nonzero(mask))
            arrays = [pa.array(traj), pa.array(steps), *(_column(v) for v in leaves.values())]
            rb = pa.RecordBatch.from_arrays(arrays, names=["trajectory", "t", *leaves])
            if writer is None:
                writer = pa.ipc.new_file(sink, rb.schema)
            writer.write_batch(rb)
        if writer is not None:
            writer.close()


def write_numpy_save(batches: list[Trajectories], out: Path) -> None:
    out.mkdir()
    for i, batch in enumerate(batches):
        for j, (_, leaf) in enumerate(batch.trajectories.items()):
            np.save(out / f"{i}-{j}.npy", leaf)
        np.save(out / f"{i}-lengths.npy", batch.lengths)


WRITERS: dict[str, Callable[[list[Trajectories], Path], None]] = {
    "TrajectoryWriter": write_trajectory_writer,
    "pyarrow IPC": write_raw_ipc,
    "numpy.save": write_numpy_save,
}


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_writes(workloads: list[Workload], root: Path, repeats: int) -> list[float]:
    print("| data | MB | TrajectoryWriter MB/s | pyarrow IPC MB/s | numpy.save MB/s "
          "| TrajectoryWriter / pyarrow IPC |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    ratios = []
    for work in workloads:
        times: dict[str, list[float]] = {name: [] for name in WRITERS}
        names = list(WRITERS)
        for rep in range(repeats + 1):  # the first round warms up and is dropped
            for name in names[rep % 3 :] + names[: rep % 3]:  # rotate who goes first
                out = root / f"w-{rep}-{name.replace(' ', '_')}"
                write = WRITERS[name]
                elapsed = timed(lambda: write(work.batches, out))  # noqa: B023  # called now
                shutil.rmtree(out)
                if rep:
                    times[name].append(elapsed)
        ratio = statistics.median(
            r / w for w, r in zip(times["TrajectoryWriter"], times["pyarrow IPC"], strict=True))
        speeds = {n: work.mbytes / statistics.median(t) for n, t in times.items()}
        print(f"| {work.name} | {work.mbytes:.0f} | {speeds['TrajectoryWriter']:.0f} | "
              f"{speeds['pyarrow IPC']:.0f} | {speeds['numpy.save']:.0f} | {ratio:.2f} |")
        if "full" in work.name:
            ratios.append(ratio)
    return ratios


# ---------------------------------------------------------------------- reads
def bench_reads(sizes_mb: list[int], root: Path, repeats: int) -> None:
    print("\n| file | MB | read_trajectories ms | numpy.load ms | zero-copy |")
    print("| --- | ---: | ---: | ---: | :---: |")
    frame_bytes = 4 * 84 * 84
    for size in sizes_mb:
        b = max(1, round(size * MB / (128 * frame_bytes)))
        batch = make_batches(1, b, 128, {"observation/frame": ((4, 84, 84), "uint8"),
                                         "reward": ((), "float32")}, full=True)
        _read_row(f"1 write, full, {b}x128 frames", batch, root, repeats)
    batches = make_batches(40, 64, 256, VECTOR, full=False)
    _read_row("40 writes, variable lengths", batches, root, repeats)


def _read_row(label: str, batches: list[Trajectories], root: Path, repeats: int) -> None:
    out = root / "r"
    write_trajectory_writer(batches, out)
    write_numpy_save(batches, root / "npy")
    files = sorted((root / "npy").iterdir())
    mbytes = Workload(label, batches).mbytes
    back = read_trajectories(out)
    zero_copy = not back.trajectories[next(iter(back.trajectories.keys()))].flags.writeable
    del back
    reads = [timed(lambda: read_trajectories(out)) for _ in range(repeats)]
    loads = [timed(lambda: [np.load(f) for f in files]) for _ in range(repeats)]
    print(f"| {label} | {mbytes:.0f} | {statistics.median(reads) * 1e3:.2f} | "
          f"{statistics.median(loads) * 1e3:.1f} | {'yes' if zero_copy else 'no'} |")
    shutil.rmtree(out)
    shutil.rmtree(root / "npy")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--check", action="store_true", help=f"exit 1 if a ratio < {BAR}")
    parser.add_argument("--dir", type=Path, default=None, help="where to write (a temp dir)")
    args = parser.parse_args(argv)
    scale = 8 if args.quick else 1
    workloads = [
        Workload("vector obs, full", make_batches(40 // scale, 64, 256, VECTOR, full=True)),
        Workload("vector obs, variable lengths",
                 make_batches(40 // scale, 64, 256, VECTOR, full=False)),
        Workload("84x84x4 uint8 frames, full", make_batches(4, 16 // scale, 128, FRAMES, True)),
        Workload("84x84x4 uint8 frames, variable lengths",
                 make_batches(4, 16 // scale, 128, FRAMES, full=False)),
    ]
    sizes = [4, 16] if args.quick else [16, 64, 256, 1024]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, "
          f"{platform.python_implementation()} {platform.python_version()}, "
          f"numpy {np.__version__}, pyarrow {pa.__version__}")
    print(f"medians of {args.repeats} repeats\n")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        ratios = bench_writes(workloads, Path(tmp), args.repeats)
        bench_reads(sizes, Path(tmp), max(args.repeats, 5))
    worst = min(ratios)
    print(f"\nTrajectoryWriter / pyarrow IPC on full sequences: worst {worst:.2f} (bar >= {BAR})")
    return 1 if args.check and worst < BAR else 0


if __name__ == "__main__":
    raise SystemExit(main())
