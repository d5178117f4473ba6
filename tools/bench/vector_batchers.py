"""Batchers over natively vectorized envs (issue 14): GymVectorVecEnv against the 2-core limit.

CartPole-v1 vectorized by gymnasium itself (``gymnasium.make_vec(...,
vectorization_mode="vector_entry_point")``, one numpy step for the whole batch), ``--vector-envs``
envs per worker, the benchmark's MLP policy (``batchers.py``). Env steps per second:

* ``2 bare loops, 2 processes at once``: in each of two processes, the vector env and the
  policy in a plain loop, both started together: the machine's real 2-core figure;
* ``MultiProcessBatcher`` (2 workers) and ``LocalBatcher`` over
  ``GymVectorVecEnv.from_id(..., vectorization_mode="vector_entry_point")``, auto-reset;
* ``MultiProcessBatcher`` over the per-env ``GymVecEnv`` (the same number of envs);
* gymnasium's ``AsyncVectorEnv`` (one process per env, so ``--async-envs`` of them) with the
  policy batched in the main process.

This vector env autoresets in NEXT_STEP mode: the step after an episode's end resets that env
and ignores its action. The batchers store no such reset step (it is no transition), so they
count transitions; the bare loops are shown both ways (vector env steps, and transitions,
i.e. without the reset steps), and the bar (>= 0.85 x the limit) compares transitions: the
median, over ``--rounds x --repeats`` runs of each contender in turn, of each batcher run's
rate over that of the bare loops run just before or after it.

Run: ``python tools/bench/batchers.py --envs`` (no per-env sizes) ``--vector-envs 256``, or
``python tools/bench/vector_batchers.py [--vector-envs 256] [--repeats 5] [--rounds 3]``.
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

import gymnasium as gym
import numpy as np
import torch

from rlstructures.agents import GymVectorVecEnv
from rlstructures.batchers import LocalBatcher, MultiProcessBatcher

# the rest of the benchmark (the policy, the per-env contenders), a sibling script
bench: Any = importlib.import_module("batchers")
WORKERS: int = bench.WORKERS
ENV_ID = "CartPole-v1"
BAR = 0.85


def make_vector_env(seed: int, n_envs: int) -> GymVectorVecEnv:
    return GymVectorVecEnv.from_id(
        ENV_ID, n_envs, seed, auto_reset=True, vectorization_mode="vector_entry_point"
    )


class VectorBareLoop:
    """One bare loop: the vector env and the policy in a plain loop (``build`` of
    ``bench.ParallelBareLoops``). ``run()`` returns the env steps done, after which
    ``transitions`` is how many were not NEXT_STEP reset steps."""

    def __init__(self, n_envs: int, timesteps: int, seed: int) -> None:
        torch.set_num_threads(1)
        self.n_envs, self.timesteps = n_envs, timesteps
        self.policy = bench.make_policy()
        self.venv = gym.make_vec(ENV_ID, num_envs=n_envs, vectorization_mode="vector_entry_point")
        self.obs, _ = self.venv.reset(seed=seed)
        self.resetting = np.zeros(n_envs, np.bool_)
        self.transitions = 0

    def run(self) -> int:
        transitions, n = 0, self.n_envs
        for _ in range(self.timesteps):
            self.obs, _reward, terminated, truncated, _info = self.venv.step(
                bench.act(self.policy, self.obs)
            )
            transitions += n - int(self.resetting.sum())
            self.resetting = terminated | truncated
        self.transitions = transitions
        return n * self.timesteps

    def close(self) -> None:
        self.venv.close()


def batcher(cls: Any, make: Any, n_envs: int, timesteps: int) -> Any:
    env = functools.partial(make, n_envs=n_envs)
    b = cls(bench.MLPAgent, env, n_timesteps=timesteps, seeds=list(range(0, WORKERS * 1000, 1000)))
    b.reset()

    def run() -> int:
        b.execute()
        trajectories, _ = b.get()
        return int(trajectories.lengths.sum())  # transitions: reset steps are not stored

    return bench.Contender(run, b.close)


def quartiles(values: list[float]) -> str:
    """The first and third quartiles of ``values``, as ``"q1-q3"``."""
    q1, _, q3 = statistics.quantiles(values, n=4) if len(values) > 1 else (values * 3)
    return f"{q1:.3f}-{q3:.3f}"


def vector_main(n_envs: int, timesteps: int, repeats: int, rounds: int, async_envs: int) -> float:
    """Runs and prints the table; returns MultiProcessBatcher / the limit (transitions)."""
    t, r = timesteps, repeats
    bare = bench.ParallelBareLoops(functools.partial(VectorBareLoop, n_envs, t))
    alternating: list[tuple[str, Any]] = [
        ("2 bare loops, 2 processes at once", bare),
        (
            "MultiProcessBatcher + GymVectorVecEnv",
            batcher(MultiProcessBatcher, make_vector_env, n_envs, t),
        ),
        ("LocalBatcher + GymVectorVecEnv", batcher(LocalBatcher, make_vector_env, n_envs, t)),
    ]
    runs: dict[str, list[float]] = {name: [] for name, _ in alternating}
    bare_transitions: list[float] = []
    # one run of each contender in turn (the order rotating), rounds x repeats times: the VM's
    # speed drifts by 10-25% within minutes, so the bar compares each batcher run with the
    # bare loops run right beside it (the median of those per-run ratios)
    ratios: list[float] = []
    try:
        for _, contender in alternating:
            contender.run()  # warm-up
        for i in range(rounds * r):
            order = alternating[i % len(alternating):] + alternating[: i % len(alternating)]
            for name, contender in order:
                t0 = time.perf_counter()
                steps = contender.run()
                elapsed = time.perf_counter() - t0
                runs[name].append(steps / elapsed)
                if contender is bare:  # each run's transitions, over the same wall time
                    bare_transitions.append(bare.transitions / elapsed)
            ratios.append(runs["MultiProcessBatcher + GymVectorVecEnv"][-1] / bare_transitions[-1])
    finally:
        for _, contender in alternating:
            contender.close()
    per_env = batcher(MultiProcessBatcher, bench.make_env, n_envs, t)
    try:
        per_env_rate = statistics.median(bench.timed_rates(per_env.run, max(2, r // 2)))
    finally:
        per_env.close()
    async_rate = None
    if async_envs:
        contender = bench.gym_vector(True, async_envs // WORKERS, t)
        try:
            async_rate = statistics.median(bench.timed_rates(contender.run, r))
        finally:
            contender.close()
    limit_steps = statistics.median(runs["2 bare loops, 2 processes at once"])
    limit = statistics.median(bare_transitions)
    mp_rate = statistics.median(runs["MultiProcessBatcher + GymVectorVecEnv"])
    rows = [
        ("2 bare loops: vector env steps/s", limit_steps),
        ("2 bare loops: transitions/s (the limit)", limit),
        ("MultiProcessBatcher + GymVectorVecEnv", mp_rate),
        (
            "LocalBatcher + GymVectorVecEnv",
            statistics.median(runs["LocalBatcher + GymVectorVecEnv"]),
        ),
        (f"MultiProcessBatcher + GymVecEnv ({n_envs} per-env)", per_env_rate),
        (f"gymnasium AsyncVectorEnv(shm), {async_envs} envs", async_rate),
    ]
    print(
        f"\n{WORKERS} workers x {n_envs} {ENV_ID} (vector_entry_point), {t} steps per "
        f"collection, medians of {r * rounds} runs each, one run of each in turn; per-env "
        "and AsyncVectorEnv: one block"
    )
    print(f"{'contender':46s} {'steps/s':>11s} {'/ limit':>8s}")
    for name, rate in rows:
        if rate is None:
            continue
        print(f"{name:46s} {rate:11,.0f} {rate / limit:8.2f}")
    ratio = statistics.median(ratios)
    print(
        f"MultiProcessBatcher / limit = {ratio:.3f} (transitions; median of {len(ratios)} "
        f"per-run ratios, quartiles {quartiles(ratios)}; bar >= {BAR}); "
        f"/ the bare loops' vector env steps = {mp_rate / limit_steps:.3f}; "
        f"{mp_rate / per_env_rate:.1f}x the per-env GymVecEnv"
        + (f", {mp_rate / async_rate:.1f}x AsyncVectorEnv" if async_rate else "")
    )
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--vector-envs", type=int, default=256, help="envs per worker")
    parser.add_argument("--timesteps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--async-envs", type=int, default=32, help="0: skip AsyncVectorEnv")
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, torch {torch.__version__}, gymnasium {gym.__version__}"
    )
    vector_main(args.vector_envs, args.timesteps, args.repeats, args.rounds, args.async_envs)


if __name__ == "__main__":
    main()
