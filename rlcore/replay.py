"""Uniform replay in preallocated arrays, with n-step returns computed at sampling time.

Storage is one ring per environment: arrays shaped ``(rows, n_envs, ...)`` with a write cursor per
environment, so that the transitions of one environment stay in time order and an n-step return
can look ahead along the same row axis. Only valid transitions are stored (the reset step that
follows an episode end under NEXT_STEP autoreset is skipped), so row ``r + 1`` of an environment
always follows row ``r`` in time unless row ``r`` ended its episode.

n-step returns are computed when a batch is sampled, from one-step rewards stored as received
(docs/algorithms/dqn.md, eq. (1)): nothing of gamma is baked into the storage, so a new gamma or
n takes effect at the next batch. The look-ahead stops at an episode end (terminated: no
bootstrap; truncated: bootstrap from that step's real final observation) and at the newest stored
step of the environment (bootstrap from its next observation).

A *slot* is the flat index ``row * n_envs + env``; prioritised replay (``rlcore/per.py``) keys its
sum tree by slot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Batch", "ReplayBuffer"]


@dataclass
class Batch:
    """A sampled batch of (possibly n-step) transitions, numpy arrays with a leading B axis.

    Attributes:
        obs, actions: the first step's observation and action.
        rewards: sum_{k<m} gamma^k r_{t+k} over the m steps used (eq. (1)).
        next_obs: the observation to bootstrap from (after the m-th step).
        terminated: 1.0 where the m-th step ended the episode in a terminal state.
        discounts: gamma^m; the bootstrap term is discounts * (1 - terminated) * V(next_obs)
            (eq. (2)).
        n_used: m, the number of steps summed (1 <= m <= n).
        slots: flat storage indices (for priority updates).
        weights: importance weights (ones for uniform replay).
    """

    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_obs: np.ndarray
    terminated: np.ndarray
    discounts: np.ndarray
    n_used: np.ndarray
    slots: np.ndarray
    weights: np.ndarray


class ReplayBuffer:
    """Preallocated ring buffers, one per environment; ``capacity`` transitions in all."""

    def __init__(self, capacity: int, n_envs: int, obs_shape: tuple[int, ...],
                 act_shape: tuple[int, ...] = (), act_dtype: type = np.float32,
                 seed: int | None = None):
        if capacity < n_envs or n_envs < 1:
            raise ValueError(f"ReplayBuffer: capacity {capacity} must be >= n_envs {n_envs} >= 1")
        self.n_envs = int(n_envs)
        self.rows = int(np.ceil(capacity / n_envs))
        self.capacity = self.rows * self.n_envs
        R, N = self.rows, self.n_envs
        self.obs = np.zeros((R, N, *obs_shape), dtype=np.float32)
        self.next_obs = np.zeros((R, N, *obs_shape), dtype=np.float32)
        self.actions = np.zeros((R, N, *act_shape), dtype=act_dtype)
        self.rewards = np.zeros((R, N), dtype=np.float32)
        self.terminated = np.zeros((R, N), dtype=bool)
        self.truncated = np.zeros((R, N), dtype=bool)
        self.ptr = np.zeros(N, dtype=np.int64)
        self.count = np.zeros(N, dtype=np.int64)
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return int(self.count.sum())

    @property
    def size(self) -> int:
        """Number of stored transitions."""
        return int(self.count.sum())

    def add(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
            next_obs: np.ndarray, terminated: np.ndarray, truncated: np.ndarray,
            valid: np.ndarray | None = None) -> np.ndarray:
        """Store the valid rows of one vector step; returns the slots written."""
        N = self.n_envs
        if len(obs) != N:
            raise ValueError(f"ReplayBuffer.add: obs has {len(obs)} rows, expected n_envs={N}")
        columns = ((self.obs, obs), (self.next_obs, next_obs), (self.actions, actions),
                   (self.rewards, rewards), (self.terminated, terminated),
                   (self.truncated, truncated))
        if N == 1:  # one ring: plain indexing, 5 against 15 us a step
            if valid is not None and not np.asarray(valid, dtype=bool)[0]:
                return np.zeros(0, dtype=np.int64)
            r = int(self.ptr[0])
            for store, value in columns:
                store[r, 0] = np.asarray(value).reshape(store.shape[1:])[0]
            self.ptr[0] = (r + 1) % self.rows
            self.count[0] = min(int(self.count[0]) + 1, self.rows)
            return np.array([r], dtype=np.int64)
        envs = np.arange(N) if valid is None else np.flatnonzero(np.asarray(valid, dtype=bool))
        if envs.size == 0:
            return envs
        rows = self.ptr[envs]
        for store, value in columns:
            store[rows, envs] = np.asarray(value).reshape(N, *store.shape[2:])[envs]
        self.ptr[envs] = (rows + 1) % self.rows
        self.count[envs] = np.minimum(self.count[envs] + 1, self.rows)
        return rows * N + envs

    def valid_slots_mask(self) -> np.ndarray:
        """(capacity,) booleans: which slots hold a transition."""
        return (np.arange(self.rows)[:, None] < self.count[None, :]).reshape(-1)

    def sample_slots(self, batch_size: int) -> np.ndarray:
        """Uniform slots over all stored transitions."""
        total = self.size
        if total == 0:
            raise ValueError("ReplayBuffer.sample: the buffer is empty")
        u = self.rng.integers(0, total, size=batch_size)
        if self.n_envs == 1:  # one ring: the draw is the slot
            return u
        ends = np.cumsum(self.count)
        env = np.searchsorted(ends, u, side="right")
        row = u - (ends[env] - self.count[env])
        return row * self.n_envs + env

    def sample(self, batch_size: int, gamma: float = 0.99, n_step: int = 1) -> Batch:
        """A uniform batch of n-step transitions (weights are ones)."""
        slots = self.sample_slots(batch_size)
        return self.gather(slots, gamma, n_step, np.ones(batch_size, dtype=np.float32))

    def recent_slots(self, window: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows, envs) of the newest ``ceil(window / n_envs)`` stored rows of each environment."""
        per = int(np.ceil(window / self.n_envs))
        k = np.minimum(self.count, per)
        env = np.repeat(np.arange(self.n_envs), k)
        back = np.concatenate([np.arange(1, kk + 1) for kk in k]) if k.sum() else np.zeros(0, int)
        rows = (self.ptr[env] - back) % self.rows
        return rows, env

    # --8<-- [start:gather]
    def gather(self, slots: np.ndarray, gamma: float, n_step: int,
               weights: np.ndarray) -> Batch:
        """Read the transitions at ``slots`` and fold n-step returns (eqs. (1)-(2))."""
        if n_step < 1:
            raise ValueError(f"n_step: expected >= 1, got {n_step}")
        if n_step == 1:  # no look-ahead: one take per array of the flat slot index
            n = len(slots)
            return Batch(self._take(self.obs, slots), self._take(self.actions, slots),
                         self._take(self.rewards, slots), self._take(self.next_obs, slots),
                         self._take(self.terminated, slots).astype(np.float32),
                         np.full(n, gamma, dtype=np.float32), np.ones(n, dtype=np.int64),
                         np.asarray(slots), weights)
        row, env = np.divmod(slots, self.n_envs)
        obs = self.obs[row, env]
        actions = self.actions[row, env]
        rew = self.rewards[row, env].astype(np.float64)
        term = self.terminated[row, env].copy()
        done = term | self.truncated[row, env]
        last = row
        n_used = np.ones(len(slots), dtype=np.int64)
        if n_step > 1:
            # rows written after ``row`` in this environment's ring
            ahead = (self.ptr[env] - row - 1) % self.rows
            disc = np.ones(len(slots))
            for k in range(1, n_step):
                go = (~done) & (ahead >= k)
                if not go.any():
                    break
                r = (row + k) % self.rows
                disc = np.where(go, disc * gamma, disc)
                rew += np.where(go, disc * self.rewards[r, env], 0.0)
                t_k, d_k = self.terminated[r, env], self.terminated[r, env] | self.truncated[r, env]
                term = np.where(go, t_k, term)
                done = np.where(go, d_k, done)
                last = np.where(go, r, last)
                n_used += go
        next_obs = self.next_obs[last, env]
        discounts = np.power(gamma, n_used)
        return Batch(obs, actions, rew.astype(np.float32), next_obs, term.astype(np.float32),
                     discounts.astype(np.float32), n_used, np.asarray(slots), weights)
    # --8<-- [end:gather]

    def _take(self, a: np.ndarray, slots: np.ndarray) -> np.ndarray:
        """Rows ``slots`` (slot = row * n_envs + env) of a ``(rows, n_envs, ...)`` array."""
        return a.reshape(self.capacity, *a.shape[2:]).take(slots, axis=0)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Contents and cursors (large: written only when asked)."""
        return {k: getattr(self, k).copy() for k in
                ("obs", "next_obs", "actions", "rewards", "terminated", "truncated", "ptr",
                 "count")}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore from :meth:`state_dict` (shapes must match)."""
        for k, v in state.items():
            cur = getattr(self, k)
            if cur.shape != np.shape(v):
                raise ValueError(f"ReplayBuffer.load_state_dict: {k} has shape {np.shape(v)}, "
                                 f"expected {cur.shape}")
            cur[...] = v
