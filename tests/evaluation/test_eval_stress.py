"""Stress windows: real data where the shared files cover them, documented replicas otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from marketsim.evaluation.backtest_report import run_backtest
from marketsim.evaluation.stress import SCENARIOS, replica_candles, scenario_candles

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_replica_shape(name, tmp_path):
    sc = SCENARIOS[name]
    df, info = scenario_candles(name, data_dir=tmp_path)  # empty folder: replica
    assert info["source"] == "synthetic"
    start = pd.Timestamp(sc.start, tz="UTC")
    assert df.index[0] == start - pd.Timedelta(days=sc.warmup_days)
    assert df.index[-1] < pd.Timestamp(sc.end, tz="UTC")
    k0 = sc.warmup_days * 24 + sc.crash_at_hours
    pre = df["open"].iloc[k0]
    if sc.wick:
        assert df["low"].iloc[k0] / pre == pytest.approx(1 - sc.drop, rel=1e-9)
        assert df["close"].iloc[k0] / pre > 0.5  # the close recovered within the hour
    else:
        trough = df["close"].iloc[k0 + sc.drop_hours - 1] / pre
        # drift gives exactly 1 - drop; the noise adds sqrt(drop_hours) * vol_after in log
        tol = 4 * np.sqrt(sc.drop_hours) * sc.vol_after
        assert abs(np.log(trough) - np.log(1 - sc.drop)) < tol
    np.testing.assert_array_equal(replica_candles(sc, 0).to_numpy(), df.to_numpy())


@pytest.mark.skipif(not SHARED.exists(), reason=f"shared data absent: {SHARED}")
def test_real_windows_show_the_crash():
    df, info = scenario_candles("flash-crash-2017")
    assert info["source"] == "real"
    assert df["low"].min() == pytest.approx(0.10)
    assert df["low"].idxmin() == pd.Timestamp("2017-06-21 19:00", tz="UTC")
    df, info = scenario_candles("covid-2020")
    assert info["source"] == "real"
    march = df[df.index >= "2020-03-11"]
    assert march["low"].min() / march["close"].iloc[0] < 0.6
    for name in ("ftx-2022", "luna-2022"):
        df, info = scenario_candles(name)
        assert info["source"] == "real" and len(df) > 20 * 24


def test_backtest_stress_report_says_source(ppo_run, tmp_path):
    p = run_backtest([ppo_run], stress="ftx-2022", data_dir=tmp_path / "nothing",
                     out=tmp_path / "bt")
    rep = json.loads(p.read_text())
    assert rep["stress"]["source"] == "synthetic" and rep["stress"]["scenario"] == "ftx-2022"
    assert "synthetic" in (tmp_path / "bt" / "report.html").read_text()
    assert rep["baselines"]["buy_and_hold"]["max_drawdown"] < -0.15
    with pytest.raises(ValueError, match="expected one of"):
        scenario_candles("dotcom-2000")
