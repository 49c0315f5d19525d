"""Helpers for the market-data tests (a module, not conftest, so imports are unambiguous)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import strategies as st

COLS = ["open", "high", "low", "close", "volume"]


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


price = st.one_of(
    st.floats(0.01, 1e5, allow_nan=False),
    st.sampled_from([0.0, -1.0, float("nan"), float("inf")]),
)


@st.composite
def messy_candles(draw):
    """Random rows: off-grid times, duplicates, any order, bad prices, naive or zoned index."""
    n = draw(st.integers(1, 40))
    minutes = draw(st.lists(st.integers(0, 120), min_size=n, max_size=n))
    seconds = draw(st.lists(st.sampled_from([0, 0, 0, 30]), min_size=n, max_size=n))
    volume = st.one_of(st.floats(-10, 1e6), st.just(float("nan")))
    rows = [draw(st.tuples(price, price, price, price, volume)) for _ in range(n)]
    idx = pd.DatetimeIndex(
        [
            pd.Timestamp("2024-01-01") + pd.Timedelta(minutes=m, seconds=s)
            for m, s in zip(minutes, seconds)
        ]
    )
    tz = draw(st.sampled_from([None, "UTC", "Asia/Tokyo"]))
    idx = idx if tz is None else idx.tz_localize(tz)
    df = pd.DataFrame(rows, columns=COLS, index=idx)
    if not np.any(np.isfinite(df["close"]) & (df["close"] > 0)):
        df.iloc[0, 3] = 1.0
    return df
