"""Collection throughput of the batchers against the 2-core limit and peer libraries.

CartPole-v1, one torch MLP policy (4-64-64-2, tanh, an action sampled from the softmax
with ``torch.multinomial``), the same in every contender. Env steps per second, median of
the timed collections of ``--timesteps`` steps. The bare loop, both batchers and
SyncVectorEnv are built once and measured in ``--rounds`` alternating blocks (one warm-up
and ``--repeats`` timed collections each), so that a drift of the machine's speed during
the run hits every one of them alike; the multi-process peers, 10x slower, are measured in
one block each:

* ``bare loop``: one process steps N gymnasium envs in a Python loop with one batched
  policy call per step; twice its rate is the 2-core limit of the machine.
* ``LocalBatcher`` / ``MultiProcessBatcher``: 2 workers x N envs (GymVecEnv, auto-reset).
* ``RayBatcher``: 2 actors x N envs on a local Ray (2 CPUs, loopback only, started for the
  run: its idle daemons run during every contender's blocks); its per-collection overhead is
  its median time per collection minus MultiProcessBatcher's (``--skip-ray``: leave it out).
* gymnasium ``SyncVectorEnv`` and ``AsyncVectorEnv(shared_memory=True)`` with 2N envs,
  policy batched in the main process.
* stable-baselines3 ``SubprocVecEnv`` (2N envs) and TorchRL ``MultiSyncCollector`` (2 workers
  x N envs) when the ``bench`` extra is installed (``make bench``).

Then natively vectorized envs through ``GymVectorVecEnv`` (``--vector-envs`` per worker; see
``tools/bench/vector_batchers.py``).

Run: ``python tools/bench/batchers.py [--envs 16 32] [--repeats 5] [--rounds 3]
[--vector-envs 256] [--skip-ray]``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import multiprocessing as mp
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlstructures.agents import Agent, GymVecEnv
from rlstructures.batchers import LocalBatcher, MultiProcessBatcher, RayBatcher
from rlstructures.dicttensor import DictTensor, TemporalDictTensor

ENV_ID = "CartPole-v1"
WORKERS = 2


def make_policy(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(4, 64),
        torch.nn.Tanh(),
        torch.nn.Linear(64, 64),
        torch.nn.Tanh(),
        torch.nn.Linear(64, 2),
    )


@torch.no_grad()
def act(policy: torch.nn.Module, obs: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    logits = policy(torch.from_numpy(np.asarray(obs, dtype=np.float32)))
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, 1)[:, 0].numpy()


class MLPAgent(Agent):
    """The benchmark policy as an rlstructures Agent (stateless)."""

    def __init__(self) -> None:
        self.policy = make_policy()

    def __call__(
        self,
        state: DictTensor,
        observation: DictTensor,
        agent_info: DictTensor,
        history: TemporalDictTensor | None = None,
    ) -> tuple[DictTensor, DictTensor]:
        action = act(self.policy, observation["frame"])
        return DictTensor({"action": action}, batch_shape=(len(action),)), state


@torch.no_grad()
def act_natural(policy: torch.nn.Module, obs: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """The README agent's computation in a bare loop: torch in, a Categorical sample out."""
    logits = policy(torch.from_numpy(obs))
    sample: torch.Tensor = torch.distributions.Categorical(logits=logits).sample()  # type: ignore[no-untyped-call]  # torch leaves it unannotated
    return sample.numpy()


class NaturalAgent(Agent):
    """The agent as the READMEs write one: torch views in, a Categorical sample, torch out.

    ``observation.torch()["frame"]`` (every observation key viewed as torch to read one),
    ``torch.distributions.Categorical`` (~100 us more per call than ``torch.multinomial``
    on the softmax) and a torch DictTensor returned: what the batcher converts and checks.
    """

    def __init__(self) -> None:
        self.policy = make_policy()

    def __call__(
        self,
        state: DictTensor,
        observation: DictTensor,
        agent_info: DictTensor,
        history: TemporalDictTensor | None = None,
    ) -> tuple[DictTensor, DictTensor]:
        with torch.no_grad():
            logits = self.policy(observation.torch()["frame"])
        action = torch.distributions.Categorical(logits=logits).sample()  # type: ignore[no-untyped-call]  # torch leaves it unannotated
        return DictTensor({"action": action}), state


# the policy of each agent, as the bare loops run it
AGENTS: dict[str, tuple[type[Agent], Callable[[torch.nn.Module, Any], Any]]] = {
    "mlp": (MLPAgent, act),
    "natural": (NaturalAgent, act_natural),
}


def make_env(seed: int, n_envs: int) -> GymVecEnv:
    return GymVecEnv(ENV_ID, n_envs, seed, auto_reset=True)


def timed_rates(run: Callable[[], int], repeats: int) -> list[float]:
    """Steps per second of ``repeats`` runs of ``run`` (returns steps done), after a warm-up."""
    run()  # warm-up
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        steps = run()
        rates.append(steps / (time.perf_counter() - t0))
    return rates


def median_rate(run: Callable[[], int], repeats: int) -> float:
    """Steps per second: median over ``repeats`` runs of ``run`` (returns steps done)."""
    return statistics.median(timed_rates(run, repeats))


# ---------------------------------------------------------------------- contenders
class Contender:
    """A contender built once: ``run()`` collects once and returns the env steps done."""

    def __init__(self, run: Callable[[], int], close: Callable[[], None]) -> None:
        self.run = run
        self.close = close


def bare_loop(n_envs: int, timesteps: int, agent: str = "mlp", seed: int = 0) -> Contender:
    """N gymnasium envs in a Python loop, one batched call of ``agent``'s policy per step."""
    torch.set_num_threads(1)
    policy, policy_act = make_policy(), AGENTS[agent][1]
    envs = [gym.make(ENV_ID) for _ in range(n_envs)]
    obs = np.stack([e.reset(seed=seed + k)[0] for k, e in enumerate(envs)])

    def run() -> int:
        for _ in range(timesteps):
            actions = policy_act(policy, obs)
            for k, env in enumerate(envs):
                o, _, term, trunc, _ = env.step(int(actions[k]))
                obs[k] = env.reset()[0] if term or trunc else o
        return n_envs * timesteps

    def close() -> None:
        for e in envs:
            e.close()

    return Contender(run, close)


def _bare_worker(conn: Connection, build: Callable[..., Any], seed: int) -> None:
    """One bare loop ``build(seed=seed)``, run on each "go" (anything but None) received.

    Sends back ``(env steps, transitions)``: a contender with a ``transitions`` attribute
    (vector envs that spend steps on resets) counts those, others count every step.
    """
    contender = build(seed=seed)
    conn.send("ready")
    while conn.recv() is not None:
        steps = contender.run()
        conn.send((steps, getattr(contender, "transitions", steps)))
    contender.close()


class ParallelBareLoops(Contender):
    """``WORKERS`` bare loops in as many processes, started together: the 2-core limit.

    Two loops side by side slow each other down (~0.95-0.97 of twice one loop here), so
    their summed rate, not twice one, is what the machine allows a batcher. ``run()``
    returns the env steps done by all; ``transitions`` is then how many of those were
    transitions (see ``_bare_worker``).

    Args:
        build: a picklable ``build(seed=...)`` of one loop, an object with ``run()`` and
            ``close()`` (a module-level function or class, or a ``functools.partial`` of
            one); worker ``w`` builds it with seed ``1000 * w``.
    """

    def __init__(self, build: Callable[..., Any]) -> None:
        ctx = mp.get_context("spawn")
        self.conns: list[Connection] = []
        self.procs: list[Any] = []
        for w in range(WORKERS):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_bare_worker, args=(child, build, 1000 * w), daemon=True)
            proc.start()
            child.close()
            self.conns.append(parent)
            self.procs.append(proc)
        for conn in self.conns:
            if conn.recv() != "ready":
                raise RuntimeError("a bare loop process did not start")
        self.transitions = 0
        super().__init__(self._run, self._close)

    def _run(self) -> int:
        for conn in self.conns:
            conn.send("go")
        done = [conn.recv() for conn in self.conns]
        self.transitions = sum(int(d[1]) for d in done)
        return sum(int(d[0]) for d in done)

    def _close(self) -> None:
        for conn in self.conns:
            conn.send(None)
        for proc in self.procs:
            proc.join(10)


def ours(cls: Any, n_envs: int, timesteps: int, agent: str = "mlp") -> Contender:
    env = functools.partial(make_env, n_envs=n_envs)
    seeds = list(range(0, WORKERS * 1000, 1000))
    b = cls(AGENTS[agent][0], env, n_timesteps=timesteps, seeds=seeds)
    b.reset()

    def run() -> int:
        b.execute()
        trajectories, _ = b.get()
        return int(trajectories.lengths.sum())

    return Contender(run, b.close)


def vector_env(venv: Any, obs: Any, timesteps: int) -> Contender:
    """A vector env stepped with the policy batched in this process."""
    torch.set_num_threads(1)
    policy = make_policy()

    def run() -> int:
        nonlocal obs
        for _ in range(timesteps):
            obs, *_ = venv.step(act(policy, obs))
        return int(venv.num_envs) * timesteps

    return Contender(run, venv.close)


def vector_env_rate(venv: Any, obs: Any, timesteps: int, repeats: int) -> float:
    """Rate of a vector env stepped with the policy batched in this process; closes it."""
    contender = vector_env(venv, obs, timesteps)
    try:
        return median_rate(contender.run, repeats)
    finally:
        contender.close()


def gym_vector(asynchronous: bool, n_envs: int, timesteps: int) -> Contender:
    fns = [functools.partial(gym.make, ENV_ID) for _ in range(WORKERS * n_envs)]
    venv: Any = (
        gym.vector.AsyncVectorEnv(fns, shared_memory=True)
        if asynchronous
        else gym.vector.SyncVectorEnv(fns)
    )
    obs, _ = venv.reset(seed=0)
    return vector_env(venv, obs, timesteps)


def sb3_subproc(n_envs: int, timesteps: int, repeats: int) -> float | None:
    try:
        from stable_baselines3.common.env_util import make_vec_env
        from stable_baselines3.common.vec_env import SubprocVecEnv
    except ImportError:
        return None
    venv = make_vec_env(
        ENV_ID,
        n_envs=WORKERS * n_envs,
        vec_env_cls=SubprocVecEnv,
        seed=0,
        vec_env_kwargs={"start_method": "spawn"},
    )
    return vector_env_rate(venv, venv.reset(), timesteps, repeats)


def torchrl_env(n_envs: int, window: int = 0) -> Any:
    """A SerialEnv of ``n_envs`` CartPole envs, one TorchRL collector worker's envs.

    With ``window`` > 0 it also writes ``"window"``: the last ``window`` observations of each
    env, ``[n_envs, window, 4]`` (``UnsqueezeTransform`` then ``CatFrames(N=window,
    dim=-2)``, which pads the start of each episode with its first observation).
    """
    from torchrl.envs import (
        CatFrames,
        Compose,
        GymEnv,
        SerialEnv,
        TransformedEnv,
        UnsqueezeTransform,
    )

    env = SerialEnv(n_envs, functools.partial(GymEnv, ENV_ID))
    if not window:
        return env
    frames = Compose(
        UnsqueezeTransform(-2, in_keys=["observation"], out_keys=["window"]),
        CatFrames(N=window, dim=-2, in_keys=["window"]),
    )
    return TransformedEnv(env, frames)


class TorchRLSampler(torch.nn.Module):
    """A policy network for TorchRL: samples from its softmax, one-hot as its GymEnv expects.

    Args:
        net: the network, observations to logits (None: this benchmark's ``make_policy()``).
    """

    def __init__(self, net: torch.nn.Module | None = None) -> None:
        super().__init__()
        self.net = make_policy() if net is None else net

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        probs = torch.softmax(self.net(obs), dim=-1)
        return torch.nn.functional.one_hot(torch.multinomial(probs, 1)[..., 0], 2)


def torchrl_policy(net: torch.nn.Module | None = None, in_key: str = "observation") -> Any:
    from tensordict.nn import TensorDictModule

    return TensorDictModule(TorchRLSampler(net), in_keys=[in_key], out_keys=["action"])


def torchrl_collector(
    n_envs: int,
    timesteps: int,
    net: torch.nn.Module | None = None,
    window: int = 0,
    workers: int = WORKERS,
) -> Contender | None:
    """TorchRL's MultiSyncCollector, ``workers`` x ``n_envs`` envs; None without torchrl.

    ``run()`` collects ``workers * n_envs * timesteps`` frames. The workers run one torch
    thread each, like MultiProcessBatcher's; this process keeps its thread count (TorchRL
    would lower it to the cores minus the workers while the collector lives).

    Args:
        net: the policy network (None: ``make_policy()``), fed ``"observation"`` or, with
            ``window`` > 0, the last ``window`` observations (see ``torchrl_env``).
    """
    try:
        import torchrl.collectors as collectors
    except ImportError:
        return None
    cls = getattr(collectors, "MultiSyncCollector", None) or collectors.MultiSyncDataCollector
    collector = cls(
        [functools.partial(torchrl_env, n_envs, window)] * workers,
        torchrl_policy(net, "window" if window else "observation"),
        frames_per_batch=workers * n_envs * timesteps,
        total_frames=-1,  # endless: as many collections as the caller times
        num_threads=torch.get_num_threads(),
        num_sub_threads=1,
    )
    it = iter(collector)

    def run() -> int:
        batch = next(it)
        return int(batch.numel())

    return Contender(run, collector.shutdown)


def torchrl_multisync(n_envs: int, timesteps: int, repeats: int) -> float | None:
    contender = torchrl_collector(n_envs, timesteps)
    return None if contender is None else block(contender, repeats)


# ---------------------------------------------------------------------- report
def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--envs", type=int, nargs="*", default=[16, 32], help="envs per worker")
    parser.add_argument("--timesteps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per block")
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternating blocks of the in-process contenders"
    )
    parser.add_argument("--skip-async", action="store_true", help="skip gymnasium AsyncVectorEnv")
    parser.add_argument("--skip-peers", action="store_true", help="skip Async, SB3, TorchRL")
    parser.add_argument("--skip-ray", action="store_true", help="skip RayBatcher (local Ray)")
    parser.add_argument(  # issue 14: tools/bench/vector_batchers.py
        "--vector-envs", type=int, default=256, help="vectorized CartPole envs per worker (0: skip)"
    )
    parser.add_argument(  # issue 13: tools/bench/inference_batchers.py
        "--inference",
        action="store_true",
        help="only InferenceBatcher against MultiProcessBatcher (3 policies, 50M memory; "
        "TorchRL's MultiSyncCollector too unless --skip-peers)",
    )
    args = parser.parse_args()
    if args.inference:  # a sibling script, in a process of its own: OMP_WAIT_POLICY must be
        # set before torch loads (see inference_batchers.py), and torch is loaded here
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "inference_batchers.py")
        options = ["--memory", "--repeats", str(args.repeats), "--rounds", str(args.rounds)]
        options += [] if args.skip_peers else ["--torchrl"]
        subprocess.run([sys.executable, script, *options], check=True)
        return
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, torch {torch.__version__}, gymnasium {gym.__version__}"
    )
    with contextlib.ExitStack() as stack:
        if not args.skip_ray:  # one local Ray for every table
            stack.enter_context(importlib.import_module("ray_local").local_ray(WORKERS))
        for n in args.envs:
            per_env_table(n, args.timesteps, args.repeats, args.rounds, args)
    if args.vector_envs:  # natively vectorized envs through GymVectorVecEnv (a sibling script)
        vector: Any = importlib.import_module("vector_batchers")
        async_envs = 0 if args.skip_async or args.skip_peers else 32
        vector.vector_main(args.vector_envs, args.timesteps, args.repeats, args.rounds, async_envs)


def per_env_table(n: int, t: int, r: int, rounds: int, args: argparse.Namespace) -> None:
    """Measures and prints the table of ``WORKERS`` x ``n`` per-env CartPole envs."""
    one, at_once = "bare loop, 1 process", "2 bare loops at once"
    mp_nat, at_once_nat = "MultiProcessBatcher, README agent", "2 bare loops at once, README agent"
    alternating: list[tuple[str, Contender]] = []
    try:
        alternating.append((one, bare_loop(n, t)))
        alternating.append((at_once, ParallelBareLoops(functools.partial(bare_loop, n, t))))
        alternating.append(("MultiProcessBatcher", ours(MultiProcessBatcher, n, t)))
        alternating.append(("LocalBatcher", ours(LocalBatcher, n, t)))
        alternating.append(("gymnasium SyncVectorEnv", gym_vector(False, n, t)))
        bare_nat = functools.partial(bare_loop, n, t, "natural")
        alternating.append((at_once_nat, ParallelBareLoops(bare_nat)))
        alternating.append((mp_nat, ours(MultiProcessBatcher, n, t, "natural")))
        if not args.skip_ray:
            alternating.append(("RayBatcher", ours(RayBatcher, n, t)))
        runs: dict[str, list[float]] = {name: [] for name, _ in alternating}
        for _ in range(rounds):
            for name, contender in alternating:
                runs[name] += timed_rates(contender.run, r)
    finally:
        for _, contender in alternating:
            contender.close()
    rates: dict[str, float | None] = {name: statistics.median(v) for name, v in runs.items()}
    if not (args.skip_async or args.skip_peers):
        rates["gymnasium AsyncVectorEnv(shm)"] = block(gym_vector(True, n, t), r)
    if not args.skip_peers:
        rates["SB3 SubprocVecEnv"] = sb3_subproc(n, t, r)
        rates["TorchRL MultiSyncCollector"] = torchrl_multisync(n, t, r)
    twice_one = WORKERS * (rates[one] or float("nan"))
    peers = [v for name, v in rates.items() if "gymnasium" in name or name[:3] in ("SB3", "Tor")]
    best_peer = max((v for v in peers if v is not None), default=float("nan"))
    print(
        f"\n{WORKERS} workers x {n} envs, {t} steps per collection, median of {r * rounds} "
        f"({rounds} alternating rounds of {r}; multi-process peers: one block of {r}). The "
        "limit: 2 bare loops at once of the same policy (README agent: its own loops)"
    )
    print(
        f"{'contender':36s} {'steps/s':>10s} {'/ 2x1 loop':>11s} {'/ limit':>8s} "
        f"{'/ best peer':>12s}"
    )
    for name, rate in rates.items():
        if rate is None:
            print(f"{name:36s} {'(not installed: make bench)':>38s}")
            continue
        limit = rates[at_once_nat if "README" in name else at_once] or float("nan")
        print(
            f"{name:36s} {rate:10.0f} {rate / twice_one:11.2f} {rate / limit:8.3f} "
            f"{rate / best_peer:12.2f}"
        )
    for name, limit_name in (("MultiProcessBatcher", at_once), (mp_nat, at_once_nat)):
        # the ratio within each round (measured minutes apart at most): robust to drift
        per_round = [
            statistics.median(runs[name][i * r : (i + 1) * r])
            / statistics.median(runs[limit_name][i * r : (i + 1) * r])
            for i in range(rounds)
        ]
        print(
            f"{name} / {limit_name}, per round: "
            + ", ".join(f"{x:.3f}" for x in per_round)
            + f" (median {statistics.median(per_round):.3f})"
        )
    mp_rate = rates["MultiProcessBatcher"] or float("nan")
    overhead_us = (1 / (mp_rate / WORKERS) - 1 / (rates[one] or float("nan"))) * 1e6
    print(
        f"MultiProcessBatcher overhead per env step against the bare loop: {overhead_us:+.2f} us; "
        f"README agent / its limit: {(rates[mp_nat] or 0) / (rates[at_once_nat] or 1):.3f} "
        "(bars: >= 0.85 x 2x1 loop and >= 1.5 x best peer; README agent >= 0.88 (16 envs) and "
        ">= 0.92 (32 envs) x its limit)"
    )
    ray_rate = rates.get("RayBatcher")
    if ray_rate is not None:
        steps = WORKERS * n * t
        ray_ms, mp_ms = steps / ray_rate * 1e3, steps / mp_rate * 1e3
        print(
            f"RayBatcher: {ray_rate / mp_rate:.2f} x MultiProcessBatcher (bar >= 0.6); "
            f"per-collection overhead against it: {ray_ms - mp_ms:+.1f} ms ({ray_ms:.1f} ms "
            f"against {mp_ms:.1f} ms per collection of {steps} steps)"
        )


def block(contender: Contender, repeats: int) -> float:
    """Median rate of one block of ``repeats`` runs; closes the contender."""
    try:
        return median_rate(contender.run, repeats)
    finally:
        contender.close()


if __name__ == "__main__":
    main()
    # Every contender is closed by now, but torchrl 0.14's collector can leave a
    # multiprocessing queue feeder thread that blocks interpreter exit: leave at once.
    sys.stdout.flush()
    os._exit(0)
