"""Helpers of the live-trading tests: small futures settings, synthetic bars, policies."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pandas as pd

from marketsim.futures.config import FuturesConfig
from marketsim.live.orders import Bar

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
ETH_1M = SHARED_DATA / "binance-spot_ETHUSDT_1m_20230316_20230501.csv.gz"
MINUTE_MS = 60_000
T0_MS = 1_704_067_200_000  # 2024-01-01 00:00 UTC


def small_cfg(**over) -> FuturesConfig:
    """Futures settings with a short feature history (window 4, vol_window 8: 13 bars) and
    leverage sizing (a target fraction a means a * max_leverage * equity of notional)."""
    return FuturesConfig(**{"window": 4, "vol_window": 8, "sizing": "leverage", **over})


def synthetic_candles(n: int, seed: int = 0, start_ms: int = T0_MS, vol: float = 0.002,
                      price: float = 2000.0) -> pd.DataFrame:
    """Seeded 1m random-walk candles (open = previous close) from ``start_ms``."""
    rng = np.random.default_rng(seed)
    close = price * np.exp(np.cumsum(rng.normal(0.0, vol, n)))
    open_ = np.concatenate([[price], close[:-1]])
    spread = np.abs(rng.normal(0.0, vol / 2, n))
    high = np.maximum(open_, close) * (1 + spread)
    low = np.minimum(open_, close) * (1 - spread)
    idx = pd.DatetimeIndex(pd.to_datetime(start_ms + MINUTE_MS * np.arange(n), unit="ms", utc=True),
                           name="timestamp")
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close,
                         "volume": rng.lognormal(3, 0.5, n)}, index=idx)


def bar(i: int, close: float, start_ms: int = T0_MS, width: float = 0.001) -> Bar:
    """A simple bar number ``i``: open = close, high/low ``width`` around it."""
    return Bar(start_ms + i * MINUTE_MS, close, close * (1 + width), close * (1 - width), close,
               100.0)


def obs_policy(obs, info=None):
    """A deterministic policy of the observation: trades often, both ways."""
    return np.array([np.sin(3.0 * float(obs[0]) + float(obs[2]))], np.float32)


def constant_policy(value: float):
    """A policy that always wants the same target fraction."""
    def decide(obs, info=None):
        return np.array([value], np.float32)
    return decide


def run(coro):
    """Run a coroutine to completion in a fresh event loop."""
    return asyncio.run(coro)
