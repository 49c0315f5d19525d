"""A small candle-driven trading environment for fast continual-learning tests and docs.

``marketsim/TrendToy-v0`` reads the same candle frames as ``CryptoFuturesEnv`` (``data=`` a
DataFrame with a ``close`` column) but has no fees, margin or funding: the observation is the last
``k`` log returns divided by ``scale``; the action picks a position in {short, flat, long}; the reward is
``position * r_{t+1} / scale`` (docs/guide/continual-learning.md, eq. (7)). In a trending regime
the best policy follows the sign of the recent drift, so a regime switch from up to down trend
makes an agent trained on the first regime lose money on the second: the test bed of
``tests/continual/test_continual_regime.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd

from marketsim.data.load import read_candles

__all__ = ["TrendToyEnv"]


class TrendToyEnv(gym.Env):
    """Position-taking on a candle series; episodes of ``episode_length`` bars.

    Args:
        data: candle DataFrame with a ``close`` column (at least ``k + 2`` rows), or a path that
            ``marketsim.data.read_candles`` reads.
        k: number of past log returns in the observation.
        scale: returns are divided by this (about one bar's volatility).
        episode_length: steps per episode (truncated when reached or at the data's end).
    """

    metadata = {"render_modes": []}

    def __init__(self, data: pd.DataFrame | str, k: int = 8, scale: float = 0.001,
                 episode_length: int = 32, render_mode: str | None = None):
        if isinstance(data, (str, Path)):
            data = read_candles(data)
        if not isinstance(data, pd.DataFrame) or "close" not in data.columns:
            raise TypeError("TrendToy-v0: data must be a DataFrame with a 'close' column")
        close = data["close"].to_numpy(np.float64)
        if len(close) < k + 2:
            raise ValueError(f"TrendToy-v0: data has {len(close)} rows, expected >= k + 2 = {k + 2}")
        if not scale > 0:
            raise ValueError(f"TrendToy-v0: scale must be > 0, got {scale}")
        self.r = np.diff(np.log(close)) / scale  # r[i] is the return from bar i to bar i + 1
        self.k, self.episode_length = int(k), int(episode_length)
        self.t_min = self.k  # first start bar with k past returns
        self.n_bars = len(close)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (self.k,), np.float32)
        self.action_space = gym.spaces.Discrete(3)
        self._t = self._n = 0

    def start_bounds(self) -> tuple[int, int]:
        """First and last bar an episode may start at (the hold-out evaluation's window)."""
        return self.t_min, self.n_bars - 2

    def _obs(self) -> np.ndarray:
        return self.r[self._t - self.k : self._t].astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start at a random bar (seeded) or at ``options["start"]``."""
        super().reset(seed=seed)
        if options and "start" in options:
            start = int(options["start"])
            if not self.t_min <= start <= self.n_bars - 2:
                raise ValueError(f"options['start']: expected {self.t_min} <= start <= "
                                 f"{self.n_bars - 2}, got {start}")
        else:
            start = int(self.np_random.integers(self.t_min, self.n_bars - 1))
        self._t, self._n = start, 0
        return self._obs(), {}

    # --8<-- [start:step]
    def step(self, action: Any):
        """Hold position ``action - 1`` over the next bar."""
        pos = int(action) - 1
        reward = float(pos * self.r[self._t])  # docs/guide/continual-learning.md, eq. (7)
        self._t += 1
        self._n += 1
        trunc = self._n >= self.episode_length or self._t >= self.n_bars - 1
        return self._obs(), reward, False, trunc, {}
    # --8<-- [end:step]

