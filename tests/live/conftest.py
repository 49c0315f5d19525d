"""Fixtures of the live-trading tests (helpers are in live_helpers.py)."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.live.live_helpers import ETH_1M


@pytest.fixture
def eth_1m() -> pd.DataFrame:
    """The first 1,500 cleaned bars of the shared ETHUSDT 1m file (skip if it is absent)."""
    if not ETH_1M.exists():
        pytest.skip(f"shared data file {ETH_1M} not found")
    from marketsim.data import load_candles

    return load_candles(ETH_1M).iloc[:1500][["open", "high", "low", "close", "volume"]]
