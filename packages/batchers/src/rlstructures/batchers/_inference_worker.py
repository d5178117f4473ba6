"""The worker process of InferenceBatcher: one VecEnv, no agent; steps handed over by semaphores.

A worker runs only the env side of the collector (``EnvSide``) over its rows of the
trajectory buffer, with its stage being its columns of the exchange segment's observation
arrays, so that slot t of every worker together is the one ``[N, *row]`` batch the owner's
agent reads (see ``_exchange.py``).

parent -> worker (pipe): the trajectory buffer's and the exchange segment's file
                  descriptors (``send_handle``), then ``Reset`` (its env_info) | ``Execute``
                  | ``Close`` (``_protocol.py``)
worker -> parent (pipe): ``Ready`` (after writing ``status[w]``: 1 for a VecEnv with
                  ``step_into`` in auto-reset mode, else 0) | ``ResetDone`` | ``Failed``

One slice (after "execute"), ``done[w]`` / ``go[w]`` being this worker's semaphores:

    begin; publish the observations of step 0; post done[w]
    for each step t while envs run:
        wait go[w]; step with the actions of the exchange; (last step: finish)
        publish the next observations (and ids, status); post done[w]

On an error, ``status[w]`` is set to -1 and done[w] posted once the error message is sent:
the owner wakes at once and reads it from the pipe.
"""

from __future__ import annotations

import gc
import os
import signal
from dataclasses import dataclass
from multiprocessing import reduction
from multiprocessing.connection import Connection
from typing import Any, cast

from rlstructures.batchers._build import check_n_envs, make_vec_env
from rlstructures.batchers._env_side import EnvSide, uses_step_into
from rlstructures.batchers._exchange import ExchangeLayout
from rlstructures.batchers._layout import BufferLayout, Specs, rows
from rlstructures.batchers._protocol import Command, Ready, Reset, ResetDone, unknown
from rlstructures.batchers._shm import Segment
from rlstructures.batchers._wakeup import Semaphores, wait_bounded
from rlstructures.batchers._worker import (
    _die_with_owner,
    _use_batch_scheduling,
    exit_worker,
    process_alive,
    receive,
    report_failure,
    unpickle_factories,
)
from rlstructures.dicttensor import DictTensor

__all__ = ["InferenceWorkerConfig", "inference_worker_main"]


@dataclass(frozen=True, slots=True)
class InferenceWorkerConfig:
    """Everything an InferenceBatcher worker needs (pickled once, at start)."""

    index: int
    make_env: bytes  # pickled: workers never unpickle make_agent (nor import what it needs)
    seed: int
    layout: BufferLayout
    exchange: ExchangeLayout
    specs: Specs
    n_envs: int
    spin: bool
    batch_scheduling: bool
    parent_pid: int
    from_main_thread: bool


class _OwnerGone(Exception):
    """The owner stopped waiting (it died): leave quietly."""


class _Slices:
    """One worker's env side and its part of the exchange."""

    def __init__(self, cfg: InferenceWorkerConfig, env: Any, traj: Segment, xch: Segment) -> None:
        n, w, T = cfg.n_envs, cfg.index, cfg.layout.n_timesteps
        start = w * n
        self.w, self.n, self.T, self.start = w, n, T, start
        self.parent_pid = cfg.parent_pid
        views = rows(cfg.layout.views(traj.buffer), start, start + n)
        xviews = cfg.exchange.views(xch.buffer)
        fast = uses_step_into(env) and n > 0
        slots = T + 1 if fast else 1
        stage = {k: v[:slots, start : start + n] for k, v in cfg.exchange.of(xviews, "obs").items()}
        self.env_side = EnvSide(env, views, cfg.specs, n_timesteps=T, worker=w, stage=stage)
        self.fast = self.env_side.fast
        self.status = xviews["status"]
        self.ids = xviews["ids"][start : start + n]
        self.pos = xviews["pos"][start : start + n]
        self.actions = {
            k: v[start : start + n] for k, v in cfg.exchange.of(xviews, "action").items()
        }
        self.full_action = DictTensor(dict(self.actions), batch_shape=(n,))
        self.go = Semaphores(xch.buffer, cfg.exchange.go, cfg.exchange.n_workers, init=False)
        self.done = Semaphores(xch.buffer, cfg.exchange.done, cfg.exchange.n_workers, init=False)
        self.spin = cfg.spin

    def _check_owner(self) -> None:
        if os.getppid() != self.parent_pid and not process_alive(self.parent_pid):
            raise _OwnerGone

    def _wait_go(self) -> None:
        wait_bounded(self.go, self.w, self._check_owner, spin=self.spin)

    def _publish(self, pos: Any) -> None:
        """Write the running ids (and the next observations in the general mode); post."""
        side = self.env_side
        k = len(side.ids)
        if not self.fast:
            self.ids[:k] = side.ids
            if pos is not None:
                self.pos[: len(pos)] = pos
            obs = side.obs
            if obs is not side.obs_at[0]:  # private arrays: into slot 0, packed
                for key, v in obs.items():
                    side.stage[key][0, :k] = v
        self.status[self.w] = k if pos is None else -2 - k  # -2 - k: "k run, pos written"
        self.done.post(self.w)

    def run(self) -> None:
        """One slice, as the module docstring says."""
        side, T = self.env_side, self.T
        side.begin()
        self._publish(None)
        if not side.n_running:
            side.finish()
            return
        if self.fast:
            for t in range(T):
                self._wait_go()
                side.step_into(t, self.full_action)
                if t == T - 1:
                    side.finish()
                self.done.post(self.w)
            return
        for t in range(T):
            self._wait_go()
            k = len(side.ids)
            action = self.full_action if k == self.n else self._action(k)
            _, pos = side.step(t, action)
            if t == T - 1 or not side.n_running:
                side.finish()
            self._publish(pos)
            if not side.n_running:
                return

    def _action(self, k: int) -> DictTensor:
        return DictTensor({key: v[:k] for key, v in self.actions.items()}, batch_shape=(k,))

    def fail(self) -> None:
        """Tell an owner waiting for this worker's step to read the error from the pipe."""
        self.status[self.w] = -1
        self.done.post(self.w)


def inference_worker_main(cfg: InferenceWorkerConfig, conn: Connection) -> None:
    """Entry point of an InferenceBatcher worker process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _die_with_owner(cfg.parent_pid, cfg.from_main_thread)
    if cfg.batch_scheduling:
        _use_batch_scheduling()
    traj: Segment | None = None
    xch: Segment | None = None
    slices: _Slices | None = None
    env: Any = None
    try:
        traj = Segment.attach(reduction.recv_handle(conn), cfg.layout.size)
        xch = Segment.attach(reduction.recv_handle(conn), cfg.exchange.size)
        make_env = unpickle_factories(cfg.make_env)
        where = f"worker {cfg.index}"
        env = make_vec_env(make_env, cfg.seed, where)
        check_n_envs(env, cfg.n_envs, cfg.seed, where)
        slices = _Slices(cfg, env, traj, xch)
        gc.collect()
        gc.freeze()  # see worker_main: full collections would stall every step of the batch
        slices.status[cfg.index] = int(slices.fast)
        conn.send(Ready())
        while True:
            msg = receive(conn)
            if msg is None:  # the owner is gone: quietly
                break
            kind = getattr(msg, "kind", None)
            if kind is Command.EXECUTE:
                slices.run()
            elif kind is Command.RESET:
                slices.env_side.reset(cast(Reset, msg).env_info)
                conn.send(ResetDone())
            elif kind is Command.CLOSE:
                break
            else:
                raise unknown(msg, f"worker {cfg.index}", Command)
    except _OwnerGone:
        pass  # the parent is gone: exit quietly
    except BaseException as exc:  # KeyboardInterrupt or EOFError too: raised by the env
        report_failure(conn, exc)
        if slices is not None:
            slices.fail()
    finally:
        slices = None
        exit_worker(conn, env, (xch, traj))
