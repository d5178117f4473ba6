"""Benchmark: GymVecEnv overhead against a bare loop over the same gymnasium envs.

Steps ``--n-envs`` CartPole-v1 envs for ``--steps`` steps, with the same precomputed random
actions, (a) through ``GymVecEnv`` in auto-reset mode and (b) in a bare Python loop that calls
``env.step`` on each env and ``env.reset()`` when its episode ends. Both run in the same
process, interleaved, ``--repeats`` times; the table shows medians (microseconds per
vectorized step) and the ratio. Bar (issue 3): ratio <= 1.3. Also (c) ``GymVecEnv.step_into``
writing into arrays allocated once (what the batchers use).

Then (issue 14) ``GymVectorVecEnv`` over gymnasium's vectorized CartPole-v1
(``vectorization_mode="vector_entry_point"``, ``--vector-envs`` envs) with a small torch MLP
policy (4-64-64-2, tanh, an action drawn from the softmax), against a bare loop over the same
vector env and policy: (d) the bare loop, (e) ``GymVectorVecEnv.step_into`` (what the
batchers use), (f) ``GymVectorVecEnv.step``, (g) a floor: the bare loop plus the least any
adapter must do per step (see ``vector_floor``). Bar: (e) / (d) <= 1.15.

Usage: ``python tools/bench/agents.py [--n-envs 16] [--steps 2000] [--repeats 7] [--check]
[--vector-envs 256] [--vector-steps 1000]``
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

from rlstructures.agents import GymVecEnv, GymVectorVecEnv
from rlstructures.dicttensor import DictTensor

BAR = 1.3
VECTOR_BAR = 1.15


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


# ---------------------------------------------------------------------- vector envs (issue 14)
def make_policy() -> Any:
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(4, 64),
        torch.nn.Tanh(),
        torch.nn.Linear(64, 64),
        torch.nn.Tanh(),
        torch.nn.Linear(64, 2),
    )


def act(policy: Any, obs: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
    import torch

    with torch.no_grad():
        probs = torch.softmax(policy(torch.from_numpy(obs)), dim=-1)
        return torch.multinomial(probs, 1)[:, 0].numpy()


def make_vector(n_envs: int) -> Any:
    return gym.make_vec("CartPole-v1", num_envs=n_envs, vectorization_mode="vector_entry_point")


def vector_bare(n_envs: int, steps: int) -> tuple[float, int]:
    """(CPU seconds, transitions): NEXT_STEP reset steps are not transitions."""
    policy, venv = make_policy(), make_vector(n_envs)
    obs, _ = venv.reset(seed=0)
    resetting = np.zeros(n_envs, np.bool_)
    transitions = 0
    start = time.process_time()
    for _ in range(steps):
        obs, _reward, terminated, truncated, _info = venv.step(act(policy, obs))
        transitions += n_envs - int(resetting.sum())  # counting costs ~1 us per step
        resetting = terminated | truncated
    elapsed = time.process_time() - start
    venv.close()
    return elapsed, transitions


def vector_bare_c_order(n_envs: int, steps: int) -> tuple[float, int]:
    """The bare loop with the observations copied into one C-ordered array, as a rollout
    buffer or ``torch.Tensor(obs)`` does: the vectorized CartPole returns a Fortran-ordered
    ``[n, 4]`` array (``state.T``), on which this policy runs ~10 us faster."""
    policy, venv = make_policy(), make_vector(n_envs)
    obs, _ = venv.reset(seed=0)
    frame = np.ascontiguousarray(obs)
    resetting = np.zeros(n_envs, np.bool_)
    transitions = 0
    start = time.process_time()
    for _ in range(steps):
        obs, _reward, terminated, truncated, _info = venv.step(act(policy, frame))
        frame[...] = obs
        transitions += n_envs - int(resetting.sum())
        resetting = terminated | truncated
    elapsed = time.process_time() - start
    venv.close()
    return elapsed, transitions


def vector_step_into(n_envs: int, steps: int) -> tuple[float, int]:
    policy = make_policy()
    env = GymVectorVecEnv(make_vector(n_envs), seed=0, auto_reset=True)
    obs, _ = env.reset()
    out, final = obs.clone().to_dict(), obs.clone().to_dict()
    frame = out["frame"]
    transitions = 0
    start = time.process_time()
    for _ in range(steps):
        action = DictTensor({"action": act(policy, frame)}, batch_shape=(n_envs,))
        env.step_into(action, out, final)
        transitions += n_envs - len(env.reset_step_ids)
    elapsed = time.process_time() - start
    env.close()
    return elapsed, transitions


def vector_floor(n_envs: int, steps: int) -> tuple[float, int]:
    """The bare loop plus the least any adapter must do per step (not a VecEnv): wrap the
    agent's action in a DictTensor, check it (the Discrete bound, one reduction), write the
    observation, reward, terminations and truncations into slot t + 1 of arrays allocated
    once, find the ended envs and keep their final observations. No flags, no ``initial_state``
    or ``last_action``, no reset-step bookkeeping: a lower bound for (e), to tell the
    adapter's own cost from what interleaving any numpy work with the policy costs."""
    policy, venv = make_policy(), make_vector(n_envs)
    obs, _ = venv.reset(seed=0)
    slots = 101
    frames = np.zeros((slots, n_envs, 4), np.float32)
    rewards = np.zeros((slots, n_envs), np.float32)
    terms = np.zeros((slots, n_envs), np.bool_)
    truncs = np.zeros((slots, n_envs), np.bool_)
    final = np.zeros((n_envs, 4), np.float32)
    frames[0] = obs
    transitions = skipped = 0  # the envs whose next step is a NEXT_STEP reset step
    start = time.process_time()
    for i in range(steps):
        t = i % (slots - 1)
        action = DictTensor({"action": act(policy, frames[t])}, batch_shape=(n_envs,))
        values = action["action"]
        if values.view(np.uint64).max() > 1:
            raise ValueError("an action outside Discrete(2)")
        obs, reward, terminated, truncated, _info = venv.step(values)
        frames[t + 1], rewards[t + 1] = obs, reward
        terms[t + 1], truncs[t + 1] = terminated, truncated
        ended = np.logical_or(terminated, truncated).nonzero()[0]
        if len(ended):
            final[ended] = obs[ended]
        if t == slots - 2:
            frames[0] = frames[t + 1]
        transitions += n_envs - skipped
        skipped = len(ended)
    elapsed = time.process_time() - start
    venv.close()
    return elapsed, transitions


def vector_step(n_envs: int, steps: int) -> tuple[float, int]:
    policy = make_policy()
    env = GymVectorVecEnv(make_vector(n_envs), seed=0, auto_reset=True)
    obs, _ = env.reset()
    transitions = 0
    start = time.process_time()
    for _ in range(steps):
        action = act(policy, np.ascontiguousarray(obs["frame"]))
        (_, stepped), (obs, _) = env.step(DictTensor({"action": action}))
        transitions += len(stepped)  # envs sitting out a reset step are not among them
    elapsed = time.process_time() - start
    env.close()
    return elapsed, transitions


def vector_main(n_envs: int, steps: int, repeats: int) -> float:
    """Runs and prints the vector env table; returns the step_into / bare loop ratio."""
    runners: dict[str, Callable[[int, int], tuple[float, int]]] = {
        "bare loop (vector env + policy)": vector_bare,
        "bare loop, C-ordered observations": vector_bare_c_order,
        "GymVectorVecEnv.step_into": vector_step_into,
        "GymVectorVecEnv.step": vector_step,
        "floor: bare loop + the least any adapter does": vector_floor,
    }
    for run in runners.values():  # warm-up
        run(n_envs, steps // 10)
    times: dict[str, list[float]] = {name: [] for name in runners}
    moved: dict[str, int] = {}
    for _ in range(repeats):
        for name, run in runners.items():
            elapsed, transitions = run(n_envs, steps)
            times[name].append(elapsed)
            moved[name] = transitions
    bare = "bare loop (vector env + policy)"
    print(f"\n{n_envs} x CartPole-v1 (gymnasium vector_entry_point) + MLP 4-64-64-2 policy, "
          f"{steps} steps, medians of {repeats} repeats\n")
    print("| loop | us per vectorized step | vector steps/s | transitions/s |")
    print("| --- | ---: | ---: | ---: |")
    for name, t in times.items():
        median = statistics.median(t)
        print(f"| {name} | {median / steps * 1e6:.1f} | {n_envs * steps / median:,.0f} | "
              f"{moved[name] / median:,.0f} |")
    ratio = statistics.median(
        v / b for v, b in zip(times["GymVectorVecEnv.step_into"], times[bare], strict=True)
    )
    step = statistics.median(
        v / b for v, b in zip(times["GymVectorVecEnv.step"], times[bare], strict=True)
    )
    print(f"\nGymVectorVecEnv.step_into / bare loop = {ratio:.3f} (CPU time per vectorized "
          f"step, median of per-repeat ratios; bar: <= {VECTOR_BAR}). Transitions exclude the "
          "NEXT_STEP reset steps (the step after an end, whose action the env ignores).")
    c_order = statistics.median(
        v / b
        for v, b in zip(
            times["GymVectorVecEnv.step_into"], times["bare loop, C-ordered observations"],
            strict=True,
        )
    )
    print(f"GymVectorVecEnv.step / bare loop = {step:.3f}")
    floor = statistics.median(
        v / b
        for v, b in zip(
            times["floor: bare loop + the least any adapter does"], times[bare], strict=True
        )
    )
    print(f"floor / bare loop = {floor:.3f} (what any numpy work between policy calls costs: "
          "the adapter's own share is step_into's ratio minus this)")
    print(f"GymVectorVecEnv.step_into / bare loop with C-ordered observations = {c_order:.3f} "
          "(the same policy input layout: the adapter's own work)")
    return ratio


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n-envs", type=int, default=16)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--check", action="store_true", help="exit 1 if a ratio is over its bar")
    parser.add_argument("--vector-envs", type=int, default=256)
    parser.add_argument("--vector-steps", type=int, default=1000)
    parser.add_argument("--skip-vector", action="store_true", help="only the GymVecEnv table")
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
    vector = 0.0
    if not args.skip_vector:
        vector = vector_main(args.vector_envs, args.vector_steps, args.repeats)
    return 1 if args.check and (ratio > BAR or vector > VECTOR_BAR) else 0


if __name__ == "__main__":
    raise SystemExit(main())
