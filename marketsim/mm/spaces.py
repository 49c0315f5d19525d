"""Observation and action spaces of the market-making environment (one environment)."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from marketsim.mm.config import MMConfig


def observation_space(config: MMConfig) -> spaces.Box:
    """Float32 Box: q/Q, time left, returns, PnL, vol ratio, then the book block if any."""
    return spaces.Box(-np.inf, np.inf, shape=(config.obs_dim,), dtype=np.float32)


def action_space(config: MMConfig) -> spaces.Space:
    """Discrete gamma index, or a [-1, 1] Box (4 continuous parameters or 2 quote parameters)."""
    if config.action_type == "discrete":
        return spaces.Discrete(len(config.gammas))
    dim = 4 if config.action_type == "continuous" else 2
    return spaces.Box(-1.0, 1.0, shape=(dim,), dtype=np.float32)
