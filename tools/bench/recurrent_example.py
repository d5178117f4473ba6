"""Recurrent PPO against memoryless PPO on CartPole-v1 with the velocities hidden.

Runs the example ``rlstructures.algos.examples.recurrent_ppo`` with its defaults (the same
step budget for both) once per seed and variant, each in a fresh process, and prints each
run's final evaluation (mean return of 16 greedy episodes, 500 at most), its wall time, and
the median over the seeds per variant. Variants alternate seed by seed so that a drift of
the machine's speed hits both alike.

Run: ``python tools/bench/recurrent_example.py [--seeds 0 1 2] [--variants gru memoryless]``
(about 30 s per GRU run and 18 s per memoryless run on a 2-core machine).
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time

FLAGS = {"gru": [], "memoryless": ["--no-memory"]}


def one_run(variant: str, seed: int, steps: int | None) -> tuple[float, float]:
    """``(final evaluation, seconds)`` of one run in a fresh interpreter."""
    with tempfile.TemporaryDirectory() as logdir:
        cmd = [sys.executable, "-m", "rlstructures.algos.examples.recurrent_ppo",
               "--seed", str(seed), "--logdir", logdir, *FLAGS[variant]]
        if steps is not None:
            cmd += ["--steps", str(steps)]
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        seconds = time.perf_counter() - start
    found = re.search(r"final evaluation \(16 greedy episodes\): ([0-9.]+)", done.stdout)
    if found is None:
        raise SystemExit(f"no final evaluation in the output of {cmd}:\n{done.stdout}")
    return float(found.group(1)), seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--variants", nargs="+", choices=sorted(FLAGS), default=["gru", "memoryless"]
    )
    parser.add_argument("--steps", type=int, default=None, help="default: the example's")
    args = parser.parse_args()
    results: dict[str, list[float]] = {v: [] for v in args.variants}
    for seed in args.seeds:
        for variant in args.variants:
            value, seconds = one_run(variant, seed, args.steps)
            results[variant].append(value)
            print(f"{variant:>10}  seed {seed}  final evaluation {value:6.1f}  ({seconds:5.1f} s)",
                  flush=True)
    for variant, values in results.items():
        print(f"{variant:>10}  median over seeds {args.seeds}: {statistics.median(values):6.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
