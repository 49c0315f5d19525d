"""Memories against forgetting: a reservoir of older data windows and fresh-transition recency.

* :class:`WindowReservoir` keeps a uniform random sample of every training window seen so far
  (Vitter's Algorithm R, docs/guide/continual-learning.md, eq. (2)): after ``n`` windows each one
  is in the reservoir with probability ``min(1, K / n)``. The loop rehearses on them: a share
  ``rehearsal_frac`` of each tick's rollouts is collected on a window drawn from it. On-policy
  agents (PPO, A2C) need this form, because their data must come from the current policy;
  off-policy agents get it too, as older experience re-entering their replay buffer.
* :func:`configure_recency` turns on the recency mixture of ``rlcore/per.py`` (eq. (6) there) for
  agents with a prioritised replay buffer, through ``set_hparam``: a share ``recent_frac`` of
  each batch comes uniformly from the newest ``recent_window`` transitions (this tick's fresh
  ones).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["WindowReservoir", "configure_recency"]


class WindowReservoir:
    """A fixed-size uniform sample of items (here ``(first_bar, last_bar)`` time ranges)."""

    def __init__(self, capacity: int, seed: int = 0):
        if capacity < 1:
            raise ValueError(f"reservoir_size: expected >= 1, got {capacity}")
        self.capacity = int(capacity)
        self.items: list[Any] = []
        self.seen = 0
        self.rng = np.random.default_rng(seed)

    # --8<-- [start:add]
    def add(self, item: Any) -> None:
        """Offer one item (Algorithm R, eq. (2))."""
        self.seen += 1
        if len(self.items) < self.capacity:
            self.items.append(item)
            return
        j = int(self.rng.integers(0, self.seen))  # docs/guide/continual-learning.md, eq. (2)
        if j < self.capacity:
            self.items[j] = item
    # --8<-- [end:add]

    def sample(self, rng: np.random.Generator) -> Any:
        """One stored item, uniformly; IndexError if empty."""
        if not self.items:
            raise IndexError("WindowReservoir.sample: the reservoir is empty")
        return self.items[int(rng.integers(0, len(self.items)))]

    def __len__(self) -> int:
        return len(self.items)

    def state_dict(self) -> dict[str, Any]:
        """Items, count and RNG state."""
        return {"capacity": self.capacity, "items": list(self.items), "seen": self.seen,
                "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`."""
        self.capacity = int(state["capacity"])
        self.items = list(state["items"])
        self.seen = int(state["seen"])
        self.rng.bit_generator.state = state["rng"]


def configure_recency(agent: Any, recent_frac: float, recent_window: int) -> bool:
    """Set the recency mixture through the agent's one door for changes, if its hyperparameters
    have one (prioritised replay: ``per_recent_frac``, ``per_recent_window``); True if they do.
    An out-of-range value raises :class:`rlcore.hparams.HParamError`."""
    if "per_recent_frac" not in agent.hparam_values():
        return False
    agent.set_hparam("per_recent_frac", recent_frac, "online")
    agent.set_hparam("per_recent_window", max(1, int(recent_window)), "online")
    return True
