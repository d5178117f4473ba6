"""`TrainResult`: what an algorithm's ``train`` returns."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rlstructures.algos._evaluation import EvalResult

__all__ = ["TrainResult"]


@dataclass(frozen=True, slots=True)
class TrainResult:
    """What ``train`` returns.

    Attributes:
        algo: the algorithm's name.
        env_id: the env trained on.
        steps: global env steps at the end (resumed runs: including the earlier ones).
        seconds: wall-clock time of this ``train`` call.
        episodes: training episodes that ended during this call.
        logdir: the run's directory.
        checkpoint: the last checkpoint written.
        trajectories: the trajectory dataset (``--save-trajectories``), or None.
        learning_curve: the PNG, or None (``plot=False``, or matplotlib missing).
        evaluations: every evaluation that completed, in order.
        target_return: the ``--target-return`` asked for, or None.
        target_step: the step of the first evaluation reaching it, or None.
        target_seconds: when that evaluation's result arrived (seconds since the start).
    """

    algo: str
    env_id: str
    steps: int
    seconds: float
    episodes: int
    logdir: Path
    checkpoint: Path | None
    trajectories: Path | None
    learning_curve: Path | None
    evaluations: tuple[EvalResult, ...]
    target_return: float | None
    target_step: int | None
    target_seconds: float | None

    @property
    def last_evaluation(self) -> EvalResult | None:
        """The last completed evaluation, or None."""
        return self.evaluations[-1] if self.evaluations else None

    @property
    def target_reached(self) -> bool:
        """Whether an evaluation reached ``target_return``."""
        return self.target_step is not None

    def summary(self) -> str:
        """A few lines for a terminal: outcome, last evaluation, where the files are."""
        if self.target_reached:
            head = (
                f"{self.algo} {self.env_id}: reached the target return {self.target_return:g} at "
                f"step {self.target_step:,}, {self.target_seconds:.1f} s after training started"
            )
        else:
            missed = (
                f" (target {self.target_return:g} not reached)"
                if self.target_return is not None
                else ""
            )
            head = (
                f"{self.algo} {self.env_id}: {self.steps:,} steps in {self.seconds:.1f} s{missed}"
            )
        lines = [head]
        last = self.last_evaluation
        if last is not None:
            lines.append(
                f"last evaluation: mean return {last.mean_return:.1f} over {len(last.returns)} "
                f"episodes (min {min(last.returns):.1f}, max {max(last.returns):.1f}) at step "
                f"{last.step:,}"
            )
        lines.append(f"logs (CSV, Arrow, tensorboard): {self.logdir}")
        if self.checkpoint is not None:
            lines.append(f"checkpoint: {self.checkpoint}")
        if self.trajectories is not None:
            lines.append(f"trajectories (Arrow): {self.trajectories}")
        if self.learning_curve is not None:
            lines.append(f"learning curve: {self.learning_curve}")
        return "\n".join(lines)
