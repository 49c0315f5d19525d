"""Hand-derived gradients of the on-policy losses through the plain-MLP actor-critic.

Autograd records every operator of a PPO minibatch step and replays it backwards; on the small
networks of reinforcement learning (64-64 tanh towers, a few hundred samples) that bookkeeping,
not the arithmetic, is most of the time (docs/guide/performance.md, "Where the time goes"). For
the default network (``net=mlp``, tanh or ReLU, feed-forward) this module computes the same
gradients in closed form (docs/algorithms/hand-gradients.md, eqs. (1)-(9)) with a fixed, short
list of tensor operations and writes them into each parameter's ``.grad``; the optimiser steps
as usual. ``tests/test_handgrad.py`` checks every gradient against autograd on the loss functions
of ``rlcore/losses``, which stay the definition; the agents fall back to autograd for every other
network (``HandMLP.supports``) and when ``hand_gradients: false``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from rlcore.losses.ppo import standardise_advantages

__all__ = ["HandGradients", "HandMLP", "OnPolicyLossSpec", "linears"]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


@dataclass(frozen=True)
class OnPolicyLossSpec:
    """Which on-policy loss to differentiate and its coefficients (docs/algorithms/ppo.md,
    eq. (1); docs/algorithms/a2c.md, eq. (5)).

    ``clip_range`` None: A2C's plain policy gradient -E[log pi A]; a number: PPO's clipped
    surrogate with that epsilon. ``clip_range_vf`` None or 0: unclipped value loss.
    """

    clip_range: float | None
    clip_range_vf: float | None
    vf_coef: float
    ent_coef: float
    normalize_advantage: bool


def linears(module: nn.Module) -> list[nn.Linear]:
    """The ``nn.Linear`` layers of a module, in order."""
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


class HandMLP:
    """A plain MLP given as its linear layers (activation between them, none after the last):
    its forward pass keeping the activations, and its closed-form backward (eqs. (1)-(2))."""

    ACTIVATIONS = ("tanh", "relu")

    @classmethod
    def supports(cls, net: str, activation: str) -> bool:
        """True for the plain MLP (``net=mlp``, feed-forward) with a tanh or ReLU activation:
        the networks whose gradients this module writes (every agent asks here)."""
        return net == "mlp" and activation in cls.ACTIVATIONS

    def __init__(self, layers: list[nn.Linear], activation: str):
        if activation not in self.ACTIVATIONS:
            raise ValueError(f"activation {activation!r}: hand gradients support "
                             f"{', '.join(self.ACTIVATIONS)}")
        self.layers = layers
        self.tanh = activation == "tanh"

    # --8<-- [start:forward]
    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """[x, h_1, ..., h_L, out]: h_l = act(W_l h_{l-1} + b_l), out = W h_L + b (eq. (1)).
        Call it under ``torch.no_grad()``: nothing is recorded for autograd."""
        acts = [x]
        for lin in self.layers[:-1]:
            pre = torch.addmm(lin.bias, acts[-1], lin.weight.t())
            acts.append(_tanh_(pre) if self.tanh else pre.relu_())
        out = self.layers[-1]
        acts.append(torch.addmm(out.bias, acts[-1], out.weight.t()))
        return acts
    # --8<-- [end:forward]

    # --8<-- [start:backward]
    def backward(self, acts: list[torch.Tensor], d_out: torch.Tensor) -> None:
        """Write dL/dW_l = delta_l^T h_{l-1} and dL/db_l = sum delta_l into ``.grad``, with
        delta_{l-1} = (delta_l W_l) * act'(h_{l-1}) (eq. (2)); ``d_out`` = dL/d out."""
        delta = d_out
        for i in range(len(self.layers) - 1, -1, -1):
            lin = self.layers[i]
            h_in = acts[i]
            lin.weight.grad = torch.mm(delta.t(), h_in)
            lin.bias.grad = delta.sum(0)
            if i == 0:
                break
            d_h = torch.mm(delta, lin.weight)
            if self.tanh:  # tanh' = 1 - h^2
                delta = torch.addcmul(d_h, d_h, h_in * h_in, value=-1.0)
            else:  # relu' = [h > 0]
                delta = d_h * (h_in > 0)
    # --8<-- [end:backward]


class HandGradients:
    """Forward pass and closed-form gradients of an :class:`rlcore.actor_critic.ActorCritic`
    whose encoders are plain MLPs (``net=mlp``, activation tanh or relu)."""

    def __init__(self, policy: nn.Module, activation: str):
        self.discrete = policy.discrete
        self.pi = HandMLP(linears(policy.pi_enc) + [policy.pi_head.fc], activation)
        self.v = HandMLP(linears(policy.v_enc) + [policy.v_head.fc], activation)
        self.log_std = None if self.discrete else policy.pi_head.log_std

    def heads(self, x: torch.Tensor):
        """(logits, or (mean, log_std) broadcast to the batch; values V(s)) of observations
        ``x``: what the module forward gives, for acting. Call it under ``torch.no_grad()``
        (``ActorCritic.act_numpy`` does)."""
        out = self.pi.forward(x)[-1]
        values = self.values(x)
        if self.discrete:
            return out, values
        return (out, self.log_std.expand_as(out)), values

    def values(self, x: torch.Tensor) -> torch.Tensor:
        """V(s) of observations ``x`` (the bootstrap at the end of a rollout), under
        ``torch.no_grad()`` (``ActorCritic.values_numpy`` calls it so)."""
        return self.v.forward(x)[-1].squeeze(1)

    @torch.no_grad()
    def on_policy_step(self, spec: OnPolicyLossSpec, obs: torch.Tensor, actions: torch.Tensor,
                       old_log_probs: torch.Tensor, advantages: torch.Tensor,
                       returns: torch.Tensor, old_values: torch.Tensor
                       ) -> dict[str, torch.Tensor]:
        """Write the gradient of the on-policy loss on one minibatch into ``.grad``.

        Returns the loss terms and diagnostics as 0-d tensors, named as the autograd path names
        them: ``policy``, ``value``, ``entropy``, and for PPO ``approx_kl`` and ``clip_fraction``.
        """
        n = obs.shape[0]
        pi = self.pi.forward(obs)
        vt = self.v.forward(obs)
        values = vt[-1].squeeze(1)
        adv = standardise_advantages(advantages) if spec.normalize_advantage else advantages
        stats: dict[str, torch.Tensor] = {}
        # --8<-- [start:log-prob]
        if self.discrete:  # eqs. (3)-(4)
            logp_all = torch.log_softmax(pi[-1], 1)
            probs = logp_all.exp()
            idx = actions.long().unsqueeze(1)
            logp = logp_all.gather(1, idx).squeeze(1)
            neg_ent = (probs * logp_all).sum(1)  # -H per sample
        else:  # eqs. (5)-(6)
            log_std = self.log_std
            inv_std = torch.exp(-log_std)
            z = (actions - pi[-1]) * inv_std
            logp = (z * z).sum(1).mul_(-0.5).sub_(log_std.sum() + _HALF_LOG_2PI * z.shape[1])
            neg_ent = None
        # --8<-- [end:log-prob]
        # --8<-- [start:loss-grad]
        # g = dL/d log pi(a|s) per sample, without the 1/n of the mean (eqs. (7)-(8)).
        if spec.clip_range is None:  # A2C: L = -E[log pi A]
            g = -adv
            stats["policy"] = (logp * g).mean()
        else:  # PPO: the unclipped term carries the gradient where it is the smaller one
            eps = spec.clip_range
            log_ratio = logp - old_log_probs
            ratio = log_ratio.exp()
            unclipped = ratio * adv
            clipped = ratio.clamp(1.0 - eps, 1.0 + eps) * adv
            taken = unclipped <= clipped
            stats["policy"] = -torch.minimum(unclipped, clipped).mean()
            g = -(unclipped * taken)
            stats["approx_kl"] = (torch.expm1(log_ratio) - log_ratio).mean()
            stats["clip_fraction"] = ((ratio - 1.0).abs() > eps).float().mean()
        inv_n = 1.0 / n
        c_e = spec.ent_coef
        if self.discrete:  # d log pi / dz = onehot(a) - p; dH/dz = -p (log p + H)  (eq. (4))
            stats["entropy"] = -neg_ent.mean()
            d_logits = probs * (logp_all - neg_ent.unsqueeze(1)).mul_(c_e)
            d_logits.addcmul_(probs, g.unsqueeze(1), value=-1.0)
            d_logits.scatter_add_(1, idx, g.unsqueeze(1))
            d_logits.mul_(inv_n)
        else:  # d log pi / d mu = z / sigma; d log pi / d log sigma = z^2 - 1; dH/d log sigma = 1
            stats["entropy"] = log_std.sum() + (0.5 + _HALF_LOG_2PI) * z.shape[1]
            gz = z * g.unsqueeze(1)
            d_logits = (gz * inv_std).mul_(inv_n)
            self.log_std.grad = (gz * z).sum(0).sub_(g.sum()).mul_(inv_n).sub_(c_e)
        err = values - returns
        if spec.clip_range_vf:  # eq. (4) of the PPO page: the larger error carries the gradient
            e_v = spec.clip_range_vf
            diff = values - old_values
            err_c = old_values + diff.clamp(-e_v, e_v) - returns
            big = err * err >= err_c * err_c
            stats["value"] = 0.5 * torch.maximum(err * err, err_c * err_c).mean()
            d_v = torch.where(big, err, err_c * (diff.abs() <= e_v))
        else:
            stats["value"] = 0.5 * (err * err).mean()
            d_v = err
        d_v = d_v.mul_(spec.vf_coef * inv_n).unsqueeze(1)
        # --8<-- [end:loss-grad]
        self.pi.backward(pi, d_logits)
        self.v.backward(vt, d_v)
        return stats


# --8<-- [start:tanh]
def _tanh_(x: torch.Tensor) -> torch.Tensor:
    """tanh in place; from 4,096 elements on as tanh(x) = 2 sigmoid(2x) - 1 (eq. (10)).

    This torch build's CPU ``tanh`` kernel takes about 3 ns per element, ``sigmoid`` under 1 ns:
    at a minibatch of 256 x 64 the four operations take 20 us against tanh's 46 us, at the 8 x 64
    of acting 10 us against 4 us (``benchmarks/bench_grad_step.py``). The two agree to 2e-7."""
    if x.numel() < 4096:
        return x.tanh_()
    return x.mul_(2.0).sigmoid_().mul_(2.0).sub_(1.0)
# --8<-- [end:tanh]

