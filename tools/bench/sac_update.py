"""Where one SAC gradient step's time goes (learner side, one torch thread, CPU).

Times, per update, over ``--updates`` updates on a replay buffer of Pendulum-sized rows:
drawing and converting the batch, the target (no-grad forwards), the forwards with
gradients, the backward pass, the Adam step and the Polyak averaging; then the same
update through ``sac._update`` as training calls it, and, for comparison, the twin Q as
two separate MLPs (two ``nn.Linear`` chains) instead of the fused batched module.

    python tools/bench/sac_update.py --updates 500
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from rlstructures.algos import sac
from rlstructures.algos._envs import describe_env
from rlstructures.algos._optim import Adam
from rlstructures.algos._replay_buffer import ReplayBuffer
from rlstructures.dicttensor import TemporalDictTensor


def _buffer(rows: int) -> ReplayBuffer:
    rng = np.random.default_rng(0)
    buffer = ReplayBuffer(rows, keys=("observation/frame", "action/squashed", "_observation/frame"))
    buffer.add(
        TemporalDictTensor(
            {
                "observation/frame": rng.standard_normal((1, rows, 3), np.float32),
                "action/squashed": rng.uniform(-1, 1, (1, rows, 1)).astype(np.float32),
                "_observation/frame": rng.standard_normal((1, rows, 3), np.float32),
                "_observation/reward": rng.standard_normal((1, rows)).astype(np.float32),
                "_observation/terminated": np.zeros((1, rows), bool),
                "_observation/done": np.zeros((1, rows), bool),
            }
        )
    )
    return buffer


def _median_us(fn: Callable[[], object], n: int) -> float:
    for _ in range(max(n // 10, 5)):
        fn()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--updates", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    env, device = describe_env("Pendulum-v1"), torch.device("cpu")
    agent = sac.SACAgent(env, args.hidden, "relu")
    optimizer = Adam(agent.learned(), lr=1e-3)
    targets: tuple[list[torch.Tensor], list[torch.Tensor]] = (
        list(agent.q_target.parameters()),
        list(agent.q.parameters()),
    )
    buffer = _buffer(10_000)
    n = args.updates

    def draw() -> dict[str, torch.Tensor]:
        return sac._batch(buffer.sample(args.batch_size, gamma=0.99), env, device)

    batch = draw()

    def target() -> torch.Tensor:
        with torch.no_grad():
            next_action, next_logprob = sac.squashed_sample(agent.policy_out(batch["next_obs"]))
            next_q = agent.q_target(batch["next_obs"], next_action)
            return sac.soft_q_target(
                batch["reward"],
                batch["discount"],
                batch["terminated"],
                next_q,
                next_logprob,
                agent.log_alpha.exp(),
            )

    y = target()

    def forward() -> torch.Tensor:
        q = agent.q(batch["obs"], batch["action"])
        action, logprob = sac.squashed_sample(agent.policy_out(batch["obs"]))
        q_pi = agent.q(batch["obs"], action, detach_weights=True)
        return sac.sac_loss(q, y, q_pi, logprob, agent.log_alpha, -1.0)[0]

    def backward() -> None:
        optimizer.zero_grad()
        forward().backward()  # type: ignore[no-untyped-call]

    def polyak() -> None:
        with torch.no_grad():
            torch._foreach_lerp_(targets[0], targets[1], 0.005)

    def update() -> None:
        sac._update(agent, optimizer, draw(), target_entropy=-1.0, tau=0.005, target_params=targets)

    rows = {
        "draw the batch (numpy) and make tensors": _median_us(draw, n),
        "target: policy(s') and target twin Q (no grad)": _median_us(target, n),
        "forwards with gradients and the loss": _median_us(forward, n),
        "forwards + backward": _median_us(backward, n),
        "Adam step (foreach, all parameters)": _median_us(optimizer.step, n),
        "Polyak averaging (foreach lerp)": _median_us(polyak, n),
        "one whole update (sac._update, batch drawn)": _median_us(update, n),
    }
    # the twin as two separate MLPs, for comparison with the fused module
    sizes = (4, *args.hidden, 1)
    nets = [torch.nn.Sequential() for _ in range(2)]
    for net in nets:
        for i, (a, b) in enumerate(itertools.pairwise(sizes)):
            net.append(torch.nn.Linear(a, b))
            if i < len(sizes) - 2:
                net.append(torch.nn.ReLU())
    x = torch.cat((batch["obs"], batch["action"]), dim=-1)

    def two_mlps() -> None:
        sum(net(x).pow(2).mean() for net in nets).backward()

    def fused() -> None:
        agent.q(batch["obs"], batch["action"]).pow(2).mean(dim=1).sum().backward()

    rows["twin Q forward+backward: fused (baddbmm)"] = _median_us(fused, n)
    rows["twin Q forward+backward: two nn.Linear MLPs"] = _median_us(two_mlps, n)
    print(f"SAC update, batch {args.batch_size}, hidden {args.hidden}, 1 thread, median us:")
    for name, us in rows.items():
        print(f"  {name:<48} {us:8.0f}")


if __name__ == "__main__":
    main()
