"""SAC losses as pure functions: tensors in, ``(loss, info)`` out (docs/algorithms/sac.md).

``discount`` is the per-sample bootstrap factor: gamma for one-step transitions, gamma^m for an
m-step return. Only ``terminated`` removes the bootstrap; a truncated transition (time limit,
data end) bootstraps from its real final observation. Targets are built inside the losses under
``torch.no_grad`` semantics (detached), so gradients reach only the predicted values.
``weights`` (optional) are per-sample importance weights: losses are ``mean(w * l)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = [
    "tanh_gaussian_log_prob", "sample_tanh_gaussian", "soft_q_target", "twin_mse",
    "sac_critic_loss", "sac_actor_loss", "sac_temperature_loss",
    "discrete_soft_value", "discrete_sac_critic_loss",
    "discrete_sac_actor_loss", "discrete_sac_temperature_loss",
]

Info = dict[str, torch.Tensor]
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_LOG2 = math.log(2.0)


def importance_weighted_mean(x: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """mean(w x) over the batch: the importance-sampling estimate of E[x] under uniform replay
    for a batch drawn by priority with weights w (docs/algorithms/dqn.md, PER); plain mean when
    None. Not normalised by sum(w), unlike the on-policy ``masked_mean``."""
    return x.mean() if weights is None else (weights * x).mean()


# --8<-- [start:tanh-gaussian-log-prob]
def tanh_gaussian_log_prob(u: torch.Tensor, mean: torch.Tensor,
                           log_std: torch.Tensor) -> torch.Tensor:
    """log pi(a|s) of a = tanh(u), u ~ N(mean, exp(log_std)^2), summed over the last axis.

    log pi(a) = sum_j [log N(u_j) - log(1 - tanh(u_j)^2)], with the correction in the stable form
    log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)) (docs/algorithms/sac.md, eqs. (4)-(5)).
    """
    z = (u - mean) * torch.exp(-log_std)
    log_n = -0.5 * z * z - log_std - _LOG_SQRT_2PI
    corr = 2.0 * (_LOG2 - u - F.softplus(-2.0 * u))
    return (log_n - corr).sum(-1)
# --8<-- [end:tanh-gaussian-log-prob]


def sample_tanh_gaussian(mean: torch.Tensor,
                         log_std: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Reparameterised sample a = tanh(mean + std * xi) and its log-probability (eq. (3))."""
    u = mean + torch.exp(log_std) * torch.randn_like(mean)
    # the log-prob first: autograd then sums the two gradient paths into u (through the log-prob
    # and through tanh) in the order SAC always used, so recorded runs repeat to the last bit
    log_prob = tanh_gaussian_log_prob(u, mean, log_std)
    return torch.tanh(u), log_prob


# --8<-- [start:soft-q-target]
def soft_q_target(rewards: torch.Tensor, terminated: torch.Tensor, discount: torch.Tensor | float,
                  next_q: torch.Tensor, next_log_prob: torch.Tensor,
                  alpha: torch.Tensor | float) -> torch.Tensor:
    """y = r + discount (1 - terminated) (min_k Q'_k(s', a') - alpha log pi(a'|s')) (eq. (1)).

    ``next_q`` is (K, B): the K target critics at (s', a'), a' ~ pi(.|s'). Returned detached.
    """
    v_next = next_q.min(0).values - alpha * next_log_prob
    return (rewards + discount * (1.0 - terminated) * v_next).detach()
# --8<-- [end:soft-q-target]


# --8<-- [start:twin-mse]
def twin_mse(q: torch.Tensor, target: torch.Tensor,
             weights: torch.Tensor | None = None) -> tuple[torch.Tensor, Info]:
    """0.5 sum_k mean(w (Q_k - y)^2) over the K critics in ``q`` (K, B), y detached (eq. (2)).

    Info: ``td_abs`` per sample (mean over critics of |Q_k - y|, for priorities), ``q_mean``.
    """
    err = q - target.detach().unsqueeze(0)
    loss = 0.5 * torch.stack([importance_weighted_mean(e * e, weights) for e in err]).sum()
    return loss, {"td_abs": err.detach().abs().mean(0), "q_mean": q.detach().mean(),
                  "target_mean": target.detach().mean()}


def sac_critic_loss(q: torch.Tensor, rewards: torch.Tensor, terminated: torch.Tensor,
                    discount: torch.Tensor | float, next_q: torch.Tensor,
                    next_log_prob: torch.Tensor, alpha: torch.Tensor | float,
                    weights: torch.Tensor | None = None) -> tuple[torch.Tensor, Info]:
    """Twin soft-Q loss: :func:`twin_mse` of ``q`` (K, B) vs :func:`soft_q_target` (eqs. (1)-(2)).

    ``next_q`` (K, B) are the target critics at (s', a'), a' ~ pi(.|s'), ``next_log_prob`` is
    log pi(a'|s').
    """
    target = soft_q_target(rewards, terminated, discount, next_q, next_log_prob, alpha)
    return twin_mse(q, target, weights)


def sac_actor_loss(log_prob: torch.Tensor, q: torch.Tensor, alpha: torch.Tensor | float,
                   weights: torch.Tensor | None = None) -> tuple[torch.Tensor, Info]:
    """mean(w (alpha log pi(a|s) - min_k Q_k(s, a))), a ~ pi(.|s) reparameterised (eq. (6)).

    ``q`` (K, B) must be computed through the sampled actions (not detached) with critic
    parameters that take no gradient. Info: ``entropy`` = -mean log pi.
    """
    alpha = alpha.detach() if torch.is_tensor(alpha) else alpha
    loss = importance_weighted_mean(alpha * log_prob - q.min(0).values, weights)
    return loss, {"entropy": -log_prob.detach().mean()}


def sac_temperature_loss(log_alpha: torch.Tensor, log_prob: torch.Tensor,
                         target_entropy: float) -> tuple[torch.Tensor, Info]:
    """-mean(log alpha (log pi(a|s) + H_target)) with log pi detached (eq. (7))."""
    loss = -(log_alpha * (log_prob.detach() + target_entropy)).mean()
    return loss, {"alpha": log_alpha.detach().exp()}
# --8<-- [end:twin-mse]


def discrete_soft_value(probs: torch.Tensor, log_probs: torch.Tensor, q: torch.Tensor,
                        alpha: torch.Tensor | float) -> torch.Tensor:
    """V(s) = sum_a pi(a|s) (min_k Q_k(s, a) - alpha log pi(a|s)); q is (K, B, A) (eq. (8))."""
    return (probs * (q.min(0).values - alpha * log_probs)).sum(-1)


def discrete_sac_critic_loss(q_taken: torch.Tensor, rewards: torch.Tensor,
                             terminated: torch.Tensor, discount: torch.Tensor | float,
                             next_probs: torch.Tensor, next_log_probs: torch.Tensor,
                             next_q: torch.Tensor, alpha: torch.Tensor | float,
                             weights: torch.Tensor | None = None) -> tuple[torch.Tensor, Info]:
    """Soft Bellman loss over a categorical policy (eq. (9)).

    y = r + discount (1 - terminated) V'(s') with V' from :func:`discrete_soft_value` of the
    target critics ``next_q`` (K, B, A); loss = 0.5 sum_k mean(w (Q_k(s, a) - y)^2), ``q_taken``
    (K, B) the critics at the taken actions.
    """
    with torch.no_grad():
        v_next = discrete_soft_value(next_probs, next_log_probs, next_q, alpha)
        target = rewards + discount * (1.0 - terminated) * v_next
    return twin_mse(q_taken, target, weights)


def discrete_sac_actor_loss(probs: torch.Tensor, log_probs: torch.Tensor, q: torch.Tensor,
                            alpha: torch.Tensor | float,
                            weights: torch.Tensor | None = None) -> tuple[torch.Tensor, Info]:
    """mean_s(w sum_a pi(a|s) (alpha log pi(a|s) - min_k Q_k(s, a))), Q detached (eq. (10))."""
    alpha = alpha.detach() if torch.is_tensor(alpha) else alpha
    per = (probs * (alpha * log_probs - q.detach().min(0).values)).sum(-1)
    ent = -(probs * log_probs).sum(-1)
    return importance_weighted_mean(per, weights), {"entropy": ent.detach().mean()}


def discrete_sac_temperature_loss(log_alpha: torch.Tensor, probs: torch.Tensor,
                                  log_probs: torch.Tensor,
                                  target_entropy: float) -> tuple[torch.Tensor, Info]:
    """-mean(log alpha (sum_a pi log pi + H_target)), the policy terms detached (eq. (11))."""
    neg_ent = (probs * log_probs).sum(-1).detach()
    loss = -(log_alpha * (neg_ent + target_entropy)).mean()
    return loss, {"alpha": log_alpha.detach().exp()}
