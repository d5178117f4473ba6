"""Adam and RMSprop with PyTorch's update rules, without ``torch.optim``.

Why not ``torch.optim``: constructing any of its optimizers imports ``torch._dynamo``
(about 0.9 s on the reference machine, a third of the time A2C needs to solve CartPole),
and its per-parameter loop costs more than the foreach update for small networks. These
follow ``torch.optim.Adam`` (no weight decay, no amsgrad) and ``torch.optim.RMSprop``
(not centred, no momentum) exactly; ``tests/algos/test_optim.py`` compares them step by
step. ``state_dict()`` holds tensors and numbers only (``torch.load(weights_only=True)``).

`clip_grad_norm_` is ``torch.nn.utils.clip_grad_norm_`` with foreach operations.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

__all__ = ["Adam", "RMSprop", "clip_grad_norm_"]


class _Optimizer:
    """What both share: the parameters, ``lr``, ``zero_grad``, the state's save and load."""

    _buffers: tuple[str, ...] = ()
    kind = ""

    def __init__(self, params: Iterable[torch.Tensor], lr: float) -> None:
        self.params = [p for p in params if p.requires_grad]
        if not self.params:
            raise ValueError("the optimizer got no parameter that requires a gradient.")
        self.lr = float(lr)
        self.steps = 0
        self.state: dict[str, list[torch.Tensor]] = {
            name: [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
            for name in self._buffers
        }

    def zero_grad(self) -> None:
        """Drop the gradients (set them to None, as ``torch.optim`` does by default)."""
        for p in self.params:
            p.grad = None

    def _grads(self) -> tuple[list[torch.Tensor], list[torch.Tensor], list[int]]:
        index = [i for i, p in enumerate(self.params) if p.grad is not None]
        grads = [g for i in index if (g := self.params[i].grad) is not None]
        return [self.params[i] for i in index], grads, index

    def state_dict(self) -> dict[str, Any]:
        """``{"kind", "lr", "steps", <buffer name>: [tensors]}``."""
        buffers = {k: list(v) for k, v in self.state.items()}
        return {"kind": self.kind, "lr": self.lr, "steps": self.steps, **buffers}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a ``state_dict()`` of an optimizer over parameters of the same shapes.

        Raises:
            ValueError: another optimizer's state, or other parameter shapes.
        """
        if state_dict.get("kind") != self.kind:
            raise ValueError(
                f"the optimizer state is {state_dict.get('kind')!r}'s, not {self.kind!r}'s."
            )
        for name in self._buffers:
            saved = state_dict.get(name)
            shapes = [tuple(p.shape) for p in self.params]
            if not isinstance(saved, list) or [tuple(t.shape) for t in saved] != shapes:
                raise ValueError(
                    f"optimizer state {name!r} does not match parameters of shapes {shapes}."
                )
            self.state[name] = [
                t.to(p.device, p.dtype, copy=True) for t, p in zip(saved, self.params, strict=True)
            ]
        self.lr = float(state_dict["lr"])
        self.steps = int(state_dict["steps"])


class Adam(_Optimizer):
    """``torch.optim.Adam(params, lr, betas, eps)`` (no weight decay, no amsgrad).

    Example:
        >>> w = torch.nn.Parameter(torch.tensor([1.0]))
        >>> opt = Adam([w], lr=0.1)
        >>> (w * 2).sum().backward()
        >>> opt.step()
        >>> w.data
        tensor([0.9000])
    """

    _buffers = ("exp_avg", "exp_avg_sq")
    kind = "adam"

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        super().__init__(params, lr)
        self.betas, self.eps = betas, float(eps)

    @torch.no_grad()
    def step(self) -> None:
        """One update of every parameter that has a gradient."""
        params, grads, index = self._grads()
        if not params:
            return
        self.steps += 1
        beta1, beta2 = self.betas
        exp_avg = [self.state["exp_avg"][i] for i in index]
        exp_avg_sq = [self.state["exp_avg_sq"][i] for i in index]
        torch._foreach_lerp_(exp_avg, grads, 1.0 - beta1)
        torch._foreach_mul_(exp_avg_sq, beta2)
        torch._foreach_addcmul_(exp_avg_sq, grads, grads, 1.0 - beta2)
        bias1 = 1.0 - beta1**self.steps
        bias2_sqrt = math.sqrt(1.0 - beta2**self.steps)
        denom = torch._foreach_sqrt(exp_avg_sq)
        torch._foreach_div_(denom, bias2_sqrt)
        torch._foreach_add_(denom, self.eps)
        torch._foreach_addcdiv_(params, exp_avg, denom, -self.lr / bias1)


class RMSprop(_Optimizer):
    """``torch.optim.RMSprop(params, lr, alpha, eps)`` (not centred, no momentum).

    stable-baselines3's A2C uses it with ``alpha=0.99, eps=1e-5``.
    """

    _buffers = ("square_avg",)
    kind = "rmsprop"

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
    ) -> None:
        super().__init__(params, lr)
        self.alpha, self.eps = float(alpha), float(eps)

    @torch.no_grad()
    def step(self) -> None:
        """One update of every parameter that has a gradient."""
        params, grads, index = self._grads()
        if not params:
            return
        self.steps += 1
        square_avg = [self.state["square_avg"][i] for i in index]
        torch._foreach_mul_(square_avg, self.alpha)
        torch._foreach_addcmul_(square_avg, grads, grads, 1.0 - self.alpha)
        denom = torch._foreach_sqrt(square_avg)
        torch._foreach_add_(denom, self.eps)
        torch._foreach_addcdiv_(params, grads, denom, -self.lr)


@torch.no_grad()
def clip_grad_norm_(params: Iterable[torch.Tensor], max_norm: float) -> torch.Tensor:
    """Scale the gradients so that their global L2 norm is at most ``max_norm``.

    Returns:
        The norm before clipping (a 0-d tensor), as ``torch.nn.utils.clip_grad_norm_``.
    """
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    norms = torch._foreach_norm(grads)
    total: torch.Tensor = torch.linalg.vector_norm(torch.stack(norms))
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    torch._foreach_mul_(grads, coef)
    return total
