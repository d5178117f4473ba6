"""Benchmark: GymVecEnv overhead against a bare loop over the same gymnasium envs.

Steps ``--n-envs`` CartPole-v1 envs for ``--steps`` steps, with the same precomputed random
actions, (a) through ``GymVecEnv`` in auto-reset mode and (b) in a bare Python loop that calls
``env.step`` on each env and ``env.reset()`` when its episode ends. Both run in the same
process, interleaved, ``--repeats`` times; the table shows medians (microseconds per
vectorized step) and the ratio. Bar (issue 3): ratio <= 1.3. Also (c) ``GymVecEnv.step_into``
writing into arrays allocated once (what the batchers use).

Usage: ``python tools/bench/agents.py [--n-envs 16] [--steps 2000] [--repeats 7] [--check]``
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import numpy.typing as npt

from rlstructures.agents import GymVecEnv
from rlstructures.dicttensor import DictTensor

BAR = 1.3


def make_env() -> Any:
    return gym.make("CartPole-v1")


def bare_loop(n_envs: int, actions: npt.NDArray[np.int64]) -> float:
    envs = [make_env() for _ in range(n_envs)]
    for k, env in enumerate(envs):
        env.reset(seed=k)
    start = time.process_time()
    for step in actions:  # numpy scalars, faster than Python ints for gymnasium's Discrete
        observations = []
        for env, a in zip(envs, step, strict=True):
            obs, _reward, terminated, truncated, _info = env.step(a)
            observations.append(obs)
            if terminated or truncated:
                env.reset()
    elapsed = time.process_time() - start
    for env in envs:
        env.close()
    return elapsed


def gym_vec_env(n_envs: int, actions: npt.NDArray[np.int64]) -> float:
    env = GymVecEnv(make_env, n_envs, seed=0, auto_reset=True)
    env.reset()
    per_step = [DictTensor({"action": a}) for a in actions]  # the agent's output
    start = time.process_time()
    for action in per_step:
        env.step(action)
    elapsed = time.process_time() - start
    env.close()
    return elapsed


def gym_vec_env_step_into(n_envs: int, actions: npt.NDArray[np.int64]) -> float:
    env = GymVecEnv(make_env, n_envs, seed=0, auto_reset=True)
    obs, _ = env.reset()
    out, final = obs.clone().to_dict(), obs.clone().to_dict()
    per_step = [DictTensor({"action": a}) for a in actions]
    start = time.process_time()
    for action in per_step:
        env.step_into(action, out, final)
    elapsed = time.process_time() - start
    env.close()
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n-envs", type=int, default=16)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--check", action="store_true", help=f"exit 1 if the ratio > {BAR}")
    args = parser.parse_args(argv)
    actions = np.random.default_rng(0).integers(0, 2, (args.steps, args.n_envs))
    runners: dict[str, Callable[[int, npt.NDArray[np.int64]], float]] = {
        "bare loop": bare_loop,
        "GymVecEnv": gym_vec_env,
        "GymVecEnv.step_into": gym_vec_env_step_into,
    }
    times: dict[str, list[float]] = {name: [] for name in runners}
    for run in runners.values():  # warm-up
        run(args.n_envs, actions[: args.steps // 10])
    for _ in range(args.repeats):
        for name, run in runners.items():
            times[name].append(run(args.n_envs, actions))
    medians = {name: statistics.median(t) for name, t in times.items()}
    # Each repeat runs both loops back to back: the median of the per-repeat ratios is robust
    # to other load on the machine drifting between repeats.
    ratio = statistics.median(v / b for v, b in zip(times["GymVecEnv"], times["bare loop"],
                                                     strict=True))
    print(f"machine: {platform.machine()}, {platform.python_implementation()} "
          f"{platform.python_version()}, numpy {np.__version__}, gymnasium {gym.__version__}")
    print(f"{args.n_envs} x CartPole-v1, {args.steps} steps, medians of {args.repeats} repeats\n")
    print("| loop | us per vectorized step | us per env step |")
    print("| --- | ---: | ---: |")
    for name, median in medians.items():
        per_step = median / args.steps * 1e6
        print(f"| {name} | {per_step:.1f} | {per_step / args.n_envs:.2f} |")
    into = statistics.median(
        v / b for v, b in zip(times["GymVecEnv.step_into"], times["bare loop"], strict=True)
    )
    print(f"\nGymVecEnv / bare loop = {ratio:.3f} (median of per-repeat ratios; bar: <= {BAR})")
    print(f"GymVecEnv.step_into / bare loop = {into:.3f}")
    return 1 if args.check and ratio > BAR else 0


if __name__ == "__main__":
    raise SystemExit(main())
