"""Our Adam, RMSprop and clip_grad_norm_ follow torch's step by step."""

from __future__ import annotations

import pytest
import torch

from rlstructures.algos._optim import Adam, RMSprop, clip_grad_norm_


def _model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2))


@pytest.mark.parametrize("kind", ["adam", "rmsprop"])
def test_same_updates_as_torch_optim(kind: str) -> None:
    ours_model, ref_model = _model(0), _model(0)
    if kind == "adam":
        ours = Adam(ours_model.parameters(), lr=0.01, eps=1e-5)
        ref = torch.optim.Adam(ref_model.parameters(), lr=0.01, eps=1e-5)
    else:
        ours = RMSprop(ours_model.parameters(), lr=0.01, alpha=0.99, eps=1e-5)  # type: ignore[assignment]
        ref = torch.optim.RMSprop(ref_model.parameters(), lr=0.01, alpha=0.99, eps=1e-5)  # type: ignore[assignment]
    x = torch.randn(16, 3)
    for step in range(12):
        for model, opt in ((ours_model, ours), (ref_model, ref)):
            loss = model(x * (step + 1)).pow(2).mean()
            opt.zero_grad()
            loss.backward()
        norm = clip_grad_norm_(list(ours_model.parameters()), 0.3)
        ref_norm = torch.nn.utils.clip_grad_norm_(ref_model.parameters(), 0.3)
        torch.testing.assert_close(norm, ref_norm)
        ours.step()
        ref.step()
        for a, b in zip(ours_model.parameters(), ref_model.parameters(), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_state_dict_round_trip_continues_identically(tmp_path: object) -> None:
    a_model, b_model = _model(1), _model(1)
    a = Adam(a_model.parameters(), lr=0.05)
    x = torch.randn(8, 3)
    for _ in range(3):
        a.zero_grad()
        a_model(x).sum().backward()
        a.step()
    b_model.load_state_dict(a_model.state_dict())
    b = Adam(b_model.parameters(), lr=1.0)
    b.load_state_dict(a.state_dict())
    assert b.lr == 0.05
    assert b.steps == 3
    for model, opt in ((a_model, a), (b_model, b)):
        opt.zero_grad()
        model(x).sum().backward()
        opt.step()
    for p, q in zip(a_model.parameters(), b_model.parameters(), strict=True):
        torch.testing.assert_close(p, q)
    with pytest.raises(ValueError, match="does not match parameters"):
        Adam(torch.nn.Linear(2, 2).parameters()).load_state_dict(a.state_dict())
    with pytest.raises(ValueError, match="'adam'"):
        RMSprop(b_model.parameters()).load_state_dict(a.state_dict())


def test_using_them_does_not_import_dynamo() -> None:
    import subprocess
    import sys

    code = (
        "import sys, torch; from rlstructures.algos._optim import Adam\n"
        "m = torch.nn.Linear(2, 2); o = Adam(m.parameters()); m(torch.ones(1, 2)).sum()"
        ".backward(); o.step(); assert 'torch._dynamo' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
