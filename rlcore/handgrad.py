"""Hand-derived gradients of the on-policy losses through the plain-MLP actor-critic, in NumPy.

Autograd records every operator of a PPO minibatch step and replays it backwards; on the small
networks of reinforcement learning (64-64 tanh towers, a few hundred samples) that bookkeeping,
not the arithmetic, is most of the time, and so is torch's own cost of a few microseconds per
operator (docs/guide/performance.md, "Where the time goes"). For the default network
(``net=mlp``, tanh or ReLU, feed-forward) on the CPU this module computes the same gradients in
closed form (docs/algorithms/hand-gradients.md, eqs. (1)-(9)) with a short, fixed list of NumPy
operations on views of the parameters (no copies) and writes them into each parameter's
``.grad``; the torch optimiser steps as usual. Acting and the rollout's bootstrap value use the
same forward pass. ``tests/test_handgrad.py`` checks every gradient against autograd on the loss
functions of ``rlcore/losses``, which stay the definition; every other network, and every
device but the CPU, uses autograd (``HandMLP.supports``), as does ``hand_gradients: false``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlcore.agent import ActResult
from rlcore.losses.ppo import standardise_advantages
from rlcore.optim import flat_views

__all__ = ["GradBuffer", "HandGradients", "HandMLP", "NetViews", "OnPolicyLossSpec",
           "back_product", "bias_activate", "blas_threads", "check_activation", "forward_layers",
           "linears", "one_blas_thread", "times_activation_grad"]

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


# --8<-- [start:forward-layers]
_TORCH_RELU_MIN = 4096
"""From this many elements the bias and ReLU run as torch's in-place kernels on the same memory:
NumPy's ``maximum`` against a scalar takes no vector path (a 2x256x256 bias and ReLU 71 against
20 us, 64x256 10.4 against 4.1; below this size NumPy's call costs less than torch's)."""


def bias_activate(h: np.ndarray, b: np.ndarray, tanh: bool) -> None:
    """h <- act(h + b) in place, tanh or ReLU (eq. (1)); the same numbers either way."""
    if not tanh and h.size >= _TORCH_RELU_MIN:
        torch.from_numpy(h).add_(torch.from_numpy(b)).relu_()
        return
    h += b
    if tanh:
        np.tanh(h, out=h)
    else:
        np.maximum(h, 0.0, out=h)


def forward_layers(x: np.ndarray, weights: list[np.ndarray], biases: list[np.ndarray],
                   tanh: bool, n_activated: int) -> list[np.ndarray]:
    """[x, h_1, ..., h_L]: h_l = h_{l-1} W_l + b_l for weights laid out (..., in, out), the first
    ``n_activated`` layers followed by the activation (eq. (1))."""
    acts = [x]
    for i, (w, b) in enumerate(zip(weights, biases)):
        h = np.matmul(acts[-1], w)
        if i < n_activated:
            bias_activate(h, b, tanh)
        else:
            h += b
        acts.append(h)
    return acts
# --8<-- [end:forward-layers]


def times_activation_grad(d_h: np.ndarray, h: np.ndarray, tanh: bool) -> np.ndarray:
    """``d_h`` times phi'(h) in place, phi' read from the activation's output ``h`` (eq. (2)):
    1 - h^2 for tanh, [h > 0] for ReLU."""
    d_h *= 1.0 - h * h if tanh else h > 0
    return d_h


def back_product(delta: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``delta @ w``, as a broadcast product when the inner width is 1 (a one-output layer's
    backward): NumPy's matmul takes a slow path there (77 against 20 us at 256x1x256)."""
    return delta * w if delta.shape[-1] == 1 else delta @ w


_BLAS_THREADS: int | None = None


def blas_threads(n: int) -> None:
    """Run NumPy's BLAS on ``n`` threads from now on (process-wide; applied when it changes).

    The closed form's products run in NumPy. PPO's, A2C's and DQN's matrices are small: on one
    thread, since OpenBLAS's threads, spinning beside torch's own pool between calls, cost more
    CPU time than they save (a PPO step on 2 cores took 2.3 ms of CPU time against 0.7 ms on one
    BLAS thread; docs/guide/performance.md). SAC's 256-wide products take the run's
    ``torch_threads``, as autograd's would."""
    global _BLAS_THREADS
    if n != _BLAS_THREADS:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=max(1, int(n)), user_api="blas")
        _BLAS_THREADS = n


def one_blas_thread() -> None:
    """Run NumPy's BLAS on one thread from now on (:func:`blas_threads`)."""
    blas_threads(1)


class GradBuffer:
    """One flat gradient buffer for a network's parameters: each parameter's ``.grad`` is a view
    of it, so the gradient-norm clip reads and scales one tensor (``rlcore/optim.py``). Made
    again when a parameter's storage moves."""

    def __init__(self, params: list[torch.Tensor]):
        self.params = list(params)
        self._key: tuple[int, ...] | None = None
        self._views: dict[int, torch.Tensor] = {}

    def view(self, param: torch.Tensor) -> torch.Tensor:
        """The gradient view of ``param`` (one of ``params``)."""
        key = tuple(p.data_ptr() for p in self.params)
        if key != self._key:
            flat = torch.zeros(sum(p.numel() for p in self.params), dtype=self.params[0].dtype)
            self._views = dict(zip(map(id, self.params), flat_views(flat, self.params)))
            self._key = key
        return self._views[id(param)]


def check_activation(activation: str) -> bool:
    """True for tanh, False for ReLU; ValueError for an activation the closed form lacks."""
    if activation not in HandMLP.ACTIVATIONS:
        raise ValueError(f"activation {activation!r}: hand gradients support "
                         f"{', '.join(HandMLP.ACTIVATIONS)}")
    return activation == "tanh"


class NetViews:
    """NumPy views of a network's weights and biases and of their gradient buffers (views of
    ``grads`` when given, else buffers made here), made again when a parameter's storage moves
    (the optimiser's flat step, a deep copy). :meth:`publish` makes the buffers the parameters'
    ``.grad``."""

    def __init__(self, weights: list[torch.Tensor], biases: list[torch.Tensor],
                 grads: GradBuffer | None = None):
        self.params = list(weights) + list(biases)
        self._n = len(weights)
        self._buffer = grads
        self._key: tuple[int, ...] | None = None

    def arrays(self) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray],
                              list[np.ndarray]]:
        """(weights, biases, their gradient buffers dW, db), in layer order."""
        key = tuple(p.data_ptr() for p in self.params)
        if key != self._key:
            self._grads = [self._buffer.view(p) if self._buffer is not None
                           else torch.zeros_like(p) for p in self.params]
            arrays = [p.detach().numpy() for p in self.params]
            grads = [g.numpy() for g in self._grads]
            n = self._n
            self._np = (arrays[:n], arrays[n:], grads[:n], grads[n:])
            self._key = key
        return self._np

    def publish(self) -> None:
        """Set every parameter's ``.grad`` to its buffer (after a backward pass wrote them)."""
        for p, g in zip(self.params, self._grads):
            p.grad = g


class HandMLP:
    """A plain MLP given as its linear layers (activation between them, none after the last
    unless ``act_last``, as in an encoder without its head): its forward pass on NumPy arrays
    keeping the activations, and its closed-form backward (eqs. (1)-(2)) into each parameter's
    ``.grad``, through :class:`NetViews`."""

    ACTIVATIONS = ("tanh", "relu")

    @classmethod
    def supports(cls, net: str, activation: str, device: str | torch.device = "cpu") -> bool:
        """True for the plain MLP (``net=mlp``, feed-forward) with a tanh or ReLU activation on
        the CPU: the networks whose gradients this module writes (every agent asks here)."""
        return (net == "mlp" and activation in cls.ACTIVATIONS
                and torch.device(device).type == "cpu")

    def __init__(self, layers: list[nn.Linear], activation: str,
                 grads: GradBuffer | None = None, act_last: bool = False):
        self.tanh = check_activation(activation)
        self.act_last = act_last
        self.views = NetViews([lin.weight for lin in layers], [lin.bias for lin in layers], grads)
        one_blas_thread()

    # --8<-- [start:forward]
    def forward(self, x: np.ndarray) -> list[np.ndarray]:
        """[x, h_1, ..., h_L, out] for float32 rows ``x``: h_l = act(h_{l-1} W_l^T + b_l),
        out = h_L W^T + b (eq. (1)); out = act(h_L W^T + b) with ``act_last``."""
        weights, biases, _, _ = self.views.arrays()
        return forward_layers(x, [w.T for w in weights], biases, self.tanh,
                              len(weights) - (0 if self.act_last else 1))
    # --8<-- [end:forward]

    # --8<-- [start:backward]
    def backward(self, acts: list[np.ndarray], d_out: np.ndarray,
                 input_grad: bool = False) -> np.ndarray | None:
        """Write dL/dW_l = delta_l^T h_{l-1} and dL/db_l = sum delta_l into ``.grad``, with
        delta_{l-1} = (delta_l W_l) * act'(h_{l-1}) (eq. (2)); ``d_out`` = dL/d out (taken
        through the last activation first with ``act_last``). With ``input_grad``, return
        dL/dx = delta_1 W_1 too (to backpropagate into a network below)."""
        weights, _, d_w, d_b = self.views.arrays()
        delta = d_out
        if self.act_last:
            delta = times_activation_grad(d_out.copy(), acts[-1], self.tanh)
        for i in range(len(weights) - 1, -1, -1):
            np.matmul(delta.T, acts[i], out=d_w[i])
            np.add.reduce(delta, 0, out=d_b[i])  # np.sum without its wrapper
            if i == 0:
                break
            delta = times_activation_grad(back_product(delta, weights[i]), acts[i], self.tanh)
        self.views.publish()
        return back_product(delta, weights[0]) if input_grad else None
    # --8<-- [end:backward]


class HandGradients:
    """Acting, bootstrap values and closed-form gradients of an
    :class:`rlcore.actor_critic.ActorCritic` whose encoders are plain MLPs (``net=mlp``,
    activation tanh or relu), on the CPU."""

    def __init__(self, policy: nn.Module, activation: str):
        self.discrete = policy.discrete
        self.grads = GradBuffer(list(policy.parameters()))
        self.pi = HandMLP(linears(policy.pi_enc) + [policy.pi_head.fc], activation, self.grads)
        self.v = HandMLP(linears(policy.v_enc) + [policy.v_head.fc], activation, self.grads)
        self.log_std = None if self.discrete else policy.pi_head.log_std

    # --8<-- [start:act]
    def act(self, obs: np.ndarray, deterministic: bool = False,
            action_space: gym.Space | None = None) -> ActResult:
        """Sample (or take the mode of) pi(.|s) for N observations, as
        ``ActorCritic.act_numpy`` does: extras ``raw_actions``, ``log_probs``, ``values``.

        Categorical: inverse-CDF sampling with one uniform per environment; Gaussian:
        mu + sigma eps (docs/algorithms/hand-gradients.md, eq. (10)). The random numbers come from torch's
        generator, which the runner seeds and checkpoints."""
        x = np.ascontiguousarray(obs, dtype=np.float32).reshape(len(obs), -1)
        n = len(x)
        out = self.pi.forward(x)[-1]
        values = self.v.forward(x)[-1][:, 0]
        if self.discrete:
            z = out - out.max(1, keepdims=True)
            logp_all = z - np.log(np.exp(z).sum(1, keepdims=True))
            if deterministic:
                a = logp_all.argmax(1)
            else:
                u = torch.rand(n, dtype=torch.float64).numpy()
                cdf = np.exp(logp_all).cumsum(1, dtype=np.float64)
                a = np.minimum((cdf < u[:, None]).sum(1), out.shape[1] - 1)
            logp = logp_all[np.arange(n), a]
            return ActResult(a, None, {"raw_actions": a, "log_probs": logp, "values": values})
        log_std = self.log_std.detach().numpy()
        logp = np.full(n, -(log_std.sum() + _HALF_LOG_2PI * out.shape[1]), np.float32)
        raw = out
        if not deterministic:
            eps = torch.randn(out.shape).numpy()
            raw = out + np.exp(log_std) * eps
            logp -= 0.5 * (eps * eps).sum(1)
        env_a = raw
        if action_space is not None:
            env_a = np.clip(raw, action_space.low, action_space.high)
        return ActResult(env_a, None, {"raw_actions": raw, "log_probs": logp, "values": values})
    # --8<-- [end:act]

    def values(self, obs: np.ndarray) -> np.ndarray:
        """V(s) of N observations (the bootstrap at the end of a rollout)."""
        x = np.ascontiguousarray(obs, dtype=np.float32).reshape(len(obs), -1)
        return self.v.forward(x)[-1][:, 0]

    def on_policy_step(self, spec: OnPolicyLossSpec, obs: np.ndarray, actions: np.ndarray,
                       old_log_probs: np.ndarray, advantages: np.ndarray,
                       returns: np.ndarray, old_values: np.ndarray
                       ) -> dict[str, torch.Tensor]:
        """Write the gradient of the on-policy loss on one minibatch (float32 rows; integer
        actions for a categorical policy) into ``.grad``.

        Returns the loss terms and diagnostics as 0-d tensors, named as the autograd path names
        them: ``policy``, ``value``, ``entropy``, and for PPO ``approx_kl`` and ``clip_fraction``.
        """
        n = obs.shape[0]
        pi = self.pi.forward(obs)
        vt = self.v.forward(obs)
        values = vt[-1][:, 0]
        adv = advantages
        if spec.normalize_advantage:  # one rule for every path: rlcore/losses/ppo.py
            adv = standardise_advantages(torch.from_numpy(adv)).numpy()
        stats: dict[str, float] = {}
        # --8<-- [start:log-prob]
        if self.discrete:  # eqs. (3)-(4)
            z = pi[-1] - pi[-1].max(1, keepdims=True)
            logp_all = z - np.log(np.exp(z).sum(1, keepdims=True))
            probs = np.exp(logp_all)
            rows, idx = np.arange(n), actions.astype(np.int64, copy=False)
            logp = logp_all[rows, idx]
            neg_ent = (probs * logp_all).sum(1)  # -H per sample
        else:  # eqs. (5)-(6)
            log_std = self.log_std.detach().numpy()
            inv_std = np.exp(-log_std)
            u = (actions - pi[-1]) * inv_std
            logp = (u * u).sum(1) * -0.5 - (log_std.sum() + _HALF_LOG_2PI * u.shape[1])
        # --8<-- [end:log-prob]
        # --8<-- [start:loss-grad]
        # g = dL/d log pi(a|s) per sample, without the 1/n of the mean (eqs. (7)-(8)).
        if spec.clip_range is None:  # A2C: L = -E[log pi A]
            g = -adv
            stats["policy"] = (logp * g).mean()
        else:  # PPO: the unclipped term carries the gradient where it is the smaller one
            eps = spec.clip_range
            log_ratio = logp - old_log_probs
            ratio = np.exp(log_ratio)
            unclipped = ratio * adv
            clipped = np.clip(ratio, 1.0 - eps, 1.0 + eps) * adv
            taken = unclipped <= clipped
            stats["policy"] = -np.minimum(unclipped, clipped).mean()
            g = -(unclipped * taken)
            stats["approx_kl"] = (np.expm1(log_ratio) - log_ratio).mean()
            stats["clip_fraction"] = (np.abs(ratio - 1.0) > eps).mean()
        inv_n = np.float32(1.0 / n)
        c_e = np.float32(spec.ent_coef)
        if self.discrete:  # d log pi / dz = onehot(a) - p; dH/dz = -p (log p + H)  (eq. (8))
            stats["entropy"] = -neg_ent.mean()
            d_logits = probs * ((logp_all - neg_ent[:, None]) * c_e - g[:, None])
            d_logits[rows, idx] += g
            d_logits *= inv_n
        else:  # d log pi / d mu = u / sigma; d log pi / d log sigma = u^2 - 1; dH/d log sigma = 1
            stats["entropy"] = log_std.sum() + (0.5 + _HALF_LOG_2PI) * u.shape[1]
            gu = u * g[:, None]
            d_logits = gu * (inv_std * inv_n)
            log_std_grad = self.grads.view(self.log_std)
            log_std_grad.numpy()[:] = ((gu * u).sum(0) - g.sum()) * inv_n - c_e
            self.log_std.grad = log_std_grad
        err = values - returns
        if spec.clip_range_vf:  # eq. (4) of the PPO page: the larger error carries the gradient
            e_v = spec.clip_range_vf
            diff = values - old_values
            err_c = old_values + np.clip(diff, -e_v, e_v) - returns
            big = err * err >= err_c * err_c
            stats["value"] = 0.5 * np.maximum(err * err, err_c * err_c).mean()
            d_v = np.where(big, err, err_c * (np.abs(diff) <= e_v))
        else:
            stats["value"] = 0.5 * (err * err).mean()
            d_v = err
        d_v = (d_v * np.float32(spec.vf_coef * inv_n))[:, None]
        # --8<-- [end:loss-grad]
        self.pi.backward(pi, d_logits.astype(np.float32, copy=False))
        self.v.backward(vt, d_v)
        terms = torch.from_numpy(np.array(list(stats.values()), np.float32))
        return dict(zip(stats, terms.unbind(0)))
