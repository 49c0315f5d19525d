"""Stand-in candles and settings for the futures tests (built here, never in package code)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

DATA_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def random_candles(
    n: int = 3000, seed: int = 0, vol: float = 0.01, freq: str = "1h", start: str = "2021-01-01"
) -> pd.DataFrame:
    """Geometric random walk candles with a UTC index named timestamp."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, vol, n)))
    open_ = np.concatenate([[100.0], close[:-1]])
    high = np.maximum(open_, close) * (1.0 + np.abs(rng.normal(0.0, vol / 2, n)))
    low = np.minimum(open_, close) * (1.0 - np.abs(rng.normal(0.0, vol / 2, n)))
    volume = rng.lognormal(9.0, 0.5, n)
    idx = pd.date_range(start, periods=n, freq=freq, tz="UTC", name="timestamp")
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=idx
    )


def flat_candles(n: int = 200, price: float = 100.0, freq: str = "1h") -> pd.DataFrame:
    """Every bar open = high = low = close = price, volume 1000."""
    idx = pd.date_range("2021-01-01", periods=n, freq=freq, tz="UTC", name="timestamp")
    ones = np.full(n, price)
    return pd.DataFrame(
        {"open": ones, "high": ones.copy(), "low": ones.copy(), "close": ones.copy(),
         "volume": np.full(n, 1000.0)},
        index=idx,
    )


def set_bar(df: pd.DataFrame, i: int, close: float, high: float | None = None,
            low: float | None = None) -> None:
    """Give bar i (positional) a close and optional extremes; open is the previous close."""
    prev = float(df["close"].iloc[i - 1])
    hi = max(prev, close) if high is None else high
    lo = min(prev, close) if low is None else low
    df.iloc[i, df.columns.get_indexer(["open", "high", "low", "close"])] = [prev, hi, lo, close]


# Leverage sizing (action = a fraction of max_leverage x equity) and no reward penalties: the
# mechanics tests work in these terms; the environment's defaults are risk sizing with penalties.
LEVERAGE = dict(sizing="leverage", drawdown_coef=0.0, turnover_coef=0.0)

# No costs but fees: the hand-worked tests switch the rest off explicitly.
NO_FRICTION = dict(half_spread=0.0, impact_coef=0.0, min_trade_fraction=0.0, window=4,
                   vol_window=4, episode_length=None, **LEVERAGE)
