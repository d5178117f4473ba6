"""``rlstructures-train {a2c,ppo,ddqn,sac} ...``: an algorithm's config dataclass as flags.

Every init field of the config is a kebab-case flag (``n_steps`` -> ``--n-steps``;
``env_id`` is also ``--env``); its help text is the field's docstring followed by the
value it takes when the flag is not given: the env's preset (see `_presets`) or the
dataclass default. ``--resume DIR`` starts from the config saved in DIR instead, and the
flags given override it (e.g. a larger ``--total-steps``). Bad arguments exit with status
2 and one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import os
import sys
import textwrap
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, NoReturn

from rlstructures.algos._config import TrainConfig, config_from_dict, field_types
from rlstructures.algos._presets import preset
from rlstructures.algos._registry import ALGORITHMS, algorithm
from rlstructures.algos._workers import prestart
from rlstructures.algos.errors import AlgosError, ConfigError

__all__ = ["build_parser", "field_docs", "main", "parse_config"]

PROG: Final = "rlstructures-train"
_FLAGS: Final = {"env_id": ("--env", "--env-id")}
_METAVARS: Final = {"env_id": "ENV_ID", "logdir": "DIR", "resume": "DIR", "device": "DEVICE"}


class _Parser(argparse.ArgumentParser):
    """argparse, with errors on one line (no usage block) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def field_docs(cls: type) -> dict[str, str]:
    """The attribute docstrings of a dataclass and its bases: ``{field: text}``.

    The string literal right after a field's annotation is its docstring (PEP 257's
    attribute docstrings, as tyro and cleanrl use them); whitespace is collapsed.
    """
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is object or not dataclasses.is_dataclass(klass):
            continue
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):  # no source (frozen app): no help text
            continue
        body = ast.parse(source).body[0]
        assert isinstance(body, ast.ClassDef)  # getsource of a class
        items = body.body
        for node, after in zip(items, [*items[1:], None], strict=True):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def _optional(inner: Callable[[str], Any]) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        return None if text.lower() in ("none", "null", "") else inner(text)

    convert.__name__ = getattr(inner, "__name__", "value")  # argparse names it in errors
    return convert


def _add_field(parser: argparse.ArgumentParser, name: str, annotation: Any, help_text: str) -> None:
    flags = _FLAGS.get(name, (f"--{name.replace('_', '-')}",))
    kwargs: dict[str, Any] = {"dest": name, "default": argparse.SUPPRESS, "help": help_text}
    origin = typing.get_origin(annotation)
    optional = False
    if origin in (types.UnionType, typing.Union):
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional, annotation = True, inner[0]
        origin = typing.get_origin(annotation)
    if annotation is bool:
        kwargs["action"] = argparse.BooleanOptionalAction
    elif origin is typing.Literal:
        choices = list(typing.get_args(annotation))
        kwargs["choices"] = choices
        kwargs["type"] = type(choices[0])
    elif origin is tuple:
        kwargs["nargs"] = "+"
        kwargs["type"] = typing.get_args(annotation)[0]
        kwargs["metavar"] = "N"
    else:
        convert: Callable[[str], Any] = annotation
        kwargs["type"] = _optional(convert) if optional else convert
        kwargs["metavar"] = _METAVARS.get(name) or {int: "N", float: "X"}.get(annotation, "VALUE")
    parser.add_argument(*flags, **kwargs)


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        return " ".join(map(str, value))
    if isinstance(value, bool):
        return "true" if value else "false"
    return "none" if value is None else str(value)


def build_parser(
    cls: type[TrainConfig], base: dict[str, Any], origin: str
) -> argparse.ArgumentParser:
    """The parser of ``cls``'s flags; help shows ``base`` (``origin`` says where from)."""
    entry = algorithm(cls.algo)
    parser = _Parser(
        prog=f"{PROG} {cls.algo}",
        description=f"{cls.algo}: {entry.summary}, trained with rlstructures.",
        epilog=f"Values in brackets are those used when a flag is not given: {origin}.",
    )
    docs = field_docs(cls)
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    for name, annotation in field_types(cls).items():
        value = base.get(name, defaults[name])
        mark = "*" if name in base else ""
        _add_field(parser, name, annotation, f"{docs.get(name, '')} [{mark}{_shown(value)}]")
    return parser


def parse_config(cls: type[TrainConfig], argv: Sequence[str]) -> TrainConfig:
    """The config of ``cls`` from command-line arguments (presets, --resume, flags).

    Raises:
        SystemExit: status 2 on bad flags (argparse); 0 after ``--help``.
        ConfigError: a value out of range, an unknown env id, a resume mismatch.
    """
    pre = _Parser(add_help=False)
    pre.add_argument("--env", "--env-id", dest="env_id", default=None)
    pre.add_argument("--resume", default=None)
    known, _ = pre.parse_known_args(list(argv))
    base: dict[str, Any]
    if known.resume is not None:
        from rlstructures.algos._checkpoint import read_saved_config

        saved = read_saved_config(known.resume)
        if saved.get("algo") != cls.algo:
            raise ConfigError(
                f"--resume {known.resume}: that run was trained with {saved.get('algo')}, not "
                f"{cls.algo}; use `{PROG} {saved.get('algo')} --resume {known.resume}`."
            )
        base = {k: v for k, v in saved.items() if k != "algo"}
        base["resume"] = known.resume
        origin = f"* from {known.resume}/checkpoints/config.json, others the defaults"
    else:
        default = next(f.default for f in dataclasses.fields(cls) if f.name == "env_id")
        env = str(known.env_id or default)
        base = preset(cls.algo, env)
        origin = (
            f"* from the {cls.algo} preset for {env}, others the defaults"
            if base
            else f"the defaults (no {cls.algo} preset for {env})"
        )
    given = vars(build_parser(cls, base, origin).parse_args(list(argv)))
    return config_from_dict(cls, {**base, **given})


def _top_help() -> str:
    lines = [
        f"usage: {PROG} {{{','.join(ALGORITHMS)}}} [--env ENV_ID] [--seed N] [--total-steps N]",
        "       [--logdir DIR] [--device auto|cpu|cuda[:k]] [--n-processes N] [--eval-every N]",
        "       [--eval-episodes N] [--target-return R] [--save-trajectories] [--resume DIR] ...",
        "",
        "Train an agent with rlstructures (collection by worker processes, asynchronous",
        "evaluation, logs, checkpoints, trajectories).",
        "",
        "algorithms:",
    ]
    for a in ALGORITHMS.values():
        kinds = ", ".join(sorted("Discrete" if k == "discrete" else "Box" for k in a.actions))
        status = "" if a.available else "  [not available yet in this version]"
        lines.append(f"  {a.name:<5} {a.summary} (actions: {kinds}){status}")
    lines += ["", f"`{PROG} ALGO --help` lists ALGO's flags with the preset values of --env."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """The ``rlstructures-train`` command; returns the exit status."""
    prestart()  # the workers' fork server loads its modules while we import torch
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        names = ", ".join(ALGORITHMS)
        print(f"{PROG}: error: choose an algorithm ({names}); see {PROG} --help", file=sys.stderr)
        return 2
    if args[0] in ("-h", "--help"):
        print(_top_help())
        return 0
    if args[0] == "--version":
        from rlstructures.algos import __version__

        print(f"{PROG} (rlstructures-algos {__version__})")
        return 0
    config: TrainConfig | None = None
    try:
        entry = algorithm(args[0])
        module = entry.load()
        config = parse_config(getattr(module, entry.config), args[1:])
        result = module.train(config)
    except SystemExit as exc:  # argparse: --help (0) or a bad flag (2, message printed)
        return exc.code if isinstance(exc.code, int) else 2
    except AlgosError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted{_resume_hint(config)}", file=sys.stderr)
        return 130
    print(result.summary())
    wall = process_seconds()
    if wall is not None:
        print(f"wall-clock: {wall:.1f} s since the command started")
    return 0


def _resume_hint(config: TrainConfig | None) -> str:
    if config is None:
        return ""
    from rlstructures.algos._checkpoint import checkpoint_path
    from rlstructures.algos._run import default_logdir

    logdir = Path(config.resume or config.logdir or default_logdir(config))
    if not checkpoint_path(logdir).is_file():
        return ""
    return (
        f"; checkpoint in {logdir / 'checkpoints'}, continue with "
        f"`{PROG} {config.algo} --resume {logdir}`"
    )


def process_seconds() -> float | None:
    """Seconds since this process started (Linux ``/proc``), None where unknown."""
    try:
        with open("/proc/self/stat") as f:
            started = int(f.read().rsplit(")", 1)[1].split()[19])  # field 22: starttime
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return uptime - started / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
