"""Time to solve: rlstructures-algos against stable-baselines3, same machine, same run.

For each case (algorithm, env, threshold, step budget) and seed, both sides run in a fresh
process, evaluate every 5000 env steps over 10 deterministic episodes, and stop at the first
evaluation whose mean return reaches the threshold (stable-baselines3's
``StopTrainingOnRewardThreshold``; ours ``--target-return``). The time of a run is the
wall-clock from the moment the process is started to the moment that evaluation's result
is known (process start, imports and evaluation included). A run that does not reach the
threshold within the budget counts as not solved. Medians over seeds; the ratio is ours
over stable-baselines3's.

* ours: ``rlstructures-train ALGO --env ENV --seed S --total-steps BUDGET --eval-every 5000
  --eval-episodes 10 --target-return R`` (our per-env preset); the evaluation's time is the
  ``wall_time`` of its ``eval/episodic_return`` row in the run's logs.
* stable-baselines3 (the ``bench`` extra): the rl-baselines3-zoo hyperparameters of the
  env, ``EvalCallback(eval_freq=5000 // n_envs, n_eval_episodes=10, deterministic=True)``,
  ``torch.set_num_threads(1)``, CPU; the time is taken when the callback has evaluated.

SAC on Pendulum-v1 evaluates every 1000 steps on both sides (``Case.eval_every``): its
20k budget is short and both solve within 4k-10k, where a 5000-step grid would round the
time to solve up to the next multiple of 5000.

Cases with ``hold=True`` (DDQN) do not stop at the threshold: they train the whole budget,
and also report whether the last evaluation is still at the threshold (no collapse).

Adding a case (DDQN, SAC): one ``Case`` in ``CASES`` with the SB3 class, its rl-zoo
hyperparameters and the bar; our side needs only the algorithm's name for
``rlstructures-train`` (a case whose algorithm is not available yet is skipped).

Run each invocation under ~10 minutes (through ``/work/bin/rls-bench`` on the shared
machine), e.g. one per case, and combine the JSON files::

    python tools/bench/algos.py --case ppo --seeds 0 1 2 3 4 --out /tmp/ppo.json
    python tools/bench/algos.py --case a2c --seeds 0 1 2 3 4 --out /tmp/a2c.json
    python tools/bench/algos.py --combine /tmp/ppo.json /tmp/a2c.json

``--phases CASE --seeds S`` times where our time goes in one run (in this process).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EVAL_EVERY = 5000
EVAL_EPISODES = 10
TIMEOUT = 600.0


@dataclass(frozen=True)
class Case:
    """One row of the table."""

    name: str
    algo: str  # rlstructures-train's name
    env_id: str
    threshold: float
    budget: int  # env steps
    bar: float  # the bar on median(ours) / median(SB3)
    sb3_class: str
    sb3_kwargs: dict[str, Any]
    sb3_n_envs: int = 1
    sb3_lin: tuple[str, ...] = ()  # rl-zoo `lin_X` entries: linear decay to 0
    hold: bool = False  # train the whole budget; report the last evaluation too
    ours_args: tuple[str, ...] = field(default_factory=tuple)
    eval_every: int = EVAL_EVERY  # both sides (SAC: 1000, the 20k budget is short)


CASES: dict[str, Case] = {
    c.name: c
    for c in (
        Case(
            "ppo",
            "ppo",
            "CartPole-v1",
            475.0,
            100_000,
            0.5,
            "PPO",
            {
                "n_steps": 32,
                "batch_size": 256,
                "gae_lambda": 0.8,
                "gamma": 0.98,
                "n_epochs": 20,
                "ent_coef": 0.0,
                "learning_rate": 1e-3,
                "clip_range": 0.2,
            },
            sb3_n_envs=8,
            sb3_lin=("learning_rate", "clip_range"),
        ),
        Case(
            "a2c", "a2c", "CartPole-v1", 475.0, 100_000, 0.5, "A2C", {"ent_coef": 0.0}, sb3_n_envs=8
        ),
        Case(
            "ddqn",
            "ddqn",
            "CartPole-v1",
            475.0,
            50_000,
            0.5,
            "DQN",
            {
                "learning_rate": 2.5e-4,
                "batch_size": 512,
                "buffer_size": 100_000,
                "learning_starts": 0,
                "gamma": 0.99,
                "target_update_interval": 5000,
                "train_freq": 16,
                "gradient_steps": 4,
                "exploration_fraction": 0.06,
                "exploration_final_eps": 0.11,
            },
            hold=True,
        ),
        Case(
            "sac",
            "sac",
            "Pendulum-v1",
            -200.0,
            20_000,
            0.7,
            "SAC",
            {"learning_rate": 1e-3},
            eval_every=1000,
        ),
        Case(  # ours with rl-zoo's 256-256 networks instead of our preset's 64-64
            "sac-zoo",
            "sac",
            "Pendulum-v1",
            -200.0,
            20_000,
            0.7,
            "SAC",
            {"learning_rate": 1e-3},
            eval_every=1000,
            ours_args=("--hidden-sizes", "256", "256"),
        ),
    )
}


# ----------------------------------------------------------------------------- our side
def _train_command() -> list[str]:
    script = Path(sys.executable).with_name("rlstructures-train")
    return [str(script)] if script.exists() else [sys.executable, "-m", "rlstructures.algos"]


def run_ours(case: Case, seed: int) -> dict[str, Any]:
    from rlstructures.logging import read_logs

    logdir = Path(tempfile.mkdtemp(prefix=f"bench-{case.name}-"))
    cmd = [
        *_train_command(),
        case.algo,
        "--env",
        case.env_id,
        "--seed",
        str(seed),
        "--total-steps",
        str(case.budget),
        "--eval-every",
        str(case.eval_every),
        "--eval-episodes",
        str(EVAL_EPISODES),
        "--logdir",
        str(logdir / "run"),
        "--progress",
        "none",
        "--no-plot",
        *case.ours_args,
    ]
    if not case.hold:
        cmd += ["--target-return", str(case.threshold)]
    start = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT)
    end = time.time()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    rows = read_logs(logdir / "run").to_pydict()
    shutil.rmtree(logdir, ignore_errors=True)
    evals = [
        (int(s), float(v), float(w) - start)
        for t, s, v, w in zip(
            rows["tag"], rows["step"], rows["value"], rows["wall_time"], strict=True
        )
        if t == "eval/episodic_return"
    ]
    first_update = min(
        (
            float(w) - start
            for t, w in zip(rows["tag"], rows["wall_time"], strict=True)
            if t == "charts/SPS"
        ),
        default=float("nan"),
    )
    return {"evals": evals, "process": end - start, "first_update": first_update}


# ----------------------------------------------------------------------------- SB3 side
def sb3_child(case: Case, seed: int, out: Path) -> None:
    """Runs in its own process (started by `run_sb3`)."""
    import torch
    from stable_baselines3 import A2C, DQN, PPO, SAC
    from stable_baselines3.common.callbacks import (
        BaseCallback,
        EvalCallback,
        StopTrainingOnRewardThreshold,
    )
    from stable_baselines3.common.env_util import make_vec_env

    torch.set_num_threads(1)
    evals: list[tuple[int, float, float, float]] = []
    started: list[float] = []

    class TimedEval(EvalCallback):
        def _on_training_start(self) -> None:
            started.append(time.time())
            super()._on_training_start()

        def _on_step(self) -> bool:
            due = self.eval_freq > 0 and self.n_calls % self.eval_freq == 0
            t = time.time()
            go_on = bool(super()._on_step())
            if due:
                evals.append(
                    (
                        int(self.num_timesteps),
                        float(self.last_mean_reward),
                        time.time(),
                        time.time() - t,
                    )
                )
            return go_on

    kwargs = dict(case.sb3_kwargs)
    for key in case.sb3_lin:
        value = float(kwargs[key])
        kwargs[key] = lambda progress, v=value: progress * v
    env = make_vec_env(case.env_id, n_envs=case.sb3_n_envs, seed=seed)
    eval_env = make_vec_env(case.env_id, n_envs=1, seed=seed + 1000)
    stop: BaseCallback | None = (
        None if case.hold else StopTrainingOnRewardThreshold(case.threshold, verbose=0)
    )
    callback = TimedEval(
        eval_env,
        callback_on_new_best=stop,
        n_eval_episodes=EVAL_EPISODES,
        eval_freq=max(case.eval_every // case.sb3_n_envs, 1),
        deterministic=True,
        verbose=0,
    )
    cls = {"PPO": PPO, "A2C": A2C, "DQN": DQN, "SAC": SAC}[case.sb3_class]
    model = cls("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **kwargs)
    model.learn(total_timesteps=case.budget, callback=callback)
    out.write_text(json.dumps({"evals": evals, "train_start": started[0]}))


def run_sb3(case: Case, seed: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "sb3.json"
        cmd = [
            sys.executable,
            __file__,
            "--sb3-child",
            case.name,
            "--seeds",
            str(seed),
            "--out",
            str(out),
        ]
        start = time.time()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT)
        end = time.time()
        if proc.returncode != 0:
            raise RuntimeError(f"SB3 run failed:\n{proc.stdout}\n{proc.stderr}")
        data = json.loads(out.read_text())
    evals = [(s, v, w - start) for s, v, w, _ in data["evals"]]
    return {
        "evals": evals,
        "process": end - start,
        "first_update": data["train_start"] - start,
        "eval_seconds": sum(d for *_, d in data["evals"]),
    }


# ----------------------------------------------------------------------------- the table
def solved(run: dict[str, Any], case: Case) -> tuple[int, float] | None:
    """(step, seconds) of the first evaluation at the threshold within the budget."""
    for step, mean, seconds in run["evals"]:
        if mean >= case.threshold and step <= case.budget:
            return step, seconds
    return None


def machine() -> dict[str, str]:
    def version(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "-"

    cpu = platform.processor() or platform.machine()
    return {
        "machine": f"{os.cpu_count()} cores, {cpu}, {platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": ", ".join(
            f"{d} {version(d)}"
            for d in ("torch", "numpy", "gymnasium", "stable-baselines3", "rlstructures-algos")
        ),
    }


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| case | seeds | ours solved | SB3 solved | ours median s (steps) | SB3 median s (steps) "
        "| ratio | bar |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    by_case: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        by_case.setdefault(r["case"], []).append(r)
    detail = []
    for name, runs in by_case.items():
        case = CASES[name]
        runs.sort(key=lambda r: r["seed"])
        ours = [solved(r["ours"], case) for r in runs]
        sb3 = [solved(r["sb3"], case) for r in runs]

        def med(xs: list[tuple[int, float] | None], i: int) -> float:
            return statistics.median(x[i] if x else float("inf") for x in xs)

        all_solved = sum(x is not None for x in ours) == len(runs)
        if case.hold:  # still at the threshold at the end of the budget, every seed
            all_solved = all_solved and all(
                r["ours"]["evals"][-1][1] >= case.threshold for r in runs
            )
        if math.isinf(med(sb3, 1)):  # SB3 solved fewer than half: its time is over its budget
            whole = statistics.median(r["sb3"]["evals"][-1][2] for r in runs)
            bound = med(ours, 1) / whole
            ratio_text = f"< {bound:.2f} (SB3 unsolved; its whole budget: {whole:.1f} s)"
            ok = all_solved and bound <= case.bar
        else:
            ratio = med(ours, 1) / med(sb3, 1)
            ratio_text = f"{ratio:.2f}"
            ok = all_solved and ratio <= case.bar
        lines.append(
            f"| {name} {case.env_id} >= {case.threshold:g} in {case.budget // 1000}k "
            f"| {len(runs)} | {sum(x is not None for x in ours)}/{len(runs)} "
            f"| {sum(x is not None for x in sb3)}/{len(runs)} "
            f"| {med(ours, 1):.2f} ({med(ours, 0):,.0f}) | {med(sb3, 1):.2f} ({med(sb3, 0):,.0f}) "
            f"| {ratio_text} | <= {case.bar} {'met' if ok else 'NOT met'} |"
        )
        for r, o, s in zip(runs, ours, sb3, strict=True):
            extra = ""
            if case.hold:
                last_o, last_s = r["ours"]["evals"][-1][1], r["sb3"]["evals"][-1][1]
                extra = f", last eval ours {last_o:.0f} / SB3 {last_s:.0f}"
            detail.append(
                f"  {name} seed {r['seed']}: ours {_fmt(o)} (first update at "
                f"{r['ours']['first_update']:.2f} s, process {r['ours']['process']:.1f} s); "
                f"SB3 {_fmt(s)} (training starts at {r['sb3']['first_update']:.2f} s, "
                f"{r['sb3']['eval_seconds']:.2f} s in evaluations, process "
                f"{r['sb3']['process']:.1f} s){extra}"
            )
    return "\n".join([*lines, "", *detail])


def _fmt(x: tuple[int, float] | None) -> str:
    return "not solved" if x is None else f"{x[1]:.2f} s at {x[0]:,} steps"


# ----------------------------------------------------------------------------- phases
def phases(case: Case, seed: int) -> None:
    """Where our time goes: one run of the CLI in this process, its phases timed."""
    t_start = time.perf_counter()
    from rlstructures.algos._cli import main as cli_main
    from rlstructures.algos._cli import process_seconds

    before = process_seconds() or 0.0  # the interpreter's own start, before this function
    from rlstructures.algos._workers import prestart

    prestart()
    marks: dict[str, list[float]] = {}

    def timed(owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            out = original(*args, **kwargs)
            marks.setdefault(label, []).append(time.perf_counter() - t)
            marks.setdefault(label + "@", []).append(t - t_start)
            return out

        setattr(owner, name, wrapper)

    import importlib

    t = time.perf_counter()
    module = importlib.import_module(
        f"rlstructures.algos.{'dqn' if case.algo == 'ddqn' else case.algo}"
    )
    t_import = time.perf_counter() - t
    from rlstructures.algos import _evaluation, _run
    from rlstructures.batchers import MultiProcessBatcher
    from rlstructures.logging import Logger

    timed(Logger, "__init__", "Logger()")
    timed(MultiProcessBatcher, "__init__", "MultiProcessBatcher() (training, evaluation)")
    timed(_run.Run, "collect", "get() and bookkeeping")
    timed(_run.Run, "publish", "update() and logs")
    submitted: dict[int, float] = {}
    original_submit = _evaluation.Evaluator.submit

    def submit(self: Any, step: int, weights: Any) -> None:
        submitted[step] = time.perf_counter()
        original_submit(self, step, weights)

    _evaluation.Evaluator.submit = submit  # type: ignore[method-assign]
    original_record = _run.Run._record

    def record(self: Any, result: Any) -> None:
        if result.step in submitted:
            marks.setdefault("evaluation (submit to result)", []).append(
                time.perf_counter() - submitted[result.step]
            )
        original_record(self, result)

    _run.Run._record = record  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            case.algo,
            "--env",
            case.env_id,
            "--seed",
            str(seed),
            "--total-steps",
            str(case.budget),
            "--logdir",
            f"{tmp}/run",
            "--progress",
            "none",
            "--no-plot",
            "--eval-every",
            str(case.eval_every),
        ]
        if not case.hold:
            args += ["--target-return", str(case.threshold)]
        t_train = time.perf_counter()
        cli_main(args)
        t_end = time.perf_counter()
    del module
    collects, publishes = marks["get() and bookkeeping@"], marks["update() and logs@"]
    learn = [
        p - c - g
        for c, g, p in zip(collects, marks["get() and bookkeeping"], publishes, strict=False)
    ]
    print(f"{case.name} {case.env_id} seed {seed} (ours), seconds:")
    print(f"  interpreter start and the CLI module: {before:.3f}")
    print(f"  import of torch and the algorithm:     {t_import:.3f}")
    first = marks["Logger()@"][0] - (t_train - t_start)
    print(f"  env description, networks (to Logger): {first:.3f}")
    print(f"  Logger() (tensorboard's imports):      {marks['Logger()'][0]:.3f}")
    b = marks["MultiProcessBatcher() (training, evaluation)"]
    print(f"  MultiProcessBatcher() x{len(b)}:         {' + '.join(f'{x:.3f}' for x in b)}")
    print(f"  first update done at:                  {before + publishes[0]:.3f} after start")
    n = len(publishes)
    print(
        f"  {n} updates: learner median {statistics.median(learn) * 1e3:.2f} ms, get() "
        f"median {statistics.median(marks['get() and bookkeeping']) * 1e3:.2f} ms, update() "
        f"and logs median {statistics.median(marks['update() and logs']) * 1e3:.2f} ms"
    )
    evals = marks.get("evaluation (submit to result)", [])
    if evals:
        print(
            f"  {len(evals)} evaluations: submit to result median "
            f"{statistics.median(evals) * 1e3:.0f} ms, max {max(evals) * 1e3:.0f} ms"
        )
    print(f"  training to the end of the run:        {t_end - t_train:.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--case", choices=list(CASES), action="append", dest="cases")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--out", type=Path, help="write the results (JSON) there")
    parser.add_argument("--combine", type=Path, nargs="+", help="print the table of results")
    parser.add_argument("--phases", choices=list(CASES), help="time our phases in one run")
    parser.add_argument("--sb3-child", choices=list(CASES), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phases:
        phases(CASES[args.phases], args.seeds[0])
        return 0
    if args.sb3_child:
        sb3_child(CASES[args.sb3_child], args.seeds[0], args.out)
        return 0
    if args.combine:
        data = [json.loads(p.read_text()) for p in args.combine]
        print(json.dumps(data[0]["machine"], indent=1))
        print(table([r for d in data for r in d["results"]]))
        return 0
    from rlstructures.algos import ALGORITHMS

    results = []
    for name in args.cases or ["ppo", "a2c"]:
        case = CASES[name]
        if not ALGORITHMS[case.algo].available:
            print(f"skipping {name}: rlstructures-train {case.algo} is not available yet")
            continue
        for seed in args.seeds:  # alternate sides so that drifts hit both alike
            ours = run_ours(case, seed)
            sb3 = run_sb3(case, seed)
            results.append({"case": name, "seed": seed, "ours": ours, "sb3": sb3})
            print(
                f"{name} seed {seed}: ours {_fmt(solved(ours, case))}, "
                f"SB3 {_fmt(solved(sb3, case))}",
                flush=True,
            )
    payload = {"machine": machine(), "results": results}
    if args.out:
        args.out.write_text(json.dumps(payload))
    print(json.dumps(payload["machine"], indent=1))
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
