"""Optimiser-side helpers the agents share.

:func:`clip_grad_norm` is ``torch.nn.utils.clip_grad_norm_`` (2-norm, foreach) over a list of
parameters built once: torch's version walks ``module.parameters()`` and groups the gradients by
device and dtype on every call, which took half of its 190 us per gradient step on a 64-64
actor-critic (CPU, 1 thread); this one takes 90 us and gives the same numbers bit for bit
(``tests/test_optim.py``).

:class:`Adam` and :class:`RMSprop` are torch's optimisers (their state, ``state_dict`` and
parameter groups unchanged) whose ``step`` calls the same kernels torch calls (``_fused_adam_``;
RMSprop's foreach sequence) on lists built once, instead of regrouping the parameters, gradients
and state on every call: on a 64-64 actor-critic Adam's step takes 48 us against torch's 74,
RMSprop's 60 against 155 (``benchmarks/bench_grad_step.py``). Anything but the plain case
(several groups, a closure, momentum, centred, weight decay, amsgrad, a missing gradient, the
very first step) goes through torch's own ``step``. Both give torch's numbers bit for bit
(``tests/test_optim.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["Adam", "RMSprop", "clip_grad_norm"]


def clip_grad_norm(params: Sequence[torch.Tensor], max_norm: float) -> torch.Tensor:
    """Scale the gradients of ``params`` in place so that their global 2-norm is at most
    ``max_norm``; return the norm before clipping (a 0-d tensor, no host sync).

    g <- g * min(1, max_norm / (||g||_2 + 1e-6)), where ||g||_2 is the norm of all gradients
    concatenated (docs/guide/performance.md, eq. (1)): torch's ``clip_grad_norm_`` rule.
    All ``params`` are on one device (one agent's network). Gradients that tile one flat buffer
    (``rlcore.handgrad.GradBuffer``: every one a view of the same 1-D tensor, together its whole
    length) are read and scaled as that one tensor.
    """
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    flat = grads[0]._base
    if (flat is not None and flat.dim() == 1 and all(g._base is flat for g in grads)
            and sum(g.numel() for g in grads) == flat.numel()):
        total = torch.linalg.vector_norm(flat)
        flat.mul_(torch.clamp(max_norm / (total + 1e-6), max=1.0))
        return total
    total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    torch._foreach_mul_(grads, coef)
    return total


class _ListStep:
    """The list cache behind :class:`Adam` and :class:`RMSprop`'s fast ``step``."""

    _BASE: type[torch.optim.Optimizer]
    _STATE: tuple[str, ...] = ()
    _lists: list[list[torch.Tensor]] | None = None

    def _plain(self) -> bool:
        return False

    def _cached(self) -> list[list[torch.Tensor]] | None:
        """[params, *state tensors by name] of the one group, or None before the first step."""
        if self._lists is None:
            params = self.param_groups[0]["params"]
            if not all(p in self.state and "step" in self.state[p] for p in params):
                return None
            self._lists = [list(params), *([self.state[p][k] for p in params]
                                           for k in self._STATE)]
        return self._lists

    def load_state_dict(self, state_dict) -> None:
        """torch's, then rebuild the lists (the state tensors were replaced)."""
        super().load_state_dict(state_dict)
        self._lists = None

    @torch.no_grad()
    def step(self, closure=None):
        """One step: the kernel on the cached lists in the plain case, torch's ``step``
        otherwise."""
        lists = self._cached() if closure is None and self._plain() else None
        grads = None if lists is None else [p.grad for p in lists[0]]
        if lists is None or any(g is None for g in grads):
            return self._torch_step(closure)
        self._kernel(self.param_groups[0], lists, grads)
        return None

    def _torch_step(self, closure):
        """torch's ``step`` without its hook wrapper: this class's ``step`` is wrapped already,
        and step pre-hooks (continual learning's Fisher meter and anchor) must run once."""
        base = self._BASE.step
        if getattr(base, "hooked", False):
            base = base.__wrapped__
        return base(self, closure)


class Adam(_ListStep, torch.optim.Adam):
    """``torch.optim.Adam(fused=True)`` with a step that skips the per-call regrouping."""

    _BASE = torch.optim.Adam
    _STATE = ("exp_avg", "exp_avg_sq", "step")

    def __init__(self, params, **kwargs):
        super().__init__(params, fused=True, **kwargs)

    def _plain(self) -> bool:
        g = self.param_groups[0]
        return (len(self.param_groups) == 1 and not g["amsgrad"] and not g["maximize"]
                and not g["weight_decay"] and not g["differentiable"]
                and not isinstance(g["lr"], torch.Tensor))

    def _kernel(self, g, lists, grads) -> None:
        params, exp_avgs, exp_avg_sqs, steps = lists
        beta1, beta2 = g["betas"]
        torch._foreach_add_(steps, 1)
        torch._fused_adam_(params, grads, exp_avgs, exp_avg_sqs, [], steps, amsgrad=False,
                           lr=g["lr"], beta1=beta1, beta2=beta2, weight_decay=0.0, eps=g["eps"],
                           maximize=False, grad_scale=None, found_inf=None)


class RMSprop(_ListStep, torch.optim.RMSprop):
    """``torch.optim.RMSprop(foreach=True)`` with a step that skips the per-call regrouping."""

    _BASE = torch.optim.RMSprop
    _STATE = ("square_avg", "step")

    def __init__(self, params, **kwargs):
        super().__init__(params, foreach=True, **kwargs)
        self._one, self._zero = torch.tensor(1.0), torch.tensor(0.0)
        self._flat: tuple | None = None

    def _plain(self) -> bool:
        g = self.param_groups[0]
        return (len(self.param_groups) == 1 and not g["momentum"] and not g["centered"]
                and not g["weight_decay"] and not g["maximize"] and not g["differentiable"]
                and not g["capturable"] and not isinstance(g["lr"], torch.Tensor)
                and g["params"][0].is_cpu)

    def _kernel(self, g, lists, grads) -> None:
        # torch's _multi_tensor_rmsprop, plain case: v <- alpha v + (1 - alpha) g^2,
        # p <- p + (-lr) g / (sqrt(v) + eps); on the CPU torch's foreach operations loop over
        # the tensors one by one, so the square averages live in one flat buffer (their
        # per-parameter state entries are views of it) and the arithmetic runs on it at once
        params, square_avgs, steps = lists
        if self._flat is None or self._flat[0] is not square_avgs:
            self._flatten(params, square_avgs)
        _, v, flat_g, g_views, delta, delta_views = self._flat
        alpha = g["alpha"]
        torch._foreach_add_(steps, self._one, alpha=1.0)
        torch._foreach_copy_(g_views, grads)
        v.mul_(alpha).addcmul_(flat_g, flat_g, value=1 - alpha)
        torch.addcdiv(self._zero, flat_g, v.sqrt().add_(g["eps"]), value=-g["lr"], out=delta)
        torch._foreach_add_(params, delta_views)

    def _flatten(self, params, square_avgs) -> None:
        """Move the square averages into one flat buffer (values kept); gradient and update
        buffers beside it, with per-parameter views."""
        v = torch.cat([t.reshape(-1) for t in square_avgs])
        views = _views(v, params)
        for p, view in zip(params, views):
            self.state[p]["square_avg"] = view
        square_avgs[:] = views
        flat_g, delta = torch.empty_like(v), torch.empty_like(v)
        self._flat = (square_avgs, v, flat_g, _views(flat_g, params), delta,
                      _views(delta, params))


def _views(flat: torch.Tensor, like: list[torch.Tensor]) -> list[torch.Tensor]:
    """Views of consecutive pieces of ``flat`` shaped as the tensors of ``like``."""
    out, i = [], 0
    for t in like:
        out.append(flat[i:i + t.numel()].view_as(t))
        i += t.numel()
    return out
