"""`Run`: everything around an algorithm's update, shared by every algorithm.

An algorithm's ``train`` builds its networks, then::

    with Run(config, env=env, actor=spec, n_timesteps=T, state={...}, device=device) as run:
        run.start(weights)                     # reset the envs, start the first collection
        while run.running:
            batch = run.collect()              # [B, T] torch Trajectories; the next is
            ...                                # being collected while this is learned
            run.publish(weights, stats)        # new weights to the actors, logs
    return run.result

`Run` owns: the training `MultiProcessBatcher` (auto-reset envs, `NumpyActor` copies that
receive weights by ``update()``), the `Evaluator` (a second batcher, episode mode,
asynchronous), the `Logger` (unless one is given), episode statistics
(``charts/episodic_return``, ``charts/episodic_length``), ``charts/SPS``, the
`TrajectoryWriter` of ``--save-trajectories``, checkpoints (at the end, every
``--checkpoint-every`` steps, and at a Ctrl-C), ``--resume``, the progress output, the
``--target-return`` stop, and the `TrainResult`.

Logged tags (step = global env steps): ``charts/episodic_return``,
``charts/episodic_length`` (one row per training episode that ended), ``charts/SPS``,
whatever the algorithm passes to ``publish`` (``losses/...``), ``eval/episodic_return``
(mean over the evaluation's episodes) and ``eval/episodic_length``.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import logging
import math
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, SupportsFloat

import numpy as np
import torch

from rlstructures.agents import EpisodeTracker
from rlstructures.algos._actor import ActorSpec, NumpyActor
from rlstructures.algos._checkpoint import (
    Stateful,
    load_checkpoint,
    read_saved_config,
    save_checkpoint,
)
from rlstructures.algos._config import TrainConfig, config_to_dict
from rlstructures.algos._envs import EnvInfo, make_vec_env
from rlstructures.algos._evaluation import EvalResult, Evaluator
from rlstructures.algos._networks import resolve_device
from rlstructures.algos._progress import Progress
from rlstructures.algos._result import TrainResult
from rlstructures.algos._workers import start_method
from rlstructures.algos.errors import ConfigError
from rlstructures.batchers import MultiProcessBatcher
from rlstructures.dicttensor import Trajectories
from rlstructures.logging import Logger, LoggingError, ScalarLogger, TrajectoryWriter

if TYPE_CHECKING:
    from typing import Self

__all__ = ["Run", "default_logdir", "setup_learner"]

_log = logging.getLogger(__name__)

#: Seed offsets: the actors' sampling and the evaluation envs get seeds of their own.
AGENT_SEED_OFFSET: Final = 10_000
EVAL_SEED_OFFSET: Final = 100_000
RECENT_EPISODES: Final = 20


def default_logdir(config: TrainConfig) -> Path:
    """``runs/<algo>-<env_id>-seed<seed>`` (the plot command groups seeds of one name)."""
    return Path("runs") / f"{config.algo}-{config.env_id}-seed{config.seed}"


def setup_learner(config: TrainConfig) -> torch.device:
    """Seed torch, set its thread count, and resolve ``config.device``.

    Call it first in ``train``, before building networks (their initial weights).
    """
    torch.manual_seed(config.seed)
    if config.torch_threads > 0:
        torch.set_num_threads(config.torch_threads)
    return resolve_device(config.device)


def _check_logdir(logdir: Path, resume: bool) -> None:
    if resume or not logdir.exists():
        return
    if any(logdir.iterdir()):
        raise ConfigError(
            f"logdir {str(logdir)!r} already holds a run; continue it with --resume {logdir}, "
            "or choose another --logdir (or delete it)."
        )


class Run:
    """The plumbing of one training run (see the module doc). A context manager.

    Args:
        config: the run's config.
        env: the env's description (`describe_env`).
        actor: what the acting copies compute (stochastic; evaluation uses it with
            ``deterministic=True``).
        n_timesteps: steps per env per collection (T of each batch).
        state: the learner's networks and optimisers, saved in checkpoints and restored
            by ``--resume`` (done here, in the constructor).
        device: the learner's device; ``collect()`` returns tensors on it.
        logger: where scalars go; None: a `Logger` on the logdir (closed at the end).
    """

    def __init__(
        self,
        config: TrainConfig,
        *,
        env: EnvInfo,
        actor: ActorSpec,
        n_timesteps: int,
        state: Mapping[str, Stateful],
        device: torch.device,
        logger: ScalarLogger | None = None,
    ) -> None:
        self.start_time = time.perf_counter()
        self.config, self.env, self.device = config, env, device
        self._state = state
        resume = config.resume is not None
        self.logdir = Path(config.resume or config.logdir or default_logdir(config))
        _check_logdir(self.logdir, resume)
        self.step = 0
        if resume:
            read_saved_config(self.logdir)  # a clear error when there is no checkpoint
            self.step = load_checkpoint(self.logdir, algo=config.algo, state=state, device=device)
            if self.step >= config.total_steps:
                raise ConfigError(
                    f"the run in {str(self.logdir)!r} already has {self.step:,} steps, at least "
                    f"--total-steps {config.total_steps:,}; raise --total-steps to train on."
                )
        self._initial_step = self.step
        self._resources: list[Any] = []  # closed in reverse order at the end
        try:
            self._open(actor, n_timesteps, logger)
        except BaseException:
            self._close_all()
            raise
        self._weights: Mapping[str, Any] = {}
        self._next_eval = self._after(self.step, config.eval_every)
        self._next_checkpoint = self._after(self.step, config.checkpoint_every)
        self._last_eval_step: int | None = None
        self._evaluations: list[EvalResult] = []
        self._recent: collections.deque[float] = collections.deque(maxlen=RECENT_EPISODES)
        self._episodes = 0
        self._target: tuple[int, float] | None = None
        self._checkpoint: Path | None = None
        self._result: TrainResult | None = None

    @staticmethod
    def _after(step: int, every: int) -> float:
        return math.inf if every <= 0 else (step // every + 1) * every

    def _open(self, actor: ActorSpec, n_timesteps: int, logger: ScalarLogger | None) -> None:
        config = self.config
        method = start_method()
        self.logdir.mkdir(parents=True, exist_ok=True)
        if logger is None:
            owned = Logger(self.logdir)
            self._resources.append(owned)
            if config.resume is None:
                owned.add_hparams(config_to_dict(config))
            logger = owned
        self.logger: ScalarLogger = logger
        self.writer: TrajectoryWriter | None = None
        if config.save_trajectories:
            name = "trajectories" if self.step == 0 else f"trajectories-from-{self.step}"
            self.writer = TrajectoryWriter(
                self.logdir / name, metadata={"config": config_to_dict(config)}
            )
            self._resources.append(self.writer)
        per_worker = config.n_envs // config.n_processes
        seeds = [config.seed + w * per_worker for w in range(config.n_processes)]
        self.batcher = MultiProcessBatcher(
            functools.partial(NumpyActor, actor),
            functools.partial(
                make_vec_env, env_id=config.env_id, n_envs=per_worker, auto_reset=True
            ),
            n_timesteps=n_timesteps,
            seeds=seeds,
            agent_seeds=[config.seed + AGENT_SEED_OFFSET + w for w in range(config.n_processes)],
            start_method=method,
        )
        self._resources.append(self.batcher)
        self.evaluator = Evaluator(
            functools.partial(NumpyActor, dataclasses.replace(actor, deterministic=True)),
            config.env_id,
            n_episodes=config.eval_episodes,
            seed=config.seed + EVAL_SEED_OFFSET,
            max_episode_steps=self.env.max_episode_steps,
            start=self.start_time,
            start_method=method,
        )
        self._resources.append(self.evaluator)
        self.tracker = EpisodeTracker()
        desc = f"{config.algo} {config.env_id} seed {config.seed}"
        self.progress = Progress(
            config.progress, total=config.total_steps, initial=self.step, desc=desc
        )
        self._resources.append(self.progress)

    # ------------------------------------------------------------------ the loop's calls
    @property
    def running(self) -> bool:
        """False once the step budget is spent or an evaluation reached the target."""
        return self._target is None and self.step < self.config.total_steps

    @property
    def fraction(self) -> float:
        """Fraction of the step budget spent (for learning-rate and clip schedules)."""
        return min(1.0, self.step / self.config.total_steps)

    def start(self, weights: Mapping[str, Any]) -> None:
        """Send the first weights, reset the envs and start the first collection."""
        self._weights = weights
        self.batcher.update(weights)
        self.batcher.reset()
        self.batcher.execute()

    def collect(self) -> Trajectories:
        """The next batch (torch, on the learner's device); starts collecting the one after.

        The batch was collected with the weights published before the previous ``publish``
        (collection runs while the learner updates, one update behind).
        """
        trajectories, _ = self.batcher.get()
        self.batcher.execute()
        self.step += int(np.asarray(trajectories.lengths).sum())
        ended = self.tracker.update(trajectories)
        if len(ended):
            self._episodes += len(ended)
            for ret, length in zip(ended["return"].tolist(), ended["length"].tolist(), strict=True):
                self._recent.append(ret)
                self.logger.add_scalars(
                    {"charts/episodic_return": ret, "charts/episodic_length": length}, self.step
                )
        if self.writer is not None:
            self.writer.write(trajectories)
        self._poll()
        out = trajectories.torch()
        return out if self.device.type == "cpu" else out.to(self.device, non_blocking=True)

    def publish(self, weights: Mapping[str, Any], stats: Mapping[str, SupportsFloat]) -> None:
        """New weights for the acting copies, the update's stats logged; evaluations due."""
        self._weights = weights
        self.batcher.update(weights)
        elapsed = time.perf_counter() - self.start_time
        sps = (self.step - self._initial_step) / max(elapsed, 1e-9)
        self.logger.add_scalars({**stats, "charts/SPS": sps}, self.step)
        if self.step >= self._next_eval:
            self._submit_eval()
            self._next_eval = self._after(self.step, self.config.eval_every)
        if self.step >= self._next_checkpoint:
            self._save()
            self._next_checkpoint = self._after(self.step, self.config.checkpoint_every)
        self._poll()
        last = self._evaluations[-1] if self._evaluations else None
        self.progress.update(
            self.step,
            sps=sps,
            recent_return=sum(self._recent) / len(self._recent) if self._recent else None,
            eval_return=None if last is None else last.mean_return,
            eval_step=None if last is None else last.step,
        )

    @property
    def result(self) -> TrainResult:
        """The outcome; available once the ``with`` block has exited normally."""
        if self._result is None:
            raise RuntimeError("Run.result is set when the `with Run(...)` block exits.")
        return self._result

    # ------------------------------------------------------------------ internals
    def _submit_eval(self) -> None:
        self.evaluator.submit(self.step, self._weights)
        self._last_eval_step = self.step

    def _poll(self) -> None:
        result = self.evaluator.poll()
        if result is not None:
            self._record(result)

    def _record(self, result: EvalResult) -> None:
        self._evaluations.append(result)
        self.logger.add_scalars(
            {
                "eval/episodic_return": result.mean_return,
                "eval/episodic_length": sum(result.lengths) / len(result.lengths),
            },
            result.step,
        )
        target = self.config.target_return
        if self._target is None and target is not None and result.mean_return >= target:
            self._target = (result.step, result.seconds)

    def _save(self) -> None:
        self._checkpoint = save_checkpoint(
            self.logdir,
            algo=self.config.algo,
            step=self.step,
            seconds=time.perf_counter() - self.start_time,
            state=self._state,
            config=config_to_dict(self.config),
        )

    def _finish(self) -> None:
        if self._target is None:
            if self._last_eval_step != self.step and self._weights:
                self._submit_eval()
            for result in self.evaluator.wait():
                self._record(result)
        self._save()
        self.progress.close()
        self.logger.flush()
        self._close_all()
        curve = None
        if self.config.plot:
            from rlstructures.algos._plot import plot_run

            try:
                curve = plot_run(
                    self.logdir,
                    self.logdir / "learning_curve.png",
                    title=f"{self.config.algo} on {self.config.env_id}",
                    name=self.logdir.name,
                )
            except (ImportError, LoggingError) as exc:  # no matplotlib, or logs elsewhere
                _log.warning("no learning curve: %s", exc)
        target = self._target
        self._result = TrainResult(
            algo=self.config.algo,
            env_id=self.config.env_id,
            steps=self.step,
            seconds=time.perf_counter() - self.start_time,
            episodes=self._episodes,
            logdir=self.logdir,
            checkpoint=self._checkpoint,
            trajectories=None if self.writer is None else self.writer.path,
            learning_curve=curve,
            evaluations=tuple(self._evaluations),
            target_return=self.config.target_return,
            target_step=None if target is None else target[0],
            target_seconds=None if target is None else target[1],
        )

    def _close_all(self) -> None:
        while self._resources:
            resource = self._resources.pop()
            try:
                resource.close()
            except Exception:  # keep closing the others; the first error is not hidden
                _log.exception("closing %r failed", resource)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self._finish()
            return
        if exc_type is KeyboardInterrupt and self._weights:  # Ctrl-C: keep what was learned
            try:
                self._save()
            except Exception:  # the interrupt is what the user must see
                _log.exception("no checkpoint saved at the interrupt")
        self._close_all()
