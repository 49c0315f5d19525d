"""Helpers for the market-data tests (a module, not conftest, so imports are unambiguous)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def make_candles(closes, start="2024-01-01", freq="1min", volume=None) -> pd.DataFrame:
    """Candles with open = previous close and a range of +-0.1 around the body."""
    c = np.asarray(closes, dtype=np.float64)
    o = np.concatenate([[c[0]], c[:-1]])
    v = np.ones_like(c) if volume is None else np.asarray(volume, dtype=np.float64)
    idx = pd.date_range(start, periods=c.size, freq=freq, tz="UTC", name="timestamp")
    return pd.DataFrame(
        {
            "open": o,
            "high": np.maximum(o, c) + 0.1,
            "low": np.minimum(o, c) - 0.1,
            "close": c,
            "volume": v,
        },
        index=pd.DatetimeIndex(idx, freq=None),
    )
