"""The A2C policy-gradient loss as a pure function: tensors in, ``(loss, info)`` out.

A2C shares its value and entropy losses with PPO (:func:`rlcore.losses.ppo.value_loss`,
:func:`rlcore.losses.ppo.entropy_loss`); only the plain policy-gradient term is its own
(docs/algorithms/a2c.md, eq. (3)).
"""

from __future__ import annotations

import torch

from rlcore.losses.ppo import masked_mean

__all__ = ["policy_gradient_loss"]

Info = dict[str, torch.Tensor]


# --8<-- [start:policy-gradient-loss]
def policy_gradient_loss(log_prob: torch.Tensor, advantages: torch.Tensor,
                         weights: torch.Tensor | None = None) -> tuple[torch.Tensor, Info]:
    """Negative policy-gradient objective L = -E[log pi(a|s) A] (docs/algorithms/a2c.md, eq. (3)).

    ``advantages`` are treated as constants by the caller (they come from the rollout and carry no
    graph); the function itself does not detach them, so that its gradient with respect to both
    inputs can be checked. ``weights`` (e.g. the 0/1 valid mask) make every mean the weighted mean
    sum(w x) / sum(w). Info: ``advantage_mean``, the (weighted) mean advantage.
    """
    if log_prob.shape != advantages.shape:
        raise ValueError(f"policy_gradient_loss: log_prob shape {tuple(log_prob.shape)} != "
                         f"advantages shape {tuple(advantages.shape)}")
    if weights is not None and weights.shape != log_prob.shape:
        raise ValueError(f"policy_gradient_loss: weights shape {tuple(weights.shape)} != "
                         f"log_prob shape {tuple(log_prob.shape)}")
    loss = -masked_mean(log_prob * advantages, weights)
    with torch.no_grad():
        adv_mean = masked_mean(advantages, weights)
    return loss, {"advantage_mean": adv_mean}
# --8<-- [end:policy-gradient-loss]
