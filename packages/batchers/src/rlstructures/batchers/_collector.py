"""The collection loop: the env side and the agent side of one VecEnv run in one process.

``Collector`` is what LocalBatcher runs in the calling process and MultiProcessBatcher in
every worker process (and RayBatcher in each actor), which is why they return identical
trajectories. It owns an ``EnvSide`` (``_env_side.py``: steps the VecEnv, writes the
observation rows) and an ``AgentSide`` (``_agent_side.py``: calls the agent, checks and
writes its outputs, carries its state) over the same buffer rows and the same stage, and
alternates them step by step. A batcher that runs the two halves in different processes
(InferenceBatcher) drives them itself, in the same order:

    agent.begin(env.ids); env.begin()
    fast (env.fast):  for t < T: env.step_into(t, agent.act_all(t, env.obs_at[t]))
    else:             for t < T while env.ids: obs, pos = env.step(t, agent.act(t, obs, ids));
                                              agent.carry(pos)
    n_running = env.finish()
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy.typing as npt

from rlstructures.agents import Agent, VecEnv
from rlstructures.batchers._agent_side import AgentSide
from rlstructures.batchers._env_side import EnvSide
from rlstructures.batchers._layout import Specs
from rlstructures.dicttensor import DictTensor

__all__ = ["Collector"]


class Collector:
    """One VecEnv and one agent writing into ``n_envs`` rows of the buffer arrays.

    Args:
        agent: the agent copy of this worker.
        env: the VecEnv of this worker.
        views: this worker's rows of every buffer array (see ``BufferLayout``).
        specs: the probe specs every step must match.
        n_timesteps: T, the steps per ``execute``.
        store_agent_state: also write the per-step agent state.
        worker: index, for messages.
    """

    def __init__(
        self,
        agent: Agent,
        env: VecEnv,
        views: Mapping[str, npt.NDArray[Any]],
        specs: Specs,
        *,
        n_timesteps: int,
        store_agent_state: bool,
        worker: int,
    ) -> None:
        self.env_side = EnvSide(env, views, specs, n_timesteps=n_timesteps, worker=worker)
        self.agent_side = AgentSide(
            agent,
            views,
            specs,
            n_envs=self.env_side.n_envs,
            n_timesteps=n_timesteps,
            store_agent_state=store_agent_state,
            worker=worker,
            stage=self.env_side.stage,
        )
        self.n_envs = self.env_side.n_envs
        self.n_timesteps = n_timesteps
        self.worker = worker

    @property
    def agent(self) -> Agent:
        """The agent."""
        return self.agent_side.agent

    @property
    def env(self) -> VecEnv:
        """The VecEnv."""
        return self.env_side.env

    @property
    def n_running(self) -> int:
        """Envs still running."""
        return self.env_side.n_running

    def set_agent_info(self, agent_info: DictTensor) -> None:
        """New per-env agent_info rows (batch ``(n_envs,)``)."""
        self.agent_side.set_agent_info(agent_info)

    def reset(self, agent_info: DictTensor, env_info: DictTensor) -> None:
        """Reset every env and start from the agent's initial state."""
        self.env_side.reset(env_info)
        self.agent_side.reset(agent_info)

    def execute(self, agent_info: DictTensor | None) -> int:
        """Collect up to ``n_timesteps`` steps per running env; returns how many still run."""
        env, agent = self.env_side, self.agent_side
        if agent_info is not None:
            agent.set_agent_info(agent_info)
        if agent.state is None:
            raise RuntimeError("Collector.execute() before reset()")  # the batcher checks first
        agent.begin(env.ids)  # first: a state viewing the stage is copied before begin() moves it
        env.begin()
        if env.fast:
            step_into, act_all, obs_at = env.step_into, agent.act_all, env.obs_at
            for t in range(self.n_timesteps):
                step_into(t, act_all(t, obs_at[t]))
        else:
            obs = env.obs
            for t in range(self.n_timesteps):
                if not len(env.ids):
                    break
                obs, pos = env.step(t, agent.act(t, obs, env.ids))
                agent.carry(pos)
        return env.finish()

    def close(self) -> None:
        """Close the env and the agent."""
        try:
            self.env.close()
        finally:
            self.agent.close()
