"""Closed-form gradients of continuous SAC's losses through the plain-MLP actor and the fused
twin critics, in NumPy (docs/algorithms/hand-gradients.md, eqs. (11)-(14)).

A SAC gradient step on Pendulum's sizes (batch 256, 256-256 networks) is about 513 MFLOP of
matrix products, some 5 ms in NumPy on one core; with autograd, torch's batched products, its
bookkeeping and about 290 operator calls made the step 10.7-12 ms (docs/guide/performance.md).
This module runs the same step as :meth:`rlcore.sac.SAC._step_continuous` with the forward and
backward passes written out: the critics' loss and its gradient, the actor's reparameterised
loss with the gradient taken through the critics to the action only (no critic weight
gradients), the squashing and the log-std clamp. The gradients are written into ``.grad``
buffers that tile one flat buffer per network (``GradBuffer``), which the flat Adam step reads
in place. The random numbers come from torch's generator in autograd's order, so the path draws
the same noise.
``tests/test_sac_hand.py`` checks every gradient against autograd on the losses of
``rlcore/losses/sac.py``, which stay the definition.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from rlcore.handgrad import (
    GradBuffer,
    HandMLP,
    NetViews,
    back_product,
    blas_threads,
    check_activation,
    forward_layers,
    linears,
    times_activation_grad,
)

__all__ = ["HandEnsemble", "HandSAC"]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_LOG2 = math.log(2.0)


class HandEnsemble:
    """A fused :class:`rlcore.sac.QEnsemble` (K plain MLPs, weights stacked as (K, in, out)) on
    NumPy arrays (:class:`rlcore.handgrad.NetViews`): its forward keeping the activations, its
    backward into the weights' ``.grad`` (eqs. (1)-(2) per member), and the gradient of the
    members' minimum to the input only (eq. (13))."""

    def __init__(self, ensemble: nn.Module, activation: str, grads: GradBuffer | None = None):
        self.tanh = check_activation(activation)
        self.views = NetViews(list(ensemble.weights), list(ensemble.biases), grads)

    def forward(self, x: np.ndarray) -> list[np.ndarray]:
        """[x, h_1, ..., out] for float32 rows ``x`` (B, in); h_l and out are (K, B, width):
        h_l = act(h_{l-1} W_l + b_l), every member at once (eq. (1))."""
        weights, biases, _, _ = self.views.arrays()
        return forward_layers(x, weights, biases, self.tanh, len(weights) - 1)

    def backward(self, acts: list[np.ndarray], d_out: np.ndarray) -> None:
        """Backpropagate ``d_out`` = dL/d out (K, B, out) into dL/dW_l and dL/db_l of every
        member, written into ``.grad`` (eq. (2) per member)."""
        weights, _, d_w, d_b = self.views.arrays()
        delta = d_out
        for i in range(len(weights) - 1, -1, -1):
            h_in = acts[i]
            h_t = h_in.T if h_in.ndim == 2 else h_in.transpose(0, 2, 1)
            np.matmul(h_t, delta, out=d_w[i])
            np.add.reduce(delta, 1, keepdims=True, out=d_b[i])
            if i == 0:
                break
            delta = times_activation_grad(back_product(delta, weights[i].transpose(0, 2, 1)),
                                          h_in, self.tanh)
        self.views.publish()

    # --8<-- [start:min-input-grad]
    def min_input_grad(self, acts: list[np.ndarray], k_min: np.ndarray, d_min: float,
                       input_cols: slice) -> np.ndarray:
        """dL/dx[:, input_cols] for a loss that reads the members only through
        min_k Q_k(x_i), with dL/d min = ``d_min`` on every row; the weights held fixed (eq. (13)).

        Row i's gradient flows through its smaller member ``k_min[i]`` alone, so each member's
        backward runs over its own rows: half the rows of a pair, and one 256x256x256 product
        fewer per SAC step than the pair over every row with zeros elsewhere."""
        weights = self.views.arrays()[0]
        grad = np.empty((len(k_min), acts[0][:, input_cols].shape[1]), np.float32)
        for k in range(len(weights[0])):
            rows = np.flatnonzero(k_min == k)
            delta = np.full((len(rows), 1), d_min, np.float32)
            for i in range(len(weights) - 1, 0, -1):
                delta = times_activation_grad(back_product(delta, weights[i][k].T),
                                              acts[i][k, rows], self.tanh)
            grad[rows] = delta @ weights[0][k][input_cols].T
        return grad
    # --8<-- [end:min-input-grad]


class HandSAC:
    """Acting and the closed-form gradient steps of continuous SAC whose actor and critics are
    plain MLPs (``net=mlp``, tanh or ReLU) on the CPU: ``actor`` is :class:`rlcore.sac._Actor`,
    ``critic`` and ``critic_target`` fused :class:`rlcore.sac.QEnsemble`."""

    def __init__(self, actor: nn.Module, critic: nn.Module, critic_target: nn.Module,
                 activation: str, log_std_bounds: tuple[float, float]):
        self.actor_grads = GradBuffer(list(actor.parameters()))
        self.trunk = HandMLP(linears(actor.encoder), activation, self.actor_grads, act_last=True)
        self.mu = HandMLP([actor.mu], activation, self.actor_grads)
        self.log_std = HandMLP([actor.log_std], activation, self.actor_grads)
        self.critic = HandEnsemble(critic, activation, GradBuffer(list(critic.parameters())))
        self.target = HandEnsemble(critic_target, activation)
        self.lo, self.hi = log_std_bounds
        blas_threads(torch.get_num_threads())  # the run's torch_threads, as autograd would use

    def policy(self, obs: np.ndarray) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
        """(trunk activations, mean, unclamped log-std) of float32 rows ``obs``."""
        acts = self.trunk.forward(obs)
        return acts, self.mu.forward(acts[-1])[-1], self.log_std.forward(acts[-1])[-1]

    # --8<-- [start:sample]
    def _sample(self, mean: np.ndarray, log_std: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(a, log pi(a|s), xi, sigma): u = mean + sigma xi, a = tanh(u), docs/algorithms/sac.md
        eqs. (3)-(5); xi from torch's generator, as ``sample_tanh_gaussian`` draws it."""
        xi = torch.randn(mean.shape).numpy()
        std = np.exp(log_std)
        u = mean + std * xi
        z = (u - mean) * np.exp(-log_std)
        log_n = -0.5 * z * z - log_std - _HALF_LOG_2PI
        corr = 2.0 * (_LOG2 - u - np.logaddexp(0.0, -2.0 * u))
        return np.tanh(u), (log_n - corr).sum(-1), xi, std
    # --8<-- [end:sample]

    def act(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        """tanh(mean) or a sample of pi(.|s), in [-1, 1], for N observations."""
        _, mean, raw = self.policy(obs)
        if deterministic:
            return np.tanh(mean)
        log_std = np.clip(raw, self.lo, self.hi)
        return np.tanh(mean + np.exp(log_std) * torch.randn(mean.shape).numpy())

    # --8<-- [start:critic]
    def critic_gradients(self, obs: np.ndarray, act: np.ndarray, rew: np.ndarray,
                         term: np.ndarray, disc: np.ndarray, nobs: np.ndarray,
                         alpha: float) -> tuple[float, float]:
        """Write dL_Q/d phi into the critics' ``.grad`` (eqs. (1)-(2) of the SAC page, (11) of
        hand-gradients); return (L_Q, mean Q)."""
        _, mean, raw = self.policy(nobs)
        next_a, next_logp, _, _ = self._sample(mean, np.clip(raw, self.lo, self.hi))
        next_q = self.target.forward(np.concatenate([nobs, next_a], 1))[-1][..., 0]
        y = rew + disc * (1.0 - term) * (next_q.min(0) - np.float32(alpha) * next_logp)
        acts = self.critic.forward(np.concatenate([obs, act], 1))
        q = acts[-1][..., 0]
        err = q - y
        self.critic.backward(acts, (err * np.float32(1.0 / len(y)))[..., None])
        return 0.5 * float((err * err).mean(1).sum()), float(q.mean())
    # --8<-- [end:critic]

    # --8<-- [start:actor]
    def actor_gradients(self, obs: np.ndarray, alpha: float) -> tuple[float, np.ndarray]:
        """Write dL_pi/d theta into the actor's ``.grad`` (eq. (6) of the SAC page, (12)-(14) of
        hand-gradients), the critics' weights held fixed; return (L_pi, log pi(a|s))."""
        trunk, mean, raw = self.policy(obs)
        log_std = np.clip(raw, self.lo, self.hi)
        a, logp, xi, std = self._sample(mean, log_std)
        n, s = obs.shape
        acts = self.critic.forward(np.concatenate([obs, a], 1))
        q = acts[-1][..., 0]
        k_min = q.argmin(0)
        rows = np.arange(n)
        alpha = np.float32(alpha)
        loss = float((alpha * logp - q[k_min, rows]).mean())
        # dL/dQ_k: -1/n at the smaller critic (the min's gradient), 0 at the other
        d_a = self.critic.min_input_grad(acts, k_min, np.float32(-1.0 / n), slice(s, None))
        inv_n = np.float32(1.0 / n)
        d_u = d_a * (1.0 - a * a) + (2.0 * alpha * inv_n) * a  # eq. (12)
        d_ls = (d_u * std * xi - alpha * inv_n) * ((raw >= self.lo) & (raw <= self.hi))
        d_z = self.mu.backward([trunk[-1], mean], d_u, input_grad=True)  # eq. (14): d mean = d u
        d_z += self.log_std.backward([trunk[-1], raw], d_ls, input_grad=True)
        self.trunk.backward(trunk, d_z)
        return loss, logp
    # --8<-- [end:actor]
