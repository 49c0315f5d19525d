"""Funding: sign, size, and only at 00:00/08:00/16:00 UTC (docs/marketsim/futures.md, eq. (3))."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from futures_helpers import NO_FRICTION, flat_candles

from marketsim.futures.env import CryptoFuturesEnv


def _run(a: float, funding, n_steps: int = 26, freq: str = "1h"):
    df = flat_candles(200, freq=freq)
    env = CryptoFuturesEnv(data=df, funding=funding, **dict(NO_FRICTION, min_trade_fraction=0.01))
    env.reset(options={"start": 20})
    rows = []
    prev = 0.0
    for _ in range(n_steps):
        _, _, _, _, info = env.step(np.array([a]))
        close_time = df.index[info["bar"]] + pd.Timedelta(freq)
        rows.append((close_time, info["funding"] - prev, info))
        prev = info["funding"]
    return rows


@pytest.mark.parametrize("a,side", [(0.5, "long"), (-0.5, "short")])
def test_constant_rate_paid_at_funding_times_only(a: float, side: str) -> None:
    rows = _run(a, 0.0001)
    q = a * 10 * 10000.0 / 100.0  # +-500 units at a flat price of 100
    paid_times = []
    for close_time, paid, _ in rows:
        if close_time.hour in (0, 8, 16) and close_time.minute == 0:
            # longs pay when the rate is positive, shorts receive: q * price * rate
            assert paid == pytest.approx(q * 100.0 * 0.0001, rel=1e-12)
            paid_times.append(close_time.hour)
        else:
            assert paid == 0.0
    assert paid_times == [0, 8, 16]  # bars closing 2021-01-01 22:00 .. 2021-01-02 23:00
    last = rows[-1][2]
    assert last[f"funding_{side}"] == pytest.approx(3 * q * 100.0 * 0.0001)
    other = "short" if side == "long" else "long"
    assert last[f"funding_{other}"] == 0.0
    assert last["equity"] == pytest.approx(10000.0 - 500 * 100 * 0.0005 - 3 * q * 0.01)


def test_rate_series_uses_the_rate_in_force_at_each_event() -> None:
    idx = pd.DatetimeIndex(["2021-01-02 00:00", "2021-01-02 08:00", "2021-01-02 16:00"], tz="UTC")
    series = pd.Series([0.0003, -0.0002, 0.0001], index=idx)
    rows = _run(0.5, series)
    paid = [(t.hour, p) for t, p, _ in rows if p != 0.0]
    assert [h for h, _ in paid] == [0, 8, 16]
    assert [p for _, p in paid] == pytest.approx([500 * 100 * 0.0003, -500 * 100 * 0.0002,
                                                  500 * 100 * 0.0001])


def test_five_minute_bars_pay_once_per_event() -> None:
    rows = _run(0.5, 0.0001, n_steps=150, freq="5min")  # 2021-01-01 01:50 .. 14:20
    paid = [t for t, p, _ in rows if p != 0.0]
    assert paid == [pd.Timestamp("2021-01-01 08:00", tz="UTC")]


def test_funding_is_observed_in_basis_points() -> None:
    df = flat_candles(200)
    env = CryptoFuturesEnv(data=df, funding=0.0003, **NO_FRICTION)
    obs, _ = env.reset(options={"start": 20})
    feat = obs[: 4 * 5].reshape(4, 5)
    assert feat[:, 4] == pytest.approx(3.0)
