"""A ruined account is a result to report, never a crash (issue 12): metrics.ruin, and the
backtest report's ``ruined`` / ``ruined_at`` in report.json and the HTML page."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from marketsim import metrics as M
from marketsim.evaluation.backtest import (
    baseline_kwargs,
    buy_and_hold_decide,
    flat_decide,
    simulate,
)
from marketsim.evaluation.backtest_report import equity_floor, write_frames_report


def _minimal_case_candles(n: int = 80) -> pd.DataFrame:
    """60 flat bars at 100, then bar 60 dips to a low of 89 (closing at 100), then flat."""
    idx = pd.date_range("2021-01-01", periods=n, freq="1h", tz="UTC", name="timestamp")
    price = np.full(n, 100.0)
    low = price.copy()
    low[60] = 89.0
    return pd.DataFrame({"open": price, "high": price.copy(), "low": low, "close": price.copy(),
                         "volume": np.full(n, 1000.0)}, index=idx)


def _long_all_in_at_bar_59(obs, info):
    return np.array([1.0 if int(info["bar"]) == 59 else 0.0], dtype=np.float32)


def test_ruin_finds_the_first_bar_at_or_below_the_floor():
    idx = pd.date_range("2024-01-01", periods=5, freq="1D", tz="UTC")
    e = pd.Series([100.0, 50.0, 0.5, 0.5, 0.5], index=idx)
    assert M.ruin(e) == {"ruined": False, "ruined_at": None, "lowest_equity": 0.5}
    r = M.ruin(e, floor=1.0)
    assert r["ruined"] and r["ruined_at"] == idx[2].isoformat()


def test_metrics_accept_an_account_that_owes():
    """The crash the issue saw: 'equity: value at ... is -57.3...; expected finite and >= 0'."""
    idx = pd.date_range("2017-08-20", periods=4, freq="1D", tz="UTC")
    e = pd.Series([10_000.0, 5_000.0, -57.339, -57.339], index=idx)
    m = M.compute_metrics(e)
    assert m["total_return"] == -1.0 and m["max_drawdown"] == -1.0
    assert m["final_equity"] == 0.0
    r = M.ruin(e)
    assert r["ruined"] and r["ruined_at"] == idx[2].isoformat()
    assert r["lowest_equity"] == pytest.approx(-57.339)


def test_minimal_case_gives_a_report_with_ruined_true(tmp_path):
    """Long all in (action 1.0, 10x leverage sizing) at bar 59; bar 60's low of 89 liquidates
    it. Equity ends at 0, not below, and the report says the account was ruined, and when."""
    candles = _minimal_case_candles()
    kw = {"sizing": "leverage", "max_leverage": 10.0}  # the all-in leverage sizing
    base = baseline_kwargs(kw)
    frames = {"agent": simulate(candles, kw, _long_all_in_at_bar_59),
              "flat": simulate(candles, base, flat_decide),
              "buy_and_hold": simulate(candles, base, buy_and_hold_decide(1.0))}
    agent = frames["agent"]
    assert (agent["equity"] >= 0.0).all() and agent["equity"].iloc[-1] == pytest.approx(0.0,
                                                                                       abs=1e-9)
    floors = {"agent": equity_floor(kw), "flat": equity_floor(base),
              "buy_and_hold": equity_floor(base)}
    path = write_frames_report(tmp_path, frames, "minimal case", floors)
    rep = json.loads(path.read_text())
    bar_60_close = (candles.index[60] + pd.Timedelta(hours=1)).isoformat()
    assert rep["ruined"] is True and rep["ruined_at"] == bar_60_close
    assert rep["total_return"] == -1.0 and rep["final_equity"] >= 0.0
    assert rep["baselines"]["flat"]["ruined"] is False
    assert rep["baselines"]["buy_and_hold"]["ruined"] is False
    page = (tmp_path / "report.html").read_text()
    assert "The account was ruined" in page and bar_60_close in page


def test_a_curve_below_zero_is_reported_not_refused(tmp_path):
    """Curves from elsewhere (an older environment, a venue that lets an account owe) are
    reported too: ruined, with the lowest value as it was."""
    idx = pd.date_range("2017-08-20", periods=48, freq="1h", tz="UTC", name="timestamp")
    eq = np.full(48, 10_000.0)
    eq[30:] = -57.339
    frame = pd.DataFrame({"equity": eq, "position": np.zeros(48), "price": np.full(48, 300.0)},
                         index=idx)
    path = write_frames_report(tmp_path, {"agent": frame}, "owes")
    rep = json.loads(path.read_text())
    assert rep["ruined"] is True and rep["ruined_at"] == idx[30].isoformat()
    assert rep["lowest_equity"] == pytest.approx(-57.339)
