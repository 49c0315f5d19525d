"""Anchoring against forgetting: L2 and EWC penalties towards the last promoted weights.

Both add ``Omega(theta) = (lambda / 2) * sum_i w_i (theta_i - theta*_i)^2`` to the agent's loss
(docs/guide/continual-learning.md, eqs. (3) and (4)): ``w_i = 1`` for L2, ``w_i = F_i / mean(F)``
for EWC with ``F`` a diagonal Fisher estimate. Agents are not edited: :meth:`Anchor.attach`
registers a pre-step hook on every optimiser of the agent that adds the penalty's gradient
``lambda * w_i * (theta_i - theta*_i)`` (eq. (5)) to ``theta_i.grad`` just before the step. That
equals adding ``Omega`` to the loss, except that the agent's gradient-norm clip (applied before
the step) does not see the penalty term.

The Fisher estimate is the mean of squared gradients that the agent's own losses produced
(:class:`GradSquareMeter`, eq. (6)): an "empirical Fisher" measured without touching the agent's
code, at the weights that are being anchored.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["agent_optimizers", "agent_params", "GradSquareMeter", "Anchor"]


def agent_optimizers(agent: Any) -> list[torch.optim.Optimizer]:
    """Every ``torch.optim.Optimizer`` held as an attribute of ``agent`` (in attribute order)."""
    return [v for v in vars(agent).values() if isinstance(v, torch.optim.Optimizer)]


def agent_params(agent: Any) -> dict[str, nn.Parameter]:
    """The trainable parameters of ``agent`` (those in its optimisers), by ``module.param`` name."""
    owned = {id(p) for opt in agent_optimizers(agent) for g in opt.param_groups for p in g["params"]}
    out: dict[str, nn.Parameter] = {}
    for attr, v in vars(agent).items():
        if isinstance(v, nn.Module):
            for n, p in v.named_parameters():
                if id(p) in owned and id(p) not in {id(q) for q in out.values()}:
                    out[f"{attr}.{n}"] = p
        elif isinstance(v, nn.Parameter) and id(v) in owned:
            out[attr] = v
    return out


class GradSquareMeter:
    """Running mean of ``grad**2`` per parameter over optimiser steps (eq. (6)).

    With ``drop=True`` the gradients are removed after being measured, so the optimiser step
    changes nothing (a probe of the Fisher at the current weights).
    """

    def __init__(self, drop: bool = False):
        self.drop = drop
        self.sum: dict[str, torch.Tensor] = {}
        self.count = 0
        self._handles: list[Any] = []

    # --8<-- [start:fisher-meter-attach]
    def attach(self, agent: Any) -> GradSquareMeter:
        """Register the measuring hook on every optimiser of ``agent``."""
        params = agent_params(agent)
        by_id = {id(p): n for n, p in params.items()}

        def hook(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
            seen = False
            for g in opt.param_groups:
                for p in g["params"]:
                    n = by_id.get(id(p))
                    if n is None or p.grad is None:
                        continue
                    g2 = p.grad.detach() ** 2  # docs/guide/continual-learning.md, eq. (6)
                    self.sum[n] = self.sum[n] + g2 if n in self.sum else g2.clone()
                    seen = True
                    if self.drop:
                        p.grad = None
            self.count += int(seen)

        self._handles = [opt.register_step_pre_hook(hook) for opt in agent_optimizers(agent)]
        return self
    # --8<-- [end:fisher-meter-attach]

    def detach(self) -> None:
        """Remove the hooks."""
        for h in self._handles:
            h.remove()
        self._handles = []

    def fisher(self) -> dict[str, torch.Tensor]:
        """The mean squared gradient of each parameter seen (empty if no step happened)."""
        return {n: s / max(self.count, 1) for n, s in self.sum.items()}


class Anchor:
    """The penalty ``(strength / 2) * sum_i w_i (theta_i - ref_i)^2`` over named parameters.

    Args:
        reference: the anchor weights ``theta*`` by name (copied).
        fisher: per-parameter Fisher estimates for EWC (normalised to mean 1 over all entries);
            None gives L2 (all weights 1).
        strength: ``lambda`` (mutable attribute).
    """

    def __init__(self, reference: dict[str, torch.Tensor], fisher: dict[str, torch.Tensor] | None,
                 strength: float):
        self.ref = {n: t.detach().clone() for n, t in reference.items()}
        self.kind = "l2" if fisher is None else "ewc"
        self.weight = self._normalise(fisher) if fisher is not None else None
        self.strength = float(strength)
        self._handles: list[Any] = []

    def _normalise(self, fisher: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        missing = [n for n in self.ref if n not in fisher]
        if missing:
            raise ValueError(f"EWC anchor: no Fisher estimate for {', '.join(missing[:5])}")
        total = sum(float(fisher[n].sum()) for n in self.ref)
        count = sum(fisher[n].numel() for n in self.ref)
        mean = total / max(count, 1)
        if not mean > 0:
            return {n: torch.ones_like(self.ref[n]) for n in self.ref}
        return {n: fisher[n].detach() / mean for n in self.ref}

    # --8<-- [start:penalty]
    def penalty(self, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """``Omega(theta)`` (eqs. (3)-(4)) as a differentiable scalar, for an ``extra_loss`` hook."""
        total = torch.zeros(())
        for n, ref in self.ref.items():
            d2 = (params[n] - ref) ** 2
            # docs/guide/continual-learning.md, eqs. (3)-(4)
            total = total + (d2 if self.weight is None else self.weight[n] * d2).sum()
        return 0.5 * self.strength * total

    def grad(self, name: str, param: torch.Tensor) -> torch.Tensor:
        """``d Omega / d theta`` for one parameter (eq. (5))."""
        d = param.detach() - self.ref[name]  # docs/guide/continual-learning.md, eq. (5)
        return self.strength * (d if self.weight is None else self.weight[name] * d)
    # --8<-- [end:penalty]

    # --8<-- [start:anchor-attach]
    def attach(self, agent: Any) -> Anchor:
        """Add the penalty's gradient before every optimiser step of ``agent``."""
        params = agent_params(agent)
        by_id = {id(p): n for n, p in params.items() if n in self.ref}

        def hook(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
            if self.strength == 0.0:
                return
            for g in opt.param_groups:
                for p in g["params"]:
                    n = by_id.get(id(p))
                    if n is not None and p.grad is not None:
                        p.grad.add_(self.grad(n, p))

        self._handles = [opt.register_step_pre_hook(hook) for opt in agent_optimizers(agent)]
    # --8<-- [end:anchor-attach]
        return self

    def detach(self) -> None:
        """Remove the hooks."""
        for h in self._handles:
            h.remove()
        self._handles = []
