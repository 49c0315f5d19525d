"""Shared fixtures for the market-data tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """The read-only real data folder; skips when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder {SHARED_DATA} not present")
    return SHARED_DATA


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
