"""PPO losses as pure functions: tensors in, ``(loss, info)`` out (docs/algorithms/ppo.md).

``weights`` (optional) is a per-sample weight, e.g. the 0/1 mask of valid transitions; every
mean below is the weighted mean sum(w x) / sum(w).
"""

from __future__ import annotations

import torch

__all__ = ["masked_mean", "clipped_surrogate", "value_loss", "entropy_loss", "approx_kl",
           "standardise_advantages"]

Info = dict[str, torch.Tensor]


def masked_mean(x: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of ``x`` over the rows whose 0/1 mask ``weights`` is 1: sum(w x) / sum(w) (all rows
    when None). On-policy losses use it to drop the invalid reset steps of a sequence."""
    if weights is None:
        return x.mean()
    return (x * weights).sum() / weights.sum().clamp_min(1e-12)


def approx_kl(log_prob: torch.Tensor, old_log_prob: torch.Tensor,
              weights: torch.Tensor | None = None) -> torch.Tensor:
    """KL(old || new) estimate E[(rho - 1) - log rho], rho = pi/pi_old (docs/algorithms/ppo.md, eq. (5))."""
    log_ratio = log_prob - old_log_prob
    return masked_mean(torch.expm1(log_ratio) - log_ratio, weights)


# --8<-- [start:clipped-surrogate]
def clipped_surrogate(log_prob: torch.Tensor, old_log_prob: torch.Tensor,
                      advantages: torch.Tensor, clip_range: float,
                      weights: torch.Tensor | None = None) -> tuple[torch.Tensor, Info]:
    """Negative clipped surrogate objective (docs/algorithms/ppo.md, eq. (2)).

    L = -E[min(rho A, clip(rho, 1 - eps, 1 + eps) A)] with rho = exp(log_prob - old_log_prob).
    Info: ``clip_fraction`` (share of samples with |rho - 1| > eps) and ``approx_kl``.
    """
    ratio = torch.exp(log_prob - old_log_prob)
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1.0 - clip_range, 1.0 + clip_range) * advantages
    loss = -masked_mean(torch.min(unclipped, clipped), weights)
    with torch.no_grad():
        clip_frac = masked_mean(((ratio - 1.0).abs() > clip_range).to(ratio.dtype), weights)
        kl = approx_kl(log_prob, old_log_prob, weights)
    return loss, {"clip_fraction": clip_frac, "approx_kl": kl}


def value_loss(values: torch.Tensor, returns: torch.Tensor, old_values: torch.Tensor | None = None,
               clip_range_vf: float | None = None,
               weights: torch.Tensor | None = None) -> tuple[torch.Tensor, Info]:
    """Squared-error value loss, optionally clipped around the rollout's values.

    Unclipped: 0.5 E[(V - R)^2] (eq. (3)). Clipped: 0.5 E[max((V - R)^2, (V_clip - R)^2)] with
    V_clip = V_old + clip(V - V_old, -eps_v, eps_v) (eq. (4)). Info: ``explained_target_var``
    is not computed here; ``value_clip_fraction`` when clipping.
    """
    err = (values - returns) ** 2
    info: Info = {}
    if clip_range_vf is not None and old_values is not None:
        v_clip = old_values + torch.clamp(values - old_values, -clip_range_vf, clip_range_vf)
        err = torch.max(err, (v_clip - returns) ** 2)
        with torch.no_grad():
            info["value_clip_fraction"] = masked_mean(
                ((values - old_values).abs() > clip_range_vf).to(values.dtype), weights)
    return 0.5 * masked_mean(err, weights), info


def entropy_loss(entropy: torch.Tensor,
                 weights: torch.Tensor | None = None) -> tuple[torch.Tensor, Info]:
    """Entropy bonus as a loss to minimise: -E[H(pi(.|s))] (docs/algorithms/ppo.md, eq. (10))."""
    ent = masked_mean(entropy, weights)
    return -ent, {"entropy": ent.detach()}
# --8<-- [end:clipped-surrogate]


def standardise_advantages(a: torch.Tensor, w: torch.Tensor | None = None) -> torch.Tensor:
    """(a - mean) / (std + 1e-8) over the rows with weight 1 (all rows when ``w`` is None), with
    the sample standard deviation (n - 1, as torch's ``std``) (docs/algorithms/ppo.md, eq. (11)).

    One function for flat and recurrent PPO and for A2C, so they agree on ddof."""
    if w is None:  # the same rule in fewer operations (the hand-gradient path's minibatches)
        n = a.numel()
        return (a - a.mean()) / (a.var(correction=1 if n > 1 else 0).sqrt() + 1e-8)
    n = w.sum()
    mean = (a * w).sum() / n.clamp_min(1.0)
    var = ((a - mean) ** 2 * w).sum() / (n - 1.0).clamp_min(1.0)
    return (a - mean) / (var.sqrt() + 1e-8)
