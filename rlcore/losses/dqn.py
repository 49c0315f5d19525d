"""DQN losses as pure functions: tensors in, ``(loss, info)`` out (docs/algorithms/dqn.md).

``discount`` is the per-sample bootstrap factor (gamma, or gamma^m for an m-step return); only
``terminated`` removes the bootstrap. ``weights`` are importance weights from prioritised replay:
the loss is ``mean(w * l)`` over the batch (not divided by sum(w): the weights are already
normalised to at most 1, Schaul et al. 2016).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["dqn_target", "dqn_td_loss", "dqn_td_loss_grad"]

Info = dict[str, torch.Tensor]


# --8<-- [start:dqn-target]
def dqn_target(rewards: torch.Tensor, terminated: torch.Tensor, discount: torch.Tensor | float,
               next_q_target: torch.Tensor, next_q_online: torch.Tensor | None = None
               ) -> torch.Tensor:
    """y = r + discount (1 - terminated) Q_target(s', a*), returned detached (eqs. (9)-(10)).

    Double DQN (``next_q_online`` given): a* = argmax_a Q_online(s', a), the online net selects
    and the target net evaluates. Otherwise a* = argmax_a Q_target(s', a) (plain DQN).
    """
    with torch.no_grad():
        if next_q_online is None:
            v = next_q_target.max(-1).values
        else:
            a_star = next_q_online.argmax(-1, keepdim=True)
            v = next_q_target.gather(-1, a_star).squeeze(-1)
        return rewards + discount * (1.0 - terminated) * v


def dqn_td_loss(q_taken: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None,
                loss: str = "huber", delta: float = 1.0) -> tuple[torch.Tensor, Info]:
    """Importance-weighted TD loss mean(w l(Q(s, a) - y)) (eq. (11)).

    ``loss``: ``huber`` (l(x) = x^2/2 for |x| <= delta, else delta (|x| - delta/2)) or ``mse``
    (l(x) = x^2 / 2, so both agree near 0). Info: ``td_abs`` = |y - Q| per
    sample (for priority updates) and ``q_mean``.
    """
    target = target.detach()
    if loss == "huber":
        per = F.huber_loss(q_taken, target, reduction="none", delta=delta)
    elif loss == "mse":
        per = 0.5 * (q_taken - target) ** 2
    else:
        raise ValueError(f"dqn loss {loss!r}: expected 'huber' or 'mse'")
    value = per.mean() if weights is None else (weights * per).mean()
    return value, {"td_abs": (target - q_taken).detach().abs(), "q_mean": q_taken.detach().mean()}
# --8<-- [end:dqn-target]


# --8<-- [start:td-loss-grad]
def dqn_td_loss_grad(q_taken: torch.Tensor, target: torch.Tensor,
                     weights: torch.Tensor | None = None, loss: str = "huber",
                     delta: float = 1.0) -> torch.Tensor:
    """d/dQ(s, a) of :func:`dqn_td_loss`, per sample (docs/algorithms/hand-gradients.md,
    eq. (9)): w x / B with x = clip(Q - y, -delta, delta) for huber, Q - y for mse."""
    x = q_taken - target
    if loss == "huber":
        x = x.clamp_(-delta, delta)
    elif loss != "mse":
        raise ValueError(f"dqn loss {loss!r}: expected 'huber' or 'mse'")
    if weights is not None:
        x = x.mul_(weights)
    return x.div_(len(q_taken))
# --8<-- [end:td-loss-grad]
