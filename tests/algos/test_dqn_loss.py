"""Double DQN: the pure loss on hand-made tensors, n-step targets, the duelling head, epsilon."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from rlstructures.algos._actor import NumpyActor
from rlstructures.algos._envs import describe_env
from rlstructures.algos._replay_buffer import ReplayBuffer
from rlstructures.algos.dqn import DQNConfig, QNetwork, dqn_loss, epsilon_at
from rlstructures.dicttensor import DictTensor, TemporalDictTensor

GAMMA = 0.9


def _targets(
    reward: list[float],
    terminated: list[bool],
    next_q_target: list[list[float]],
    next_q_online: list[list[float]] | None,
    discount: float = GAMMA,
) -> torch.Tensor:
    """The targets dqn_loss regresses on: with q_values 0 and mse, loss = mean(target^2)."""
    n = len(reward)
    q = torch.zeros(n, 2, requires_grad=True)
    loss, _ = dqn_loss(
        q,
        torch.zeros(n, dtype=torch.int64),
        torch.tensor(reward),
        torch.full((n,), discount),
        torch.tensor(terminated),
        torch.tensor(next_q_target),
        None if next_q_online is None else torch.tensor(next_q_online),
        loss="mse",
    )
    loss.backward()  # type: ignore[no-untyped-call]  # torch leaves it unannotated
    assert q.grad is not None
    # d/dq0 mean((q0 - y)^2) = 2 (q0 - y) / n = -2 y / n
    return -q.grad[:, 0] * n / 2


def test_double_q_target_takes_the_online_argmax_and_the_target_value() -> None:
    # online prefers action 1, the target network action 0: Double DQN values action 1
    got = _targets([1.0], [False], [[5.0, 2.0]], [[0.0, 3.0]])
    torch.testing.assert_close(got, torch.tensor([1.0 + GAMMA * 2.0]))
    # DQN (no online values): the target network's max
    got = _targets([1.0], [False], [[5.0, 2.0]], None)
    torch.testing.assert_close(got, torch.tensor([1.0 + GAMMA * 5.0]))


def test_truncation_bootstraps_and_termination_does_not() -> None:
    # constant reward 1; the last step of an episode truncated at T (not terminated) has
    # target 1 + gamma * V(s_T) from the kept final observation; a terminated one has 1
    got = _targets([1.0, 1.0], [False, True], [[4.0, 7.0], [4.0, 7.0]], [[1.0, 0.0], [1.0, 0.0]])
    torch.testing.assert_close(got, torch.tensor([1.0 + GAMMA * 4.0, 1.0]))


def test_the_loss_values_and_gradients() -> None:
    q = torch.tensor([[1.0, 3.0], [0.0, -1.0]], requires_grad=True)
    action = torch.tensor([1, 0])
    reward = torch.tensor([0.0, 2.5])
    args = (q, action, reward, torch.zeros(2), torch.tensor([True, True]), torch.zeros(2, 2), None)
    # errors: 3 - 0 = 3 (huber: 2.5), 0 - 2.5 = -2.5 (huber: 2.0)
    huber, stats = dqn_loss(*args, loss="huber")
    torch.testing.assert_close(huber, torch.tensor((2.5 + 2.0) / 2))
    torch.testing.assert_close(stats["q_values"], torch.tensor(1.5))
    torch.testing.assert_close(stats["td_loss"], huber.detach())
    mse, _ = dqn_loss(*args, loss="mse")
    torch.testing.assert_close(mse, torch.tensor((9.0 + 6.25) / 2))
    mse.backward()  # type: ignore[no-untyped-call]  # torch leaves it unannotated
    # only the taken actions' values get a gradient
    torch.testing.assert_close(q.grad, torch.tensor([[0.0, 3.0], [-2.5, 0.0]]))


def _episode_buffer(t_end: int, terminated_at_end: bool) -> ReplayBuffer:
    """One env, reward 1 every step, an episode of t_end steps then a second one."""
    total = t_end + 4
    step = np.arange(total, dtype=np.float32)
    done = step == t_end - 1
    buffer = ReplayBuffer(100, seed=0)
    buffer.add(
        TemporalDictTensor(
            {
                "observation/frame": step[None, :, None],
                "action/action": np.zeros((1, total), np.int64),
                "_observation/frame": (step + 1)[None, :, None],
                "_observation/reward": np.ones((1, total), np.float32),
                "_observation/terminated": (done & terminated_at_end)[None],
                "_observation/done": done[None],
            }
        )
    )
    return buffer


def _naive_target(t: int, n: int, t_end: int, terminated: bool, value: float, total: int) -> float:
    """sum_k gamma^k r_k over up to n steps, stopping at the episode's end or the data's;
    plus gamma^m V(s_{t+m}) unless the episode terminated there."""
    out, k = 0.0, 0
    while k < n and t + k < total:
        out += GAMMA**k * 1.0
        k += 1
        if t + k == t_end:  # the episode's last transition was t + k - 1
            return out if terminated else out + GAMMA**k * value
    return out + GAMMA**k * value


@pytest.mark.parametrize("n_step", [1, 3])
@pytest.mark.parametrize("terminated", [False, True])
def test_nstep_targets_from_the_buffer_equal_a_naive_loop(n_step: int, terminated: bool) -> None:
    t_end, value = 5, 10.0
    buffer = _episode_buffer(t_end, terminated)
    rows = buffer.sample(400, n_step=n_step, gamma=GAMMA).torch()
    n = len(rows)
    q = torch.zeros(n, 2, requires_grad=True)
    loss, _ = dqn_loss(
        q,
        rows["action/action"],
        rows["_observation/reward"],
        rows["discount"],
        rows["_observation/terminated"],
        torch.full((n, 2), value),
        None,
        loss="mse",
    )
    loss.backward()  # type: ignore[no-untyped-call]  # torch leaves it unannotated
    assert q.grad is not None
    got = -q.grad[:, 0] * n / 2
    start = rows["observation/frame"][:, 0].long().tolist()
    want = [_naive_target(t, n_step, t_end, terminated, value, t_end + 4) for t in start]
    torch.testing.assert_close(got, torch.tensor(want), rtol=1e-5, atol=1e-5)
    assert set(start) == set(range(t_end + 4))  # every row was drawn
    # the row ending the first episode never picks anything up from the second one
    last = [g for g, t in zip(got.tolist(), start, strict=True) if t == t_end - 1]
    assert last[0] == pytest.approx(1.0 if terminated else 1.0 + GAMMA * value)


def test_the_duelling_head_and_its_acting_copy_agree() -> None:
    torch.manual_seed(0)
    env = describe_env("CartPole-v1")
    q = QNetwork(env, (16, 16), "relu", dueling=True)
    with torch.no_grad():
        q.net.layers[-1].bias.normal_()  # type: ignore[operator]  # an nn.Linear's bias
    obs = torch.randn(64, 4)
    values = q(obs)
    out = q.net(obs)
    torch.testing.assert_close(values, out[:, -1:] + out[:, :-1] - out[:, :-1].mean(1, True))
    torch.testing.assert_close(values.mean(1), out[:, -1])  # mean advantage is 0
    spec = q.actor_spec()
    assert spec.sizes == (4, 16, 16, 2)
    actor = NumpyActor(dataclasses.replace(spec, deterministic=True))
    actor.update(q.actor_weights(epsilon=0.0))
    empty = DictTensor({}, batch_shape=64)
    acted, _ = actor(empty, DictTensor({"frame": obs.numpy()}), empty)
    np.testing.assert_array_equal(acted["action"], values.argmax(1).numpy())


def test_epsilon_schedule() -> None:
    config = DQNConfig(
        total_steps=1000,
        learning_starts=100,
        exploration_fraction=0.5,
        exploration_initial_eps=1.0,
        exploration_final_eps=0.1,
    )
    assert epsilon_at(config, 50, stored=50) == 1.0  # before learning starts: random
    assert epsilon_at(config, 250, stored=250) == pytest.approx(1.0 - 0.9 * 0.5)
    assert epsilon_at(config, 500, stored=500) == pytest.approx(0.1)
    assert epsilon_at(config, 900, stored=900) == pytest.approx(0.1)
    # after a resume the buffer refills: random actions until it holds learning_starts
    assert epsilon_at(config, 900, stored=10) == 1.0
