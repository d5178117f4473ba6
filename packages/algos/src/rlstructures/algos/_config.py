"""`TrainConfig`: the fields every algorithm's config shares, checked at construction.

An algorithm's config subclasses it (``@dataclass(frozen=True, kw_only=True)``), adds its
own fields, each followed by its docstring (the command line's help text), and checks them
in ``__post_init__`` after calling ``TrainConfig.__post_init__(self)``. Values come from
three places, the later winning: the dataclass defaults, the per-env preset
(`TrainConfig.from_preset`, what the command line uses), and what the user passes.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar

from rlstructures.algos.errors import ConfigError

__all__ = [
    "ProgressMode",
    "TrainConfig",
    "config_from_dict",
    "config_to_dict",
    "positive",
    "in_range",
]

ProgressMode = Literal["auto", "bar", "lines", "none"]
C = TypeVar("C", bound="TrainConfig")


def _flag(name: str) -> str:
    return f"{name} (--{name.replace('_', '-')})"


def positive(config: object, *names: str, allow_zero: bool = False) -> None:
    """Raise `ConfigError` unless each named field is a positive int (or 0 if allowed)."""
    for name in names:
        value = getattr(config, name)
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or value < (0 if allow_zero else 1)
        ):
            need = "an int >= 0" if allow_zero else "a positive int"
            raise ConfigError(f"{_flag(name)} must be {need}, got {value!r}.")


def in_range(config: object, name: str, low: float, high: float, *, open_low: bool = False) -> None:
    """Raise `ConfigError` unless the named float field lies in ``[low, high]``."""
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{_flag(name)} must be a number, got {value!r}.")
    if not (low < value if open_low else low <= value) or not value <= high:
        bracket = "(" if open_low else "["
        raise ConfigError(f"{_flag(name)} must be in {bracket}{low}, {high}], got {value!r}.")


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """The fields every algorithm shares (environment, budget, outputs, evaluation)."""

    algo: ClassVar[str] = ""

    env_id: str = "CartPole-v1"
    """Gymnasium id of the environment."""
    seed: int = 0
    """Seed of the networks, the envs (env k is seeded seed + k) and the action sampling."""
    total_steps: int = 100_000
    """Env steps to train for, all envs together (when resuming: including those done)."""
    logdir: str | None = None
    """Directory of logs, checkpoints and trajectories (default: runs/ALGO-ENV-seedN)."""
    device: str = "auto"
    """Learner device: auto (CUDA when present), cpu, cuda or cuda:N; actors run on CPU."""
    n_envs: int = 8
    """Envs stepped in parallel, all worker processes together."""
    n_processes: int = 1
    """Worker processes that collect (each steps n_envs / n_processes envs)."""
    eval_every: int = 5000
    """Evaluate every this many env steps, beside training (0: only at the end)."""
    eval_episodes: int = 10
    """Deterministic episodes per evaluation."""
    target_return: float | None = None
    """Stop at the first evaluation whose mean return reaches this."""
    save_trajectories: bool = False
    """Stream every collected batch to LOGDIR/trajectories/ (Arrow IPC)."""
    resume: str | None = None
    """Continue the run saved in this log directory (weights, optimiser, step, logs)."""
    checkpoint_every: int = 0
    """Also save a checkpoint every this many env steps (0: only at the end)."""
    torch_threads: int = 1
    """torch.set_num_threads of the learner (0 keeps torch's default)."""
    progress: ProgressMode = "auto"
    """auto: a bar on a terminal, a line every few seconds otherwise; bar; lines; none."""
    plot: bool = True
    """Draw LOGDIR/learning_curve.png at the end."""

    def __post_init__(self) -> None:
        env_id: object = self.env_id  # checked at runtime: users pass anything
        if not isinstance(env_id, str) or not env_id:
            raise ConfigError(f"{_flag('env_id')} must be a gymnasium id, got {env_id!r}.")
        positive(self, "total_steps", "n_envs", "n_processes", "eval_episodes")
        positive(self, "seed", "eval_every", "checkpoint_every", "torch_threads", allow_zero=True)
        if self.n_envs % self.n_processes:
            raise ConfigError(
                f"--n-envs {self.n_envs} is not a multiple of --n-processes {self.n_processes}: "
                "every worker process steps the same number of envs."
            )
        if self.progress not in typing.get_args(ProgressMode):
            raise ConfigError(
                f"--progress must be one of {typing.get_args(ProgressMode)}, got {self.progress!r}."
            )

    @classmethod
    def from_preset(cls: type[C], env_id: str | None = None, **overrides: Any) -> C:
        """The config of ``env_id`` (default: the class default): its preset, then overrides.

        Example:
            >>> from rlstructures.algos.ppo import PPOConfig
            >>> cfg = PPOConfig.from_preset("CartPole-v1", seed=3)
            >>> cfg.n_steps, cfg.gae_lambda, cfg.seed
            (32, 0.8, 3)
        """
        from rlstructures.algos._presets import preset

        env = env_id if env_id is not None else overrides.pop("env_id", None)
        if env is None:
            env = next(f.default for f in dataclasses.fields(cls) if f.name == "env_id")
        values = {**preset(cls.algo, str(env)), **overrides, "env_id": env}
        return config_from_dict(cls, values)


def field_types(cls: type[TrainConfig]) -> dict[str, Any]:
    """The resolved annotation of every init field of ``cls``."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


def _coerce(value: Any, annotation: Any) -> Any:
    """JSON values back to the field's type (lists to tuples)."""
    origin = typing.get_origin(annotation)
    if origin in (types.UnionType, typing.Union):
        if value is None:
            return None
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _coerce(value, inner[0]) if len(inner) == 1 else value
    if origin is tuple and isinstance(value, (list, tuple)):
        return tuple(value)
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def config_from_dict(cls: type[C], values: Mapping[str, Any]) -> C:
    """Build ``cls`` from a mapping (a preset, ``config.json``), ignoring unknown keys.

    Raises:
        ConfigError: a value of the wrong type or range (from the config's checks).
    """
    hints = field_types(cls)
    kwargs = {k: _coerce(v, hints[k]) for k, v in values.items() if k in hints}
    try:
        return cls(**kwargs)
    except TypeError as exc:  # pragma: no cover - only unknown keys, filtered above
        raise ConfigError(str(exc)) from exc


def config_to_dict(config: TrainConfig) -> dict[str, Any]:
    """``config`` as JSON-ready values (tuples as lists), ``"algo"`` included."""
    out: dict[str, Any] = {"algo": config.algo}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out
