"""Fixtures for the futures tests."""

from __future__ import annotations

import pandas as pd
import pytest
from futures_helpers import DATA_DIR


@pytest.fixture
def real_eth_1h() -> pd.DataFrame:
    """Binance ETHUSDT 1h candles from the shared data folder (skips when it is absent)."""
    path = DATA_DIR / "binance-spot_ETHUSDT_1h_20170817_20230303.csv.gz"
    if not path.exists():
        pytest.skip(f"shared data not found: {path}")
    raw = pd.read_csv(path)
    idx = pd.to_datetime(raw["open_time_ms"], unit="ms", utc=True).rename("timestamp")
    cols = ["open", "high", "low", "close", "volume"]
    return pd.DataFrame(raw[cols].to_numpy(float), index=pd.DatetimeIndex(idx), columns=cols)
