"""Shared helpers for the market-making tests: repo root on sys.path, data folder, candles."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = ROOT / ".." / "shared" / "data"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def walk_candles(n: int = 1500, seed: int = 0, start_price: float = 2000.0,
                 step: float = 2.0) -> pd.DataFrame:
    """Arithmetic random-walk 1-minute candles with a UTC ``timestamp`` index."""
    rng = np.random.default_rng(seed)
    close = start_price + np.cumsum(rng.normal(0.0, step, n))
    open_ = np.concatenate([[start_price], close[:-1]])
    high = np.maximum(open_, close) + np.abs(rng.normal(0.0, step, n))
    low = np.minimum(open_, close) - np.abs(rng.normal(0.0, step, n))
    idx = pd.date_range("2023-01-01", periods=n, freq="1min", tz="UTC", name="timestamp")
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close,
                         "volume": np.ones(n)}, index=idx)
