"""Optimiser-side helpers the agents share.

:func:`clip_grad_norm` is ``torch.nn.utils.clip_grad_norm_`` (2-norm, foreach) over a list of
parameters built once: torch's version walks ``module.parameters()`` and groups the gradients by
device and dtype on every call, which took half of its 190 us per gradient step on a 64-64
actor-critic (CPU, 1 thread); this one takes 90 us and gives the same numbers bit for bit
(``tests/test_optim.py``).

:class:`Adam` and :class:`RMSprop` are torch's optimisers (their state, ``state_dict`` and
parameter groups unchanged) whose ``step`` calls the same kernels torch calls (``_fused_adam_``;
RMSprop's arithmetic) once over the whole network: on the CPU the parameters and the optimiser's
state move into one flat buffer each on the first fast step (every ``param.data`` and state entry
a view of it, values kept), so the kernel runs on one tensor of all the weights instead of one
call per tensor; gradients that already tile one buffer in the same order
(``rlcore.handgrad.GradBuffer``) are read in place, others are copied into a flat scratch
buffer. The step also skips torch's profiling wrapper (a ``record_function`` per call) unless a
step hook is registered or the profiler runs. On the 12 tensors of a 64-64 actor-critic Adam's
step takes 30 us against torch's fused Adam's 122, RMSprop's 36 against torch's foreach 172
(``benchmarks/bench_grad_step.py``, commit ``732f460``). Anything but the plain case
(several groups, a closure, momentum, centred, weight decay, amsgrad, a missing gradient, the
very first step) goes through torch's own ``step``. RMSprop gives torch's numbers bit for bit;
Adam's to the last bit of some elements: torch's fused CPU kernel rounds its vectorised body and
its scalar tail differently, and one flat tensor moves elements from one to the other
(``tests/test_optim.py``: within 1e-6 of the step size after 20 steps). The parameters stay
the same ``Parameter`` objects; only a tensor taken from ``param.data`` before the first fast
step keeps pointing at the old storage.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.optim.optimizer import _global_optimizer_post_hooks as _GLOBAL_POST_HOOKS
from torch.optim.optimizer import _global_optimizer_pre_hooks as _GLOBAL_PRE_HOOKS

__all__ = ["Adam", "RMSprop", "clip_grad_norm", "flat_views", "tiled_base"]


def clip_grad_norm(params: Sequence[torch.Tensor], max_norm: float) -> torch.Tensor:
    """Scale the gradients of ``params`` in place so that their global 2-norm is at most
    ``max_norm``; return the norm before clipping (a 0-d tensor, no host sync).

    g <- g * min(1, max_norm / (||g||_2 + 1e-6)), where ||g||_2 is the norm of all gradients
    concatenated (docs/guide/performance.md, eq. (1)): torch's ``clip_grad_norm_`` rule.
    All ``params`` are on one device (one agent's network). Gradients that tile one flat buffer
    (``rlcore.handgrad.GradBuffer``: every one a view of the same 1-D tensor, together its whole
    length) are read and scaled as that one tensor. On the CPU, in float32, the factor is
    computed in scalars (:func:`_clip_coef`, the same number) and the scaling is skipped when
    it is 1 (reading it costs no device sync there; multiplying by 1 changes nothing).
    """
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    flat = tiled_base(grads)
    total = torch.linalg.vector_norm(flat if flat is not None
                                     else torch.stack(torch._foreach_norm(grads)))
    if total.is_cpu and total.dtype == torch.float32:
        coef = _clip_coef(total.item(), max_norm)
        if coef == 1.0:
            return total
        coef = float(coef)
    else:  # a tensor: no host sync off the CPU
        coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    if flat is not None:
        flat.mul_(coef)
    else:
        torch._foreach_mul_(grads, coef)
    return total


def _clip_coef(norm: float, max_norm: float) -> np.float32:
    """min(1, c / (||g|| + 1e-6)) of eq. (1) in float32 scalars, rounded step by step as
    torch's tensor arithmetic rounds it (``c / t`` is ``t.reciprocal() * c`` there); the same
    number as the tensor expression (``tests/test_optim.py``) without its three operator
    calls."""
    one = np.float32(1.0)
    return min((one / (np.float32(norm) + np.float32(1e-6))) * np.float32(max_norm), one)


def tiled_base(tensors: Sequence[torch.Tensor]) -> torch.Tensor | None:
    """The 1-D tensor that ``tensors`` tile in order (each a view of the next piece of it,
    together all of it), as ``rlcore.handgrad.GradBuffer`` lays gradients out; else None."""
    base = tensors[0]._base
    if base is None or base.dim() != 1:
        return None
    ptr, size = base.data_ptr(), base.element_size()
    for t in tensors:
        if t._base is not base or t.data_ptr() != ptr:
            return None
        ptr += t.numel() * size
    return base if ptr == base.data_ptr() + base.numel() * size else None


def flat_views(flat: torch.Tensor, like: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Views of consecutive pieces of the 1-D ``flat`` shaped as the tensors of ``like``."""
    out, i = [], 0
    for t in like:
        out.append(flat[i:i + t.numel()].view_as(t))
        i += t.numel()
    return out


class _FlatState:
    """The flat buffers behind one optimiser's fast step: parameters, state and a gradient
    scratch buffer, each a 1-D tensor with per-parameter views."""

    def __init__(self, params: list[torch.Tensor], state_lists: list[list[torch.Tensor]],
                 steps: list[torch.Tensor]):
        with torch.no_grad():
            self.p = torch.cat([p.detach().reshape(-1) for p in params])
            for p, view in zip(params, flat_views(self.p, params)):
                p.data = view
            self.state = []
            for lst in state_lists:  # each state list becomes views of one flat buffer
                flat = torch.cat([t.reshape(-1) for t in lst])
                lst[:] = flat_views(flat, params)
                self.state.append(flat)
            self.steps = torch.stack([t.reshape(()) for t in steps])  # one count per parameter
            steps[:] = list(self.steps.unbind(0))
        self.key = tuple(p.data_ptr() for p in params)
        self.lists: list[list[torch.Tensor]] | None = None  # the optimiser's lists it serves
        self.g = torch.empty_like(self.p)
        self.g_views = flat_views(self.g, params)

    def grad(self, grads: list[torch.Tensor]) -> torch.Tensor:
        """The gradients as one flat tensor: their own buffer when they tile one in the
        parameters' order (each has its parameter's shape), else a copy in the scratch buffer."""
        base = tiled_base(grads)
        if base is not None:
            return base
        torch._foreach_copy_(self.g_views, grads)
        return self.g


def _undecorated(method):
    """``method`` without torch's ``_disable_dynamo`` wrapper (``functools.wraps`` keeps it as
    ``__wrapped__``), or ``method`` itself if torch stops wrapping it."""
    return getattr(method, "__wrapped__", method)


class _FastStep:
    """The cached, flat, unwrapped ``step`` behind :class:`Adam` and :class:`RMSprop`."""

    # torch wraps these in ``torch._disable_dynamo``, whose first call imports ``torch._dynamo``:
    # 1.1 s of every training process's start (docs/guide/performance.md, "Start-up"). Nothing
    # here is compiled, so the engine calls torch's own bodies without the wrapper.
    add_param_group = _undecorated(torch.optim.Optimizer.add_param_group)
    zero_grad = _undecorated(torch.optim.Optimizer.zero_grad)
    state_dict = _undecorated(torch.optim.Optimizer.state_dict)

    _BASE: type[torch.optim.Optimizer]
    _STATE: tuple[str, ...] = ()
    _FLAT: tuple[str, ...] = ()
    """The state entries kept in flat buffers beside the step counts (one 0-d view each of one
    buffer, so one ``add_`` counts them all)."""
    _lists: list[list[torch.Tensor]] | None = None
    _flat: _FlatState | None = None

    def _patch_step_function(self) -> None:
        """torch wraps ``step`` in a profiling and hook wrapper here; this class's ``step``
        calls that wrapper itself only when a hook or the profiler needs it."""
        self._zero_grad_profile_name = f"Optimizer.zero_grad#{type(self).__name__}.zero_grad"

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
            self._flat = None
        return self._lists

    def _flat_state(self, lists: list[list[torch.Tensor]]) -> _FlatState | None:
        """The flat buffers, made (again) when a parameter's storage moved (a deep copy, a
        ``.data`` assignment) or the state was loaded; None off the CPU or for mixed dtypes."""
        params = lists[0]
        fl = self._flat
        if fl is not None and fl.lists is lists and fl.key == tuple(p.data_ptr() for p in params):
            return fl
        if not all(p.device.type == "cpu" and p.dtype == torch.float32 and p.is_contiguous()
                   and p.layout == torch.strided for p in params):
            return None
        flat_lists = [lists[1 + self._STATE.index(k)] for k in self._FLAT]
        steps = lists[1 + self._STATE.index("step")]
        self._flat = fl = _FlatState(params, flat_lists, steps)
        for p, step, *entries in zip(params, steps, *flat_lists):  # the state holds the views
            self.state[p]["step"] = step
            for k, t in zip(self._FLAT, entries):
                self.state[p][k] = t
        fl.lists = lists
        return fl

    def load_state_dict(self, state_dict) -> None:
        """torch's (without its ``_disable_dynamo`` wrapper), then rebuild the lists (the state
        tensors were replaced)."""
        _undecorated(torch.optim.Optimizer.load_state_dict)(self, state_dict)
        self._lists = None
        self._flat = None

    def step(self, closure=None):
        """One step: through torch's hook and profiler wrapper only when a step hook is
        registered or the profiler runs."""
        if (self._optimizer_step_pre_hooks or self._optimizer_step_post_hooks
                or _GLOBAL_PRE_HOOKS or _GLOBAL_POST_HOOKS
                or torch._C._autograd._profiler_enabled()):
            return self._hooked_step(closure)
        return self._step(closure)

    def _step(self, closure=None):
        """The kernel on the flat buffers (or the cached lists) in the plain case, torch's
        ``step`` otherwise; with gradients off (set directly: ``torch.no_grad``'s decorator
        makes and enters a new context object on every call)."""
        enabled = torch.is_grad_enabled()
        torch._C._set_grad_enabled(False)
        try:
            lists = self._cached() if closure is None and self._plain() else None
            grads = None if lists is None else [p.grad for p in lists[0]]
            if lists is None or any(g is None for g in grads):
                return self._torch_step(closure)
            fl = self._flat_state(lists)
            if fl is None:
                self._kernel(self.param_groups[0], lists, grads)
            else:
                self._flat_kernel(self.param_groups[0], lists, fl, fl.grad(grads))
            return None
        finally:
            torch._C._set_grad_enabled(enabled)

    _hooked_step = torch.optim.Optimizer.profile_hook_step(_step)

    def _torch_step(self, closure):
        """torch's own ``step`` (unwrapped: the hooks ran already where they had to)."""
        base = self._BASE.step
        if getattr(base, "hooked", False):
            base = base.__wrapped__
        if (getattr(base, "__code__", None) is not None and base.__code__.co_name == "_use_grad"
                and not self.defaults.get("differentiable", False)):
            base = base.__wrapped__  # its work, no_grad, is this call's already (``_step``),
            # without the graph breaks that import torch._dynamo ("Start-up")
        return base(self, closure)


class Adam(_FastStep, torch.optim.Adam):
    """``torch.optim.Adam(fused=True)`` with a step over one flat buffer of all parameters."""

    _BASE = torch.optim.Adam
    _STATE = ("exp_avg", "exp_avg_sq", "step")
    _FLAT = ("exp_avg", "exp_avg_sq")

    def __init__(self, params, **kwargs):
        super().__init__(params, fused=True, **kwargs)

    def _plain(self) -> bool:
        g = self.param_groups[0]
        return (len(self.param_groups) == 1 and not g["amsgrad"] and not g["maximize"]
                and not g["weight_decay"] and not g["differentiable"]
                and not isinstance(g["lr"], torch.Tensor))

    def _fused(self, g, params, grads, exp_avgs, exp_avg_sqs, steps) -> None:
        beta1, beta2 = g["betas"]
        torch._fused_adam_(params, grads, exp_avgs, exp_avg_sqs, [], steps, amsgrad=False,
                           lr=g["lr"], beta1=beta1, beta2=beta2, weight_decay=0.0, eps=g["eps"],
                           maximize=False, grad_scale=None, found_inf=None)

    def _kernel(self, g, lists, grads) -> None:
        params, exp_avgs, exp_avg_sqs, steps = lists
        torch._foreach_add_(steps, 1)
        self._fused(g, params, grads, exp_avgs, exp_avg_sqs, steps)

    def _flat_kernel(self, g, lists, fl: _FlatState, grad: torch.Tensor) -> None:
        fl.steps.add_(1)  # every parameter's count (state_dict); the kernel reads the first
        self._fused(g, [fl.p], [grad], [fl.state[0]], [fl.state[1]], lists[3][:1])


class RMSprop(_FastStep, torch.optim.RMSprop):
    """``torch.optim.RMSprop(foreach=True)`` with a step over one flat buffer of all
    parameters."""

    _BASE = torch.optim.RMSprop
    _STATE = ("square_avg", "step")
    _FLAT = ("square_avg",)

    def __init__(self, params, **kwargs):
        super().__init__(params, foreach=True, **kwargs)
        self._one = torch.tensor(1.0)

    def _plain(self) -> bool:
        g = self.param_groups[0]
        return (len(self.param_groups) == 1 and not g["momentum"] and not g["centered"]
                and not g["weight_decay"] and not g["maximize"] and not g["differentiable"]
                and not g["capturable"] and not isinstance(g["lr"], torch.Tensor))

    def _kernel(self, g, lists, grads) -> None:
        # torch's _multi_tensor_rmsprop, plain case, tensor by tensor (off the CPU)
        params, square_avgs, steps = lists
        alpha = g["alpha"]
        torch._foreach_add_(steps, self._one, alpha=1.0)
        torch._foreach_mul_(square_avgs, alpha)
        torch._foreach_addcmul_(square_avgs, grads, grads, value=1 - alpha)
        avg = torch._foreach_sqrt(square_avgs)
        torch._foreach_add_(avg, g["eps"])
        torch._foreach_addcdiv_(params, grads, avg, value=-g["lr"])

    def _flat_kernel(self, g, lists, fl: _FlatState, grad: torch.Tensor) -> None:
        # the same arithmetic on the flat buffers: v <- alpha v + (1 - alpha) g^2,
        # p <- p - lr g / (sqrt(v) + eps)
        alpha = g["alpha"]
        fl.steps.add_(1)
        v = fl.state[0]
        v.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)
        fl.p.addcdiv_(grad, v.sqrt().add_(g["eps"]), value=-g["lr"])
