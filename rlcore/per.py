"""Prioritised experience replay (Schaul et al. 2016) over :class:`rlcore.replay.ReplayBuffer`.

Priorities and weights (docs/algorithms/dqn.md, eqs. (3)-(6)):

* priority of transition i: ``p_i = |delta_i| + eps``; new transitions get the largest p seen;
* sampling probability: ``P(i) = p_i^alpha / sum_k p_k^alpha``;
* importance weight: ``w_i = (N P(i))^(-beta) / max_{j in batch} w_j``, N the number of stored
  transitions. The maximum is taken over the sampled batch (as Dopamine does), so every weight is
  at most 1. Normalising by the buffer-wide maximum instead (``min_j P(j)`` over the whole buffer)
  lets one near-zero priority shrink every weight: with eps = 1e-6 and alpha = 0.6 a typical
  |td| of 0.1 gets w ~ 1e-3 at beta = 1, a 1000x smaller step (docs/algorithms/dqn.md, Pitfalls).

Recency (for continual learning): with ``recent_frac = f > 0`` a share f of every batch is drawn
uniformly from the newest ``recent_window`` transitions and the rest by priority. The sampling
probability is then the mixture ``P(i) = (1 - f) p_i^alpha / S + f [i recent] / W`` (eq. (6)) and
the weights above use it.

``alpha``, ``beta`` and ``eps`` are mutable: a new alpha rebuilds the tree from the stored
``p_i`` (O(N), numpy), a new eps applies to priorities computed from then on, and beta is read at
every sample.
"""

from __future__ import annotations

import numpy as np

from rlcore.replay import Batch, ReplayBuffer
from rlcore.sumtree import SumTree

__all__ = ["PrioritizedReplayBuffer"]


class PrioritizedReplayBuffer:
    """Replay buffer with proportional prioritisation and an optional recency mixture."""

    def __init__(self, buffer: ReplayBuffer, alpha: float = 0.6, beta: float = 0.4,
                 eps: float = 1e-6, recent_frac: float = 0.0, recent_window: int = 10_000):
        self.buffer = buffer
        cap = buffer.capacity
        self._tree = SumTree(cap)
        self._pending: list[np.ndarray] = []  # slots stored since the tree was last read
        self._n_pending = 0
        self.p = np.zeros(cap, dtype=np.float64)
        self.max_p = 1.0
        self.alpha = self.beta = self.eps = 0.0
        self.set_alpha(alpha)
        self.set_beta(beta)
        self.set_eps(eps)
        if not 0.0 <= recent_frac < 1.0:
            raise ValueError(f"recent_frac: expected 0 <= f < 1, got {recent_frac}")
        if recent_window < 1:
            raise ValueError(f"recent_window: expected >= 1, got {recent_window}")
        self.recent_frac = float(recent_frac)
        self.recent_window = int(recent_window)

    # -- mutable hyperparameters ---------------------------------------------------------------
    def set_alpha(self, alpha: float) -> None:
        """Set alpha in [0, 1] and rebuild the tree from the stored p_i."""
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"per_alpha: expected 0 <= alpha <= 1, got {alpha}")
        self.alpha = float(alpha)
        stored = self.buffer.valid_slots_mask()
        pa = np.where(stored, self.p ** self.alpha, 0.0)
        self._pending.clear()
        self._n_pending = 0
        self._tree.set_all(pa)

    def set_beta(self, beta: float) -> None:
        """Set the importance-weight exponent beta in [0, 1]."""
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"per_beta: expected 0 <= beta <= 1, got {beta}")
        self.beta = float(beta)

    def set_eps(self, eps: float) -> None:
        """Set the priority offset eps > 0 (applies to priorities computed from now on)."""
        if not eps > 0.0:
            raise ValueError(f"per_eps: expected > 0, got {eps}")
        self.eps = float(eps)

    # -- storage -------------------------------------------------------------------------------
    @property
    def size(self) -> int:
        """Number of stored transitions."""
        return self.buffer.size

    def __len__(self) -> int:
        return self.buffer.size

    @property
    def sum_tree(self) -> SumTree:
        """The sum tree over p_i^alpha, first brought up to date with the transitions stored
        since it was last read.

        Storing a transition writes its priority to ``p`` at once but its tree leaf later, in one
        vectorised update for all the transitions stored in between (a DQN with ``train_freq``
        256 stores 256 steps per sample): one update walks all ``log2(capacity)`` levels, so a
        per-step update cost a DQN step more than its replay storage did. What the tree answers
        is the same.
        """
        self._sync_tree()
        return self._tree

    def _sync_tree(self) -> None:
        if self._pending:
            slots = np.concatenate(self._pending)
            self._pending.clear()
            self._n_pending = 0
            self._tree.update(slots, self.p[slots] ** self.alpha)

    def add(self, *args, **kwargs) -> np.ndarray:
        """Store like :meth:`ReplayBuffer.add`; new transitions get the maximum priority."""
        slots = self.buffer.add(*args, **kwargs)
        if slots.size:
            self.p[slots] = self.max_p
            self._pending.append(slots)
            self._n_pending += slots.size
            if self._n_pending >= 4096:  # bounded memory while nothing samples
                self._sync_tree()
        return slots

    def _set(self, slots: np.ndarray, p: np.ndarray) -> None:
        self.p[slots] = p
        pa = p ** self.alpha
        self.sum_tree.update(slots, pa)

    # --8<-- [start:update-priorities]
    def update_priorities(self, slots: np.ndarray, td_abs: np.ndarray) -> None:
        """Set p_i = |delta_i| + eps for the sampled slots (eq. (3))."""
        td_abs = np.abs(np.asarray(td_abs, dtype=np.float64).reshape(-1))
        if td_abs.shape != np.shape(slots):
            raise ValueError(f"update_priorities: {td_abs.shape} priorities for "
                             f"{np.shape(slots)} slots")
        if not np.all(np.isfinite(td_abs)):
            raise ValueError("update_priorities: |td| must be finite")
        p = td_abs + self.eps
        self._set(np.asarray(slots), p)
        self.max_p = max(self.max_p, float(p.max(initial=0.0)))

    # -- sampling ------------------------------------------------------------------------------
    def probabilities(self, slots: np.ndarray) -> np.ndarray:
        """Sampling probability P(i) of each slot under the current mixture (eqs. (4), (6))."""
        total = self.sum_tree.total
        P = (1.0 - self.recent_frac) * self.sum_tree.get(slots) / total
        if self.recent_frac > 0:
            rows, envs = self.buffer.recent_slots(self.recent_window)
            recent = rows * self.buffer.n_envs + envs
            P = P + self.recent_frac * np.isin(slots, recent) / max(len(recent), 1)
        return P

    def sample_slots(self, batch_size: int) -> np.ndarray:
        """Slots drawn by priority (stratified prefix sums) plus the recency share."""
        rng = self.buffer.rng
        n_recent = int(round(batch_size * self.recent_frac))
        n_prio = batch_size - n_recent
        total = self.sum_tree.total
        if total <= 0:
            raise ValueError("PrioritizedReplayBuffer.sample: the buffer is empty")
        u = (np.arange(n_prio) + rng.random(n_prio)) * (total / max(n_prio, 1))
        slots = self.sum_tree.find(np.minimum(u, np.nextafter(total, 0)))
        if n_recent:
            rows, envs = self.buffer.recent_slots(self.recent_window)
            pick = rng.integers(0, len(rows), size=n_recent)
            slots = np.concatenate([slots, rows[pick] * self.buffer.n_envs + envs[pick]])
        return slots

    def weights(self, slots: np.ndarray) -> np.ndarray:
        """Importance weights (N P(i))^(-beta) / max over ``slots``, each <= 1 (eq. (5))."""
        w = (self.size * self.probabilities(slots)) ** (-self.beta)
        return w / w.max()

    def sample(self, batch_size: int, gamma: float = 0.99, n_step: int = 1) -> Batch:
        """A prioritised batch of n-step transitions with importance weights."""
        slots = self.sample_slots(batch_size)
        w = self.weights(slots).astype(np.float32)
        return self.buffer.gather(slots, gamma, n_step, w)
    # --8<-- [end:update-priorities]

    def state_dict(self) -> dict[str, object]:
        """Buffer contents, stored priorities and the running maximum."""
        return {"buffer": self.buffer.state_dict(), "p": self.p.copy(), "max_p": self.max_p}

    def load_state_dict(self, state: dict[str, object]) -> None:
        """Restore from :meth:`state_dict`; the tree is rebuilt."""
        self.buffer.load_state_dict(state["buffer"])
        self.p[:] = state["p"]
        self.max_p = float(state["max_p"])
        self.set_alpha(self.alpha)
