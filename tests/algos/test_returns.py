"""Returns math: property tests against naive loops, and the truncation/termination rules."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from rlstructures.algos._returns import discounted_returns, gae_advantages, nstep_returns

F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]
Arr = npt.NDArray[Any]


@st.composite
def rollouts(draw: st.DrawFn) -> dict[str, Any]:
    """A [B, T] rollout: rewards, values, next values, terminated, done, mask, gamma, lam."""
    b = draw(st.integers(1, 4))
    t = draw(st.integers(1, 7))
    floats = st.floats(-10, 10, allow_nan=False, width=32)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    terminated = rng.random((b, t)) < draw(st.sampled_from([0.0, 0.2, 0.5]))
    truncated = rng.random((b, t)) < draw(st.sampled_from([0.0, 0.2, 0.5]))
    lengths = rng.integers(0, t + 1, b) if draw(st.booleans()) else np.full(b, t)
    return {
        "rewards": rng.uniform(-5, 5, (b, t)),
        "values": rng.uniform(-5, 5, (b, t)),
        "next_values": rng.uniform(-5, 5, (b, t)),
        "terminated": terminated,
        "done": terminated | truncated,
        "mask": np.arange(t)[None, :] < lengths[:, None],
        "gamma": draw(st.sampled_from([0.0, 0.5, 0.9, 0.99, 1.0])),
        "lam": draw(st.sampled_from([0.0, 0.5, 0.95, 1.0])),
        "n": draw(st.integers(1, 5)),
        "unused": draw(floats),
    }


def naive_gae(r: F64, v: F64, nv: F64, term: B, done: B, mask: B, gamma: float, lam: float) -> F64:
    """Per element, straight from the definition, walking each sequence backwards."""
    out = np.zeros_like(r)
    for b in range(r.shape[0]):
        length = int(mask[b].sum())
        following = 0.0
        for t in reversed(range(length)):
            delta = r[b, t] + gamma * (0.0 if term[b, t] else nv[b, t]) - v[b, t]
            if done[b, t] or t == length - 1:
                following = 0.0
            following = delta + gamma * lam * following
            out[b, t] = following
    return out


def naive_discounted(r: F64, nv: F64, term: B, done: B, mask: B, gamma: float) -> F64:
    out = np.zeros_like(r)
    for b in range(r.shape[0]):
        length = int(mask[b].sum())
        for t in range(length):
            total, discount, k = 0.0, 1.0, t
            while True:
                total += discount * r[b, k]
                if term[b, k]:
                    break
                if done[b, k] or k == length - 1:
                    total += discount * gamma * nv[b, k]
                    break
                discount *= gamma
                k += 1
            out[b, t] = total
    return out


def naive_nstep(r: F64, nv: F64, term: B, done: B, mask: B, gamma: float, n: int) -> F64:
    out = np.zeros_like(r)
    for b in range(r.shape[0]):
        length = int(mask[b].sum())
        for t in range(length):
            total = 0.0
            for k in range(n):
                total += gamma**k * r[b, t + k]
                last = t + k
                if done[b, last] or last == length - 1 or k == n - 1:
                    if not term[b, last]:
                        total += gamma ** (k + 1) * nv[b, last]
                    break
            out[b, t] = total
    return out


def _args(x: dict[str, Any]) -> tuple[Any, ...]:
    mask = None if x["mask"].all() else x["mask"]
    return x["rewards"], x["next_values"], x["terminated"], x["done"], mask


@given(rollouts())
def test_gae_matches_a_naive_loop(x: dict[str, Any]) -> None:
    r, nv, term, done, mask = _args(x)
    got = gae_advantages(r, x["values"], nv, term, done, gamma=x["gamma"], lam=x["lam"], mask=mask)
    want = naive_gae(r, x["values"], nv, term, done, x["mask"], x["gamma"], x["lam"])
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


@given(rollouts())
def test_discounted_returns_match_a_naive_loop_and_gae_with_lambda_1(x: dict[str, Any]) -> None:
    r, nv, term, done, mask = _args(x)
    got = discounted_returns(r, nv, term, done, gamma=x["gamma"], mask=mask)
    want = naive_discounted(r, nv, term, done, x["mask"], x["gamma"])
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
    # with consistent values (V(s'_t) = V(s_{t+1}) inside an episode), GAE(lambda=1) + V = G
    v = x["values"]
    consistent = nv.copy()
    consistent[:, :-1] = np.where(done[:, :-1], nv[:, :-1], v[:, 1:])
    got = discounted_returns(r, consistent, term, done, gamma=x["gamma"], mask=mask)
    gae = gae_advantages(r, v, consistent, term, done, gamma=x["gamma"], lam=1.0, mask=mask)
    np.testing.assert_allclose(got, (gae + v) * x["mask"], rtol=1e-7, atol=1e-7)


@given(rollouts())
def test_nstep_returns_match_a_naive_loop(x: dict[str, Any]) -> None:
    r, nv, term, done, mask = _args(x)
    got = nstep_returns(r, nv, term, done, gamma=x["gamma"], n=x["n"], mask=mask)
    want = naive_nstep(r, nv, term, done, x["mask"], x["gamma"], x["n"])
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


@given(rollouts())
def test_torch_and_numpy_agree(x: dict[str, Any]) -> None:
    r, nv, term, done, mask = _args(x)
    tr, tv, tnv, tterm, tdone = (torch.from_numpy(a) for a in (r, x["values"], nv, term, done))
    tmask = None if mask is None else torch.from_numpy(mask)
    got = gae_advantages(tr, tv, tnv, tterm, tdone, gamma=x["gamma"], lam=x["lam"], mask=tmask)
    assert isinstance(got, torch.Tensor)
    want = gae_advantages(r, x["values"], nv, term, done, gamma=x["gamma"], lam=x["lam"], mask=mask)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-9, atol=1e-9)
    got_n = nstep_returns(tr, tnv, tterm, tdone, gamma=x["gamma"], n=x["n"], mask=tmask)
    np.testing.assert_allclose(
        got_n.numpy(), nstep_returns(r, nv, term, done, gamma=x["gamma"], n=x["n"], mask=mask)
    )


# --- the rules, on hand-made rollouts ------------------------------------------------
GAMMA = 0.9
V_FINAL = 7.0  # V(s_T): the value of the kept final observation


def _constant_reward_episode(t_len: int, *, terminated: bool) -> tuple[F64, F64, B, B]:
    """Reward 1 at every step of one episode of t_len steps that ends at its last step."""
    r = np.ones((1, t_len))
    nv = np.full((1, t_len), 3.0)  # V of intermediate next observations
    nv[0, -1] = V_FINAL
    term = np.zeros((1, t_len), bool)
    done = np.zeros((1, t_len), bool)
    done[0, -1] = True
    term[0, -1] = terminated
    return r, nv, term, done


@pytest.mark.parametrize("fn", ["gae", "discounted", "nstep1", "nstep3"])
def test_truncation_bootstraps_from_the_final_observation(fn: str) -> None:
    r, nv, term, done = _constant_reward_episode(4, terminated=False)
    target = _target(fn, r, nv, term, done)
    assert target[0, -1] == pytest.approx(1.0 + GAMMA * V_FINAL)  # not 1


@pytest.mark.parametrize("fn", ["gae", "discounted", "nstep1", "nstep3"])
def test_termination_never_bootstraps(fn: str) -> None:
    r, nv, term, done = _constant_reward_episode(4, terminated=True)
    target = _target(fn, r, nv, term, done)
    assert target[0, -1] == pytest.approx(1.0)


@pytest.mark.parametrize("fn", ["gae", "discounted", "nstep1", "nstep3"])
def test_nothing_leaks_across_an_auto_reset(fn: str) -> None:
    # episode A (3 steps, truncated) then episode B (3 steps) in one row of 6 steps
    r, nv, term, done = _constant_reward_episode(3, terminated=False)
    r2 = np.concatenate([r, np.full((1, 3), 100.0)], axis=1)  # huge rewards in episode B
    nv2 = np.concatenate([nv, np.full((1, 3), 1000.0)], axis=1)
    term2 = np.concatenate([term, np.zeros((1, 3), bool)], axis=1)
    done2 = np.concatenate([done, np.zeros((1, 3), bool)], axis=1)
    both = _target(fn, r2, nv2, term2, done2)
    alone = _target(fn, r, nv, term, done)
    np.testing.assert_allclose(both[:, :3], alone)  # episode A's targets see nothing of B


def _target(fn: str, r: Arr, nv: Arr, term: Arr, done: Arr) -> Arr:
    """The value target of each step (advantage + value for GAE, with V(s_t) = 0)."""
    if fn == "gae":
        return gae_advantages(r, 0 * r, nv, term, done, gamma=GAMMA, lam=0.95)
    if fn == "discounted":
        return discounted_returns(r, nv, term, done, gamma=GAMMA)
    return nstep_returns(r, nv, term, done, gamma=GAMMA, n=int(fn[-1]))


def test_a_slice_cut_mid_episode_bootstraps_from_the_last_next_value() -> None:
    r = np.ones((1, 3))
    nv = np.array([[0.0, 0.0, 5.0]])
    no = np.zeros((1, 3), bool)
    got = discounted_returns(r, nv, no, no, gamma=0.5)
    np.testing.assert_allclose(got, [[1 + 0.5 + 0.25 + 0.125 * 5, 1 + 0.5 + 0.25 * 5, 1 + 0.5 * 5]])


def test_shape_errors_name_the_argument() -> None:
    r = np.ones((2, 3))
    with pytest.raises(ValueError, match="next_values has shape"):
        discounted_returns(r, np.ones((2, 2)), r > 0, r > 0, gamma=0.9)
    with pytest.raises(ValueError, match="n must be >= 1"):
        nstep_returns(r, r, r > 0, r > 0, gamma=0.9, n=0)
