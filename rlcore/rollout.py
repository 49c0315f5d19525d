"""The on-policy rollout buffer: T steps of N environments in preallocated arrays.

It keeps raw rewards, values and bootstrap values, so advantages can be recomputed at any time
from :func:`rlcore.returns.gae` with a new gamma or lambda (docs/algorithms/ppo.md, "Changing
gamma mid-run"). ``consumed`` tells whether the data was already trained on.
"""

from __future__ import annotations

import numpy as np

from rlcore.agent import Transition
from rlcore.returns import gae

__all__ = ["RolloutBuffer"]


class RolloutBuffer:
    """Rollout storage with (T, N, ...) arrays and a recomputable advantage estimate."""

    def __init__(self, n_steps: int, n_envs: int, obs_shape: tuple[int, ...],
                 act_shape: tuple[int, ...], act_dtype=np.float32):
        T, N = n_steps, n_envs
        self.n_steps, self.n_envs = T, N
        self.obs = np.zeros((T, N, *obs_shape), np.float32)
        self.actions = np.zeros((T, N, *act_shape), act_dtype)
        self.log_probs = np.zeros((T, N), np.float32)
        self.values = np.zeros((T, N), np.float32)
        self.rewards = np.zeros((T, N), np.float64)
        self.terminated = np.zeros((T, N), bool)
        self.truncated = np.zeros((T, N), bool)
        self.valid = np.ones((T, N), bool)
        self.episode_start = np.zeros((T, N), bool)
        self.next_values = np.zeros((T, N), np.float64)
        self.advantages = np.zeros((T, N), np.float64)
        self.returns = np.zeros((T, N), np.float64)
        self.initial_state = None
        self.pos = 0
        self.consumed = True

    @property
    def full(self) -> bool:
        """True once T steps are stored."""
        return self.pos == self.n_steps

    def add(self, tr: Transition, actions: np.ndarray, log_probs: np.ndarray,
            values: np.ndarray) -> None:
        """Store one vector step (``actions`` are the policy's raw samples)."""
        t = self.pos
        if t == 0:
            self.initial_state = tr.state
            self.consumed = False
        self.obs[t] = tr.obs.reshape(self.obs.shape[1:])
        self.actions[t] = actions.reshape(self.actions.shape[1:])
        self.log_probs[t] = log_probs
        self.values[t] = values
        self.rewards[t] = tr.rewards
        self.terminated[t] = tr.terminated
        self.truncated[t] = tr.truncated
        self.valid[t] = tr.valid
        self.episode_start[t] = tr.episode_start
        self.pos += 1

    # --8<-- [start:finish]
    def finish(self, last_values: np.ndarray, gamma: float, lam: float) -> None:
        """Set bootstrap values and compute advantages.

        With NEXT_STEP autoreset the observation after row t is row t+1's observation (the real
        final observation when row t ended an episode), so V(s'_t) = values[t+1]; the last row
        bootstraps from ``last_values``.
        """
        self.next_values[:-1] = self.values[1:]
        self.next_values[-1] = last_values
        self.recompute(gamma, lam)

    def recompute(self, gamma: float, lam: float) -> None:
        """Recompute advantages and returns with (possibly new) gamma and lambda."""
        # Invalid rows (the reset step after an episode end) are masked out of every loss; treat
        # them as terminated so that nothing flows through them.
        term = self.terminated | ~self.valid
        self.advantages, self.returns = gae(self.rewards, self.values, self.next_values, term,
                                            self.truncated, gamma, lam)
    # --8<-- [end:finish]

    def reset(self) -> None:
        """Mark the data consumed and start a new rollout."""
        self.pos = 0
        self.consumed = True
