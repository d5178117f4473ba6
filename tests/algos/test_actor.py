"""NumpyActor computes what the torch networks compute (the workers act as the learner sees)."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from rlstructures.algos._actor import ActorSpec, NumpyActor
from rlstructures.algos._envs import EnvInfo
from rlstructures.algos._networks import MLP, ActorCritic, actor_weights
from rlstructures.dicttensor import DictTensor

DISCRETE = EnvInfo("X", (4,), 4, False, "discrete", 3, (), (), (), 100)
BOX = EnvInfo("Y", (3,), 3, False, "box", 0, (2,), (-1.0, -2.0), (1.0, 2.0), 100)
ONE_HOT = EnvInfo("Z", (), 5, True, "discrete", 2, (), (), (), 100)


def _act(actor: NumpyActor, frame: np.ndarray) -> DictTensor:
    n = len(frame)
    out, state = actor(
        DictTensor({}, batch_shape=n), DictTensor({"frame": frame}), DictTensor({}, batch_shape=n)
    )
    assert not state.keys()
    return out


@pytest.mark.parametrize("env", [DISCRETE, BOX, ONE_HOT])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_stored_logprob_equals_the_learners(env: EnvInfo, activation: str) -> None:
    torch.manual_seed(0)
    model = ActorCritic(env, (16, 8), activation, log_std_init=-0.5)  # type: ignore[arg-type]
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.7)  # away from the tiny initial policy head
    actor = NumpyActor(model.actor_spec())
    actor.seed(3)
    actor.update(model.actor_weights())
    rng = np.random.default_rng(0)
    if env.obs_discrete:
        frame = rng.integers(0, env.obs_dim, 64)
    else:
        frame = rng.normal(size=(64, *env.obs_shape)).astype(np.float32)
    out = _act(actor, frame)
    from rlstructures.algos._networks import observation_tensor

    obs = observation_tensor(torch.from_numpy(frame), env)
    stored = out["sample"] if env.action_kind == "box" else out["action"]
    logprob, _ = model.logprob_entropy(
        obs,
        torch.from_numpy(stored).reshape(64, -1).squeeze(-1)
        if env.action_kind == "discrete"
        else torch.from_numpy(stored).reshape(64, -1),
    )
    np.testing.assert_allclose(out["logprob"], logprob.detach().numpy(), rtol=1e-4, atol=1e-5)
    if env.action_kind == "box":
        assert out["action"].shape == (64, 2)
        assert out["action"].dtype == np.float32
        assert np.all(out["action"] >= np.array(env.action_low, np.float32))
        assert np.all(out["action"] <= np.array(env.action_high, np.float32))
        np.testing.assert_array_equal(
            out["action"], np.clip(out["sample"], env.action_low, env.action_high)
        )
    else:
        assert out["action"].dtype == np.int64


def test_deterministic_actions_are_the_modes() -> None:
    torch.manual_seed(1)
    net = MLP((4, 8, 3), "tanh", output_gain=1.0)
    spec = ActorSpec(head="categorical", sizes=(4, 8, 3), deterministic=True)
    actor = NumpyActor(spec)
    actor.update(actor_weights(net))
    frame = np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32)
    out = _act(actor, frame)
    assert list(out.keys()) == ["action"]
    np.testing.assert_array_equal(out["action"], net(torch.from_numpy(frame)).argmax(1).numpy())


def test_categorical_sampling_follows_the_probabilities() -> None:
    spec = ActorSpec(head="categorical", sizes=(1, 3))
    actor = NumpyActor(spec)
    actor.update(
        {
            "layer0.weight": np.zeros((3, 1), np.float32),
            "layer0.bias": np.log(np.array([0.2, 0.3, 0.5], np.float32)),
        }
    )
    actions = _act(actor, np.zeros((20000, 1), np.float32))["action"]
    freq = np.bincount(actions, minlength=3) / len(actions)
    np.testing.assert_allclose(freq, [0.2, 0.3, 0.5], atol=0.015)


def test_squashed_gaussian_and_epsilon_greedy_heads() -> None:
    spec = ActorSpec(
        head="squashed_gaussian",
        sizes=(2, 2),
        action_low=(-2.0,),
        action_high=(2.0,),
        action_shape=(1,),
    )
    actor = NumpyActor(spec)
    actor.update(
        {
            "layer0.weight": np.zeros((2, 2), np.float32),
            "layer0.bias": np.array([0.5, -30.0], np.float32),
        }
    )  # log_std clipped to -20
    out = _act(actor, np.zeros((5, 2), np.float32))
    np.testing.assert_allclose(out["action"], 2 * np.tanh(0.5), rtol=1e-5)
    np.testing.assert_allclose(out["squashed"], np.tanh(0.5), rtol=1e-5)
    greedy = NumpyActor(ActorSpec(head="epsilon_greedy", sizes=(2, 4)))
    weights = {
        "layer0.weight": np.zeros((4, 2), np.float32),
        "layer0.bias": np.array([0, 0, 1, 0], np.float32),
        "epsilon": np.float32(0.0),
    }
    greedy.update(weights)
    assert set(_act(greedy, np.zeros((50, 2), np.float32))["action"]) == {2}
    greedy.update({**weights, "epsilon": np.float32(1.0)})
    assert len(set(_act(greedy, np.zeros((200, 2), np.float32))["action"])) == 4


def test_acting_modules_do_not_import_torch() -> None:
    code = (
        "import sys, rlstructures.algos, rlstructures.algos._actor, rlstructures.algos._envs,"
        " rlstructures.algos._evaluation; assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_before_any_update_the_policy_is_uniform() -> None:
    actor = NumpyActor(ActorSpec(head="categorical", sizes=(4, 8, 2)))
    out = _act(actor, np.ones((3, 4), np.float32))
    np.testing.assert_allclose(out["logprob"], math.log(0.5), rtol=1e-6)
