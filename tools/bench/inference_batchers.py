"""InferenceBatcher against MultiProcessBatcher: the same envs and policy, one run.

CartPole-v1 (GymVecEnv, auto-reset), ``--workers`` workers x ``--envs`` envs, ``--timesteps``
steps per collection. Three policies, an action sampled from the softmax
(``torch.multinomial``):

* ``small MLP``: 4-64-64-2, tanh;
* ``large MLP``: 4-1024-1024-2, tanh;
* ``transformer``: attends over the last 8 observations of the slice through ``history``
  (a linear embedding to 64, one ``TransformerEncoderLayer`` of 4 heads and a 128-wide
  feed-forward, the last token to 2 logits).

Env steps per second, median of the timed collections; the two batchers are built once
per policy and measured in ``--rounds`` alternating blocks (one warm-up and ``--repeats``
timed collections each), the ratio taken from the same run. MultiProcessBatcher's workers
run one torch thread each (its default); this process ``--owner-threads`` (2: while
InferenceBatcher's agent call runs the workers wait, so it has both cores), with
``OMP_WAIT_POLICY=PASSIVE`` so that idle OpenMP threads sleep instead of spinning on the
cores the workers need.

Then memory: a 50M-parameter MLP (4-5000-5000-5000-2, float32: 200 MB), total resident
memory of the owner and its workers after one collection, as the sum of their PSS
(proportional set size, ``/proc/<pid>/smaps_rollup``: shared pages counted once overall).

Run: ``python tools/bench/inference_batchers.py [--envs 32] [--policies small large
transformer] [--memory]``; ``tools/bench/batchers.py --inference`` runs it too.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import os
import platform
import statistics
import time
from typing import Any

import numpy as np

from rlstructures.agents import GymVecEnv
from rlstructures.batchers import Batcher, InferenceBatcher, MultiProcessBatcher

ENV_ID = "CartPole-v1"


def policies() -> Any:
    """The sibling module holding the torch policies (imported late: see its docstring)."""
    return importlib.import_module("inference_policies")


def build(cls: Any, kind: str, workers: int, n_envs: int, timesteps: int) -> Batcher:
    b: Batcher = cls(
        functools.partial(policies().PolicyAgent, kind),
        functools.partial(GymVecEnv, ENV_ID, n_envs, auto_reset=True),  # make_env(seed)
        n_timesteps=timesteps,
        seeds=[1000 * w for w in range(workers)],
    )
    b.reset()
    return b


def collect(b: Batcher) -> int:
    b.execute()
    trajectories, _ = b.get()
    return int(trajectories.lengths.sum())


def rates(b: Batcher, repeats: int) -> list[float]:
    collect(b)  # warm-up
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        steps = collect(b)
        out.append(steps / (time.perf_counter() - t0))
    return out


def pss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    raise RuntimeError(f"no Pss in /proc/{pid}/smaps_rollup")


def total_pss_mib(b: Any) -> tuple[float, float]:
    """(owner, workers) PSS in MiB."""
    workers = sum(pss_kib(w.process.pid) for w in b._workers)
    return pss_kib(os.getpid()) / 1024, workers / 1024


def speed(
    policies: list[str], workers: int, n_envs: int, timesteps: int, repeats: int, rounds: int
) -> None:
    print(
        f"\n{workers} workers x {n_envs} envs, {timesteps} steps per collection; median of "
        f"{repeats * rounds} collections ({rounds} alternating rounds of {repeats})"
    )
    print(f"{'policy':12s} {'MultiProcess':>13s} {'Inference':>11s} {'ratio':>7s}  bar")
    bars = {"small": 0.8, "large": 1.0, "transformer": 1.0}
    for kind in policies:
        contenders = {
            "mp": build(MultiProcessBatcher, kind, workers, n_envs, timesteps),
            "inf": build(InferenceBatcher, kind, workers, n_envs, timesteps),
        }
        runs: dict[str, list[float]] = {k: [] for k in contenders}
        try:
            for _ in range(rounds):
                for name, b in contenders.items():
                    runs[name] += rates(b, repeats)
        finally:
            for b in contenders.values():
                b.close()
        mp_rate, inf_rate = (statistics.median(runs[k]) for k in ("mp", "inf"))
        ratio = inf_rate / mp_rate
        bar = bars.get(kind, float("nan"))
        print(
            f"{kind:12s} {mp_rate:13.0f} {inf_rate:11.0f} {ratio:7.2f}  >= {bar} "
            f"{'met' if ratio >= bar else 'NOT met'}"
        )


def memory(workers: int, n_envs: int, timesteps: int) -> None:
    params = sum(p.numel() for p in policies().make_policy("50M").parameters())
    print(
        f"\nmemory, {params / 1e6:.1f}M-parameter MLP, {workers} workers x {n_envs} envs (PSS, MiB)"
    )
    print(f"{'batcher':20s} {'owner':>8s} {'workers':>8s} {'total':>8s}")
    totals = {}
    for cls in (MultiProcessBatcher, InferenceBatcher):
        b = build(cls, "50M", workers, n_envs, timesteps)
        try:
            collect(b)
            owner, work = total_pss_mib(b)
        finally:
            b.close()
        totals[cls.__name__] = owner + work
        print(f"{cls.__name__:20s} {owner:8.0f} {work:8.0f} {owner + work:8.0f}")
    ratio = totals["InferenceBatcher"] / totals["MultiProcessBatcher"]
    print(
        f"InferenceBatcher / MultiProcessBatcher: {ratio:.2f} "
        f"(bar <= 0.6: {'met' if ratio <= 0.6 else 'NOT met'})"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--envs", type=int, default=32, help="envs per worker")
    parser.add_argument("--timesteps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--policies", nargs="*", default=["small", "large", "transformer"])
    parser.add_argument("--memory", action="store_true", help="also the 50M-parameter memory check")
    parser.add_argument(
        "--owner-threads",
        type=int,
        default=2,
        help="torch threads of this process (InferenceBatcher's agent calls run here while "
        "the workers wait; MultiProcessBatcher's workers keep 1 each)",
    )
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.owner_threads)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, torch {torch.__version__}, numpy {np.__version__}; "
        f"owner torch threads {args.owner_threads}, OMP_WAIT_POLICY="
        f"{os.environ.get('OMP_WAIT_POLICY')}"
    )
    if args.policies:
        speed(args.policies, args.workers, args.envs, args.timesteps, args.repeats, args.rounds)
    if args.memory:
        memory(args.workers, args.envs, args.timesteps)


if __name__ == "__main__":
    # OpenMP threads that spin after a parallel region would take the cores the workers
    # step on: set before torch is imported (the default unless the caller set it)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    main()
