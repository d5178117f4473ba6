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

With ``--torchrl`` (the ``bench`` extra), TorchRL's ``MultiSyncCollector`` too, in the same
alternating rounds: ``--workers`` workers, each a ``SerialEnv`` of ``--envs`` ``GymEnv``
CartPole-v1, ``frames_per_batch`` the same steps per collection, one torch thread per
worker, the same torch modules sampling from the softmax (one-hot actions, as its GymEnv
expects); the collector is built with ``tools/bench/batchers.py``'s helpers. The transformer
gets the last 8 observations from ``UnsqueezeTransform`` + ``CatFrames(N=8, dim=-2)``: 8
tokens at every step, the first observation of an episode repeated before it (CatFrames'
``padding="same"``). Our ``history`` is not padded: it is the collection's earlier steps,
across episode boundaries (auto-reset), so the window has 1..7 tokens at the first 7 steps
of each collection (7.72 on average over 100 steps, against TorchRL's 8).

Then memory: a 50M-parameter MLP (4-5000-5000-5000-2, float32: 200 MB), total resident
memory of the owner and its workers after one collection, as the sum of their PSS
(proportional set size, ``/proc/<pid>/smaps_rollup``: shared pages counted once overall).

Run: ``python tools/bench/inference_batchers.py [--envs 32] [--policies small large
transformer] [--torchrl] [--memory]``; ``tools/bench/batchers.py --inference`` runs it too.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
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


def rates(run: Callable[[], int], repeats: int) -> list[float]:
    """Steps per second of ``repeats`` calls of ``run`` (returns the steps done), after one."""
    run()  # warm-up
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        steps = run()
        out.append(steps / (time.perf_counter() - t0))
    return out


def torchrl_peer() -> Any:
    """``tools/bench/batchers.py`` (its TorchRL helpers), or None when torchrl is absent."""
    try:
        importlib.import_module("torchrl.collectors")
    except ImportError as e:
        print(f"TorchRL left out: it does not import ({e}); install the bench extra (make bench)")
        return None
    return importlib.import_module("batchers")


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
    kinds: list[str],
    workers: int,
    n_envs: int,
    timesteps: int,
    repeats: int,
    rounds: int,
    torchrl: bool = False,
) -> None:
    peer = torchrl_peer() if torchrl else None
    print(
        f"\n{workers} workers x {n_envs} envs, {timesteps} steps per collection; median of "
        f"{repeats * rounds} collections ({rounds} alternating rounds of {repeats})"
    )
    head = f"{'policy':12s} {'MultiProcess':>13s} {'Inference':>11s} {'ratio':>7s}  {'bar':14s}"
    if peer is not None:
        head += f" {'TorchRL':>8s} {'MP/TorchRL':>11s} {'Inf/TorchRL':>12s}"
    print(head.rstrip())
    bars = {"small": 0.8, "large": 1.0, "transformer": 1.0}
    for kind in kinds:
        contenders: dict[str, Callable[[], int]] = {}
        closers: list[Callable[[], None]] = []
        runs: dict[str, list[float]] = {}
        try:
            for name, cls in (("mp", MultiProcessBatcher), ("inf", InferenceBatcher)):
                b = build(cls, kind, workers, n_envs, timesteps)
                closers.append(b.close)
                contenders[name] = functools.partial(collect, b)
            if peer is not None:
                net = policies().make_policy(kind)  # the module PolicyAgent builds
                window = policies().WINDOW if kind == "transformer" else 0
                c = peer.torchrl_collector(n_envs, timesteps, net, window, workers)
                closers.append(c.close)
                contenders["torchrl"] = c.run
            runs = {k: [] for k in contenders}
            for _ in range(rounds):
                for name, run in contenders.items():
                    runs[name] += rates(run, repeats)
        finally:
            for close in closers:
                close()
        rate = {k: statistics.median(v) for k, v in runs.items()}
        ratio = rate["inf"] / rate["mp"]
        bar = bars.get(kind, float("nan"))
        verdict = f">= {bar} {'met' if ratio >= bar else 'NOT met'}"
        line = f"{kind:12s} {rate['mp']:13.0f} {rate['inf']:11.0f} {ratio:7.2f}  {verdict:14s}"
        if "torchrl" in rate:
            trl = rate["torchrl"]
            line += f" {trl:8.0f} {rate['mp'] / trl:11.2f} {rate['inf'] / trl:12.2f}"
        print(line)


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
    parser.add_argument(
        "--torchrl",
        action="store_true",
        help="also TorchRL's MultiSyncCollector on every policy (the bench extra)",
    )
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
        speed(
            args.policies,
            args.workers,
            args.envs,
            args.timesteps,
            args.repeats,
            args.rounds,
            args.torchrl,
        )
    if args.memory:
        memory(args.workers, args.envs, args.timesteps)


if __name__ == "__main__":
    # OpenMP threads that spin after a parallel region would take the cores the workers
    # step on: set before torch is imported (the default unless the caller set it)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    main()
    # Every contender is closed by now, but torchrl 0.14's collector can leave a
    # multiprocessing queue feeder thread that blocks interpreter exit: leave at once.
    sys.stdout.flush()
    os._exit(0)
