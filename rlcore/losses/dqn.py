"""DQN losses as pure functions: tensors in, ``(loss, info)`` out (docs/algorithms/dqn.md).

``discount`` is the per-sample bootstrap factor (gamma, or gamma^m for an m-step return); only
``terminated`` removes the bootstrap. ``weights`` are importance weights from prioritised replay:
the loss is ``mean(w * l)`` over the batch (not divided by sum(w): the weights are already
normalised to at most 1, Schaul et al. 2016).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["dqn_target", "dqn_td_loss", "dqn_td_closed_form"]

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
def dqn_td_closed_form(q_all: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
                       terminated: np.ndarray, discount: np.ndarray | float,
                       next_q_target: np.ndarray, next_q_online: np.ndarray | None = None,
                       weights: np.ndarray | None = None, loss: str = "huber", delta: float = 1.0
                       ) -> tuple[float, np.ndarray, float, np.ndarray]:
    """:func:`dqn_target`, :func:`dqn_td_loss` and the loss's derivative in one pass on NumPy
    arrays, for the closed-form path (``rlcore/handgrad.py``).

    Returns (loss, td_abs, q_mean, dL/dQ(s, .)): the loss (11) with the target (9)-(10), |y - Q|
    per sample, the mean Q(s, a), and the derivative with respect to every Q value, zero but at
    the taken action, where it is w x / B with x = clip(Q - y, -delta, delta) for huber, Q - y for
    mse (docs/algorithms/hand-gradients.md, eq. (9)).
    """
    if loss not in ("huber", "mse"):
        raise ValueError(f"dqn loss {loss!r}: expected 'huber' or 'mse'")
    rows = np.arange(len(q_all))
    if next_q_online is None:
        v = next_q_target.max(-1)
    else:
        v = next_q_target[rows, next_q_online.argmax(-1)]
    target = rewards + discount * (1.0 - terminated) * v
    actions = actions.astype(np.intp, copy=False)
    q_taken = q_all[rows, actions]
    x = q_taken - target
    td_abs = np.abs(x)
    if loss == "huber":  # torch's huber_loss: quadratic below delta, linear from it
        per = np.where(td_abs < delta, 0.5 * x * x, delta * (td_abs - 0.5 * delta))
        x = np.clip(x, -delta, delta)
    else:
        per = 0.5 * x * x
    if weights is not None:
        per, x = weights * per, weights * x
    n = len(q_all)
    d_q = np.zeros_like(q_all)
    d_q[rows, actions] = x / n
    # np.add.reduce: the mean's sum without np.mean's Python wrapper (5 us a call here)
    return float(np.add.reduce(per)) / n, td_abs, float(np.add.reduce(q_taken)) / n, d_q
# --8<-- [end:td-loss-grad]
