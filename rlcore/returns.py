"""Advantages and returns as pure functions of arrays.

All functions take arrays shaped (T, N): T time steps of N environments. ``terminated`` and
``truncated`` are kept apart: a terminated step has no future (no bootstrap); a truncated step
bootstraps from ``next_values``, the value of its real final observation; both cut the recursion,
because the next row belongs to another episode. Rewards are stored as received: nothing of gamma
is baked into them, so a new gamma only needs a new call (docs/algorithms/ppo.md, section "Changing
gamma mid-run").
"""

from __future__ import annotations

import numpy as np

__all__ = ["td_residuals", "gae", "discounted_returns", "explained_variance"]


# --8<-- [start:td-residuals]
def td_residuals(rewards: np.ndarray, values: np.ndarray, next_values: np.ndarray,
                 terminated: np.ndarray, gamma: float) -> np.ndarray:
    """TD errors delta_t = r_t + gamma (1 - term_t) V(s'_t) - V(s_t) (docs/algorithms/ppo.md, eq. (6))."""
    return rewards + gamma * (1.0 - terminated) * next_values - values


def gae(rewards: np.ndarray, values: np.ndarray, next_values: np.ndarray,
        terminated: np.ndarray, truncated: np.ndarray, gamma: float,
        lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Generalised advantage estimation; returns (advantages, returns), each (T, N).

    A_t = delta_t + gamma * lam * (1 - done_t) * A_{t+1}, with done = terminated or truncated and
    A_T = 0 past the last row (docs/algorithms/ppo.md, eq. (7)); returns R_t = A_t + V(s_t) (eq. (8)).
    ``next_values[t]`` is V of the observation that followed row t (the real final observation when
    row t ended its episode).
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    term = np.asarray(terminated, dtype=np.float64)
    cont = 1.0 - np.maximum(term, np.asarray(truncated, dtype=np.float64))
    delta = td_residuals(rewards, values, np.asarray(next_values, dtype=np.float64), term, gamma)
    adv = np.zeros_like(delta)
    last = np.zeros(delta.shape[1:], dtype=np.float64)
    coef = gamma * lam
    for t in range(delta.shape[0] - 1, -1, -1):
        last = delta[t] + coef * cont[t] * last
        adv[t] = last
    return adv, adv + values
# --8<-- [end:td-residuals]


def discounted_returns(rewards: np.ndarray, next_values: np.ndarray, terminated: np.ndarray,
                       truncated: np.ndarray, gamma: float) -> np.ndarray:
    """Bootstrapped discounted returns G_t = r_t + gamma G_{t+1} (docs/algorithms/ppo.md, eq. (9)).

    At a terminated row G_t = r_t; at a truncated row, or the last row, G_t = r_t + gamma V(s'_t).
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    term = np.asarray(terminated, dtype=bool)
    trunc = np.asarray(truncated, dtype=bool)
    nv = np.asarray(next_values, dtype=np.float64)
    out = np.zeros_like(rewards)
    T = rewards.shape[0]
    nxt = nv[T - 1]
    for t in range(T - 1, -1, -1):
        boot = np.where(term[t], 0.0, np.where(trunc[t] | (t == T - 1), nv[t], nxt))
        out[t] = rewards[t] + gamma * boot
        nxt = out[t]
    return out


def explained_variance(returns: np.ndarray, values: np.ndarray) -> float:
    """1 - Var(R - V) / Var(R) (docs/algorithms/a2c.md, eq. (6)); NaN when Var(R) = 0.

    Logged by PPO and A2C as ``losses/explained_variance``.
    """
    var_y = float(np.var(returns))
    if returns.size == 0 or var_y == 0:
        return float("nan")
    return float(1.0 - np.var(returns - values) / var_y)

