"""rlstructures.algos.functional: the public building blocks, and examples that use only them."""

from __future__ import annotations

import ast
import pathlib

import numpy as np
import torch

import rlstructures.algos.examples as examples
from rlstructures.algos import functional
from rlstructures.algos._networks import categorical_logprob_entropy
from rlstructures.algos._returns import gae_advantages


def test_every_public_name_is_the_implementation() -> None:
    assert functional.gae_advantages is gae_advantages
    assert functional.categorical_logprob_entropy is categorical_logprob_entropy
    for name in functional.__all__:
        assert callable(getattr(functional, name)), name


def test_categorical_matches_torch_distributions() -> None:
    logits = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    actions = torch.tensor([0, 2, 1, 1, 0])
    logp, entropy = functional.categorical_logprob_entropy(logits, actions)
    ref = torch.distributions.Categorical(logits=logits)
    torch.testing.assert_close(logp, ref.log_prob(actions))  # type: ignore[no-untyped-call]  # torch leaves it unannotated
    torch.testing.assert_close(entropy, ref.entropy())  # type: ignore[no-untyped-call]


def test_gae_with_lambda_one_is_the_discounted_return_minus_values() -> None:
    rng = np.random.default_rng(0)
    rewards = rng.random((2, 6)).astype(np.float32)
    values, next_values = rng.random((2, 2, 6)).astype(np.float32)
    done = np.zeros((2, 6), np.bool_)
    done[0, 2] = True
    # V(s'_t) is V(s_{t+1}) within an episode (its kept final observation's value at an end)
    next_values[:, :-1] = np.where(done[:, :-1], next_values[:, :-1], values[:, 1:])
    terminated = done.copy()
    advantages = functional.gae_advantages(
        rewards, values, next_values, terminated, done, gamma=0.9, lam=1.0
    )
    returns = functional.discounted_returns(rewards, next_values, terminated, done, gamma=0.9)
    np.testing.assert_allclose(advantages, returns - values, rtol=1e-5, atol=1e-6)


def test_the_examples_import_nothing_private_from_the_algos_package() -> None:
    folder = pathlib.Path(examples.__file__).parent
    private = []
    for path in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                parts = node.module.split(".")
                if parts[:2] == ["rlstructures", "algos"] and any(
                    p.startswith("_") for p in parts[2:]
                ):
                    private.append(f"{path.name}: from {node.module}")
    assert not private, private
