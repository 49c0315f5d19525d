"""marketsim.metrics: hand-worked curves, an independent reference, edge cases, bad input."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marketsim import metrics as M


def curve(times: list[str], values: list[float]) -> pd.Series:
    return pd.Series(values, index=pd.DatetimeIndex(pd.to_datetime(times, utc=True)))


HAND = curve(["2024-01-01 00:00", "2024-01-01 12:00", "2024-01-02 06:00", "2024-01-03 00:00"],
             [100.0, 110.0, 99.0, 108.9])
# UTC-daily closes: 110 (Jan 1), 99 (Jan 2), 108.9 (Jan 3); returns +10%, -10%, +10%.


def test_hand_worked_curve():
    r = M.daily_returns(HAND).to_numpy()
    np.testing.assert_allclose(r, [0.1, -0.1, 0.1], rtol=1e-12)
    assert M.total_return(HAND) == pytest.approx(0.089)
    assert M.annual_return(HAND) == pytest.approx(1.089 ** (365 / 3) - 1)
    # mean 1/30, deviations 2/30, -4/30, 2/30 -> sample std sqrt(12)/30
    assert M.sharpe(HAND) == pytest.approx(math.sqrt(365) / math.sqrt(12))
    # downside RMS over all 3 days: sqrt(0.01 / 3)
    assert M.sortino(HAND) == pytest.approx(math.sqrt(365) * (1 / 30) / math.sqrt(0.01 / 3))
    assert M.annual_volatility(HAND) == pytest.approx(math.sqrt(12) / 30 * math.sqrt(365))
    assert M.max_drawdown(HAND) == pytest.approx(-0.1)
    # peak at Jan 1 12:00, never regained: 1.5 days to the curve's end
    assert M.max_drawdown_duration_days(HAND) == pytest.approx(1.5)
    assert M.calmar(HAND) == pytest.approx((1.089 ** (365 / 3) - 1) / 0.1)
    assert M.profitable_days(HAND) == pytest.approx(2 / 3)


def test_drawdown_duration_ends_at_recovery():
    e = curve(["2024-01-01", "2024-01-02", "2024-01-04", "2024-01-05", "2024-01-06"],
              [100.0, 90.0, 95.0, 100.0, 80.0])
    # first episode: Jan 1 -> Jan 5 (4 days); second: Jan 5 -> Jan 6 (1 day, open)
    assert M.max_drawdown_duration_days(e) == pytest.approx(4.0)
    assert M.max_drawdown(e) == pytest.approx(-0.2)


def reference(equity: pd.Series) -> dict[str, float]:
    """Independent implementation: plain Python loops over days and bars."""
    days: dict[object, float] = {}
    for t, v in equity.items():
        days[t.date()] = float(v)  # last value of each UTC day wins (index is UTC)
    closes = list(days.values())
    prev = [float(equity.iloc[0])] + closes[:-1]
    r = [c / p - 1 for c, p in zip(closes, prev)]
    n = len(r)
    mean = sum(r) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in r) / (n - 1))
    down = math.sqrt(sum(min(x, 0.0) ** 2 for x in r) / n)
    peak, mdd = -1.0, 0.0
    for v in equity:
        peak = max(peak, v)
        mdd = min(mdd, v / peak - 1)
    growth = closes[-1] / float(equity.iloc[0])
    ann = growth ** (365 / n) - 1
    return {"sharpe": math.sqrt(365) * mean / sd, "sortino": math.sqrt(365) * mean / down,
            "max_drawdown": mdd, "annual_return": ann, "calmar": ann / abs(mdd),
            "profitable_days": sum(x > 0 for x in r) / n, "total_return": growth - 1}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_against_reference_implementation(seed):
    rng = np.random.default_rng(seed)
    n = 24 * 40 + 7
    idx = pd.date_range("2023-03-05 05:00", periods=n, freq="1h", tz="UTC")
    e = pd.Series(1000 * np.exp(np.cumsum(rng.normal(0.0002, 0.01, n))), index=idx)
    got = M.compute_metrics(e)
    want = reference(e)
    for k, v in want.items():
        assert got[k] == pytest.approx(v, rel=1e-10, abs=1e-12), k
    assert got["n_days"] == 41


def test_flat_equity_defined():
    idx = pd.date_range("2024-01-01", periods=100, freq="1h", tz="UTC")
    m = M.compute_metrics(pd.Series(5000.0, index=idx))
    assert all(math.isfinite(v) for v in m.values())
    for k in ("total_return", "annual_return", "sharpe", "sortino", "calmar", "max_drawdown",
              "profitable_days", "max_drawdown_days", "annual_volatility"):
        assert m[k] == 0.0, k


def test_single_point_and_single_day():
    one = curve(["2024-01-01 10:00"], [100.0])
    m = M.compute_metrics(one)
    assert m["total_return"] == 0.0 and m["sharpe"] == 0.0 and m["n_days"] == 1
    day = curve(["2024-01-01 01:00", "2024-01-01 05:00", "2024-01-01 23:00"], [100, 90, 105])
    m = M.compute_metrics(day)
    assert m["total_return"] == pytest.approx(0.05)
    assert m["sharpe"] == 0.0  # one daily return: std undefined -> 0
    assert m["sortino"] == 0.0  # no losing day
    assert m["max_drawdown"] == pytest.approx(-0.1)
    assert m["profitable_days"] == 1.0
    assert m["annual_return"] == pytest.approx(1.05 ** 365 - 1)


def test_all_losses():
    idx = pd.date_range("2024-01-01", periods=10, freq="1D", tz="UTC")
    e = pd.Series(100 * 0.98 ** np.arange(10), index=idx)
    m = M.compute_metrics(e)
    assert all(math.isfinite(v) for v in m.values())
    assert m["profitable_days"] == 0.0
    assert m["sharpe"] < 0  # first day 0%, then -2% a day
    assert m["sortino"] < 0 and m["calmar"] < 0
    assert m["max_drawdown"] == pytest.approx(0.98**9 - 1)


def test_identical_losing_days_sharpe_zero_sortino_negative():
    idx = pd.date_range("2024-01-01 23:00", periods=5, freq="1D", tz="UTC")
    e = pd.Series([100.0, 99, 98.01, 97.0299, 96.059601], index=idx)
    r = M.daily_returns(e).to_numpy()
    np.testing.assert_allclose(r[1:], -0.01)
    assert M.sortino(e) < 0


def test_equity_gone():
    e = curve(["2024-01-01", "2024-01-02", "2024-01-03"], [100.0, 50.0, 0.0])
    m = M.compute_metrics(e)
    assert m["total_return"] == -1.0 and m["annual_return"] == -1.0
    assert m["max_drawdown"] == -1.0 and m["calmar"] == -1.0
    assert all(math.isfinite(v) for v in m.values())


def test_round_trips_and_split():
    e = curve([f"2024-01-01 0{i}:00" for i in range(7)],
              [100, 101, 103, 103, 100, 102, 102])
    pos = pd.Series([0, 1, 2, 0, -1, -1, 0], index=e.index, dtype=float)
    t = M.round_trips(e, pos)
    # long held over rows 1-2: 103 - 100 = 3; short rows 4-5: 102 - 103 = -1
    assert t["side"].tolist() == [1, -1]
    np.testing.assert_allclose(t["pnl"], [3.0, -1.0])
    assert M.hit_rate(t) == 0.5
    s = M.long_short_split(t)
    assert s["long_pnl"] == 3.0 and s["short_pnl"] == -1.0
    assert s["long_hit_rate"] == 1.0 and s["short_hit_rate"] == 0.0
    assert M.hit_rate(t.iloc[:0]) == 0.0


def test_costs_sum():
    idx = pd.date_range("2024-01-01", periods=3, freq="1h", tz="UTC")
    bars = pd.DataFrame({"position": [0, 1, 1], "fees": [0, 0.5, 0.25], "funding": [0, 0, -1],
                         "turnover": [0, 1.0, 0.5]}, index=idx)
    m = M.compute_metrics(pd.Series([10.0, 10.0, 11.0], index=idx), bars)
    assert m["fees"] == 0.75 and m["funding"] == -1.0 and m["turnover"] == 1.5
    assert m["trades"] == 1.0


@pytest.mark.parametrize("bad,err", [
    ([1.0, 2.0], TypeError),
])
def test_not_a_series(bad, err):
    with pytest.raises(err, match="equity"):
        M.sharpe(bad)


def test_bad_input_messages():
    naive = pd.Series([1.0, 2.0], index=pd.date_range("2024-01-01", periods=2, freq="1h"))
    with pytest.raises(ValueError, match="tz-aware"):
        M.sharpe(naive)
    idx = pd.date_range("2024-01-01", periods=3, freq="1h", tz="UTC")
    with pytest.raises(ValueError, match="nan"):
        M.sharpe(pd.Series([1.0, np.nan, 2.0], index=idx))
    with pytest.raises(ValueError, match="first value"):
        M.sharpe(pd.Series([0.0, 1.0, 2.0], index=idx))
    with pytest.raises(ValueError, match="empty"):
        M.sharpe(pd.Series([], dtype=float, index=idx[:0]))


def test_minute_sharpe_inflation_is_not_ours():
    """The same curve at 1-minute resolution gives the same (daily) Sharpe: we resample."""
    rng = np.random.default_rng(5)
    n = 60 * 24 * 20
    idx = pd.date_range("2024-01-01", periods=n, freq="1min", tz="UTC")
    e = pd.Series(100 * np.exp(np.cumsum(rng.normal(0, 0.0005, n))), index=idx)
    hourly = e.iloc[59::60]
    hourly = pd.concat([e.iloc[:1], hourly])
    assert M.sharpe(e) == pytest.approx(M.sharpe(hourly), rel=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-0.3, 0.3), min_size=1, max_size=60))
def test_properties(rets):
    idx = pd.date_range("2024-01-01", periods=len(rets) + 1, freq="7h", tz="UTC")
    e = pd.Series(100 * np.concatenate([[1.0], np.cumprod(1 + np.asarray(rets))]), index=idx)
    m = M.compute_metrics(e)
    assert all(math.isfinite(v) for v in m.values())
    assert -1.0 <= m["max_drawdown"] <= 0.0
    assert 0.0 <= m["profitable_days"] <= 1.0
    assert m["total_return"] == pytest.approx(e.iloc[-1] / 100 - 1)
