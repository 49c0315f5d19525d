"""Cleaning: hand-made repair cases with the report checked, and hypothesis properties."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from data_helpers import make_candles, messy_candles
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketsim.data import DataError, clean_candles

COLS = ["open", "high", "low", "close", "volume"]


def test_gap_fill_carries_close_and_interpolates_volume_by_hand():
    df = make_candles([10.0, 11.0, 12.0, 13.0], volume=[1.0, 4.0, 8.0, 2.0])
    holed = df.drop(df.index[[1, 2]])  # bars at 00:01 and 00:02 are missing
    out, rep = clean_candles(holed, "1m")
    assert len(out) == 4 and rep.filled_rows == 2
    assert [(g.start, g.end, g.bars) for g in rep.gaps] == [
        ("2024-01-01T00:01:00+00:00", "2024-01-01T00:02:00+00:00", 2)
    ]
    # filled bars: o = h = l = c = last close (10); volume from 1 to 2 in thirds
    for i in (1, 2):
        assert out.iloc[i][["open", "high", "low", "close"]].tolist() == [10.0] * 4
    np.testing.assert_allclose(out["volume"].to_numpy(), [1.0, 1 + 1 / 3, 1 + 2 / 3, 2.0])
    assert out["filled"].tolist() == [False, True, True, False]
    assert not out["repaired"].any()


def test_sort_dedup_later_row_wins_and_is_reported():
    df = make_candles([10.0, 11.0, 12.0])
    dup = df.iloc[[1]].copy()
    dup["close"] = 11.5
    dup["high"] = 11.6
    shuffled = pd.concat([df.iloc[[2, 0, 1]], dup])
    out, rep = clean_candles(shuffled, "1m")
    assert rep.out_of_order == 1  # 00:02 -> 00:00
    assert rep.duplicates_dropped == 1 and rep.duplicate_conflicts == 1
    assert out["close"].tolist() == [10.0, 11.5, 12.0]
    assert out.index.is_monotonic_increasing and out.index.is_unique


def test_time_zone_conversion_reported():
    df = make_candles([10.0, 11.0])
    berlin = df.copy()
    berlin.index = df.index.tz_convert("Europe/Berlin")
    out, rep = clean_candles(berlin, "1m")
    assert rep.timezone_in == "Europe/Berlin, converted to UTC"
    assert list(out.index) == list(df.index)
    naive = df.copy()
    naive.index = df.index.tz_localize(None)
    out, rep = clean_candles(naive, "1m")
    assert rep.timezone_in == "naive, taken as UTC" and str(out.index.tz) == "UTC"


def test_invalid_prices_and_volume_repaired_with_report():
    df = make_candles([10.0, 11.0, 12.0, 13.0])
    df.iloc[1, df.columns.get_loc("close")] = 0.0  # non-positive close
    df.iloc[2, df.columns.get_loc("open")] = np.nan  # missing open
    df.iloc[3, df.columns.get_loc("volume")] = -5.0
    out, rep = clean_candles(df, "1m")
    recs = {
        (r["timestamp"][11:16], r["kind"], r["column"]): (r["old"], r["new"]) for r in rep.repairs
    }
    assert recs[("00:01", "invalid_price", "close")] == (0.0, 10.0)  # carried from 00:00
    old, new = recs[("00:02", "invalid_price", "open")]
    assert np.isnan(old) and new == 10.0  # previous (repaired) close
    assert recs[("00:03", "invalid_volume", "volume")] == (-5.0, 0.0)
    assert out["repaired"].tolist() == [False, True, True, True]
    assert out.loc[out.index[1], "close"] == 10.0


def test_high_low_swap_and_body_outside_range():
    df = make_candles([10.0, 11.0, 12.0])
    h, l = df.iloc[1]["high"], df.iloc[1]["low"]
    df.iloc[1, df.columns.get_loc("high")] = l
    df.iloc[1, df.columns.get_loc("low")] = h
    df.iloc[2, df.columns.get_loc("high")] = 11.5  # close 12 above high
    out, rep = clean_candles(df, "1m")
    assert rep.repair_counts() == {"high_low_swapped": 2, "body_outside_range": 1}
    assert out.iloc[1]["high"] == h and out.iloc[1]["low"] == l
    assert out.iloc[2]["high"] == 12.0
    assert out["repaired"].tolist() == [False, True, True]


def test_one_bar_spike_repaired_real_reversal_kept():
    rng = np.random.default_rng(3)
    closes = 100 * np.exp(np.cumsum(0.001 * rng.standard_normal(600)))
    closes[300] *= 10.0  # API error: a x10 print for one bar
    closes[450] *= 1.05  # a +5% one-bar move and back: real (below spike_min_move)
    df = make_candles(closes)
    out, rep = clean_candles(df, "1m")
    spikes = [r for r in rep.repairs if r["kind"] == "spike"]
    assert {r["timestamp"] for r in spikes} == {df.index[300].isoformat()}
    close_rec = next(r for r in spikes if r["column"] == "close")
    assert close_rec["old"] == pytest.approx(closes[300])
    assert close_rec["new"] == pytest.approx(np.sqrt(closes[299] * closes[301]))
    assert out["repaired"].sum() == 1 and out["repaired"].iloc[300]
    assert out["close"].iloc[450] == closes[450]


def test_long_wick_flagged_not_changed_unless_asked():
    df = make_candles(np.full(300, 100.0) + np.arange(300) * 0.01)
    df.iloc[150, df.columns.get_loc("low")] = 1.0  # a flash-crash wick
    out, rep = clean_candles(df, "1m")
    assert rep.flag_counts() == {"long_lower_wick": 1}
    assert rep.flags[0]["timestamp"] == df.index[150].isoformat()
    assert out.iloc[150]["low"] == 1.0 and not out["repaired"].any()
    out2, rep2 = clean_candles(df, "1m", repair_wicks=True)
    assert rep2.repair_counts() == {"wick_clipped": 1}
    limit = rep2.flags[0]["threshold"]
    body_low = min(df.iloc[150]["open"], df.iloc[150]["close"])
    assert out2.iloc[150]["low"] == pytest.approx(body_low * np.exp(-limit))


def test_off_grid_rows_aggregated():
    idx = pd.DatetimeIndex(
        [
            "2024-01-01 00:00:00",
            "2024-01-01 00:05:00",
            "2024-01-01 00:06:00",
            "2024-01-01 00:10:00",
        ],
        tz="UTC",
    )
    df = pd.DataFrame(
        {
            "open": [1.0, 2.0, 3.0, 4.0],
            "high": [1.5, 2.5, 3.5, 4.5],
            "low": [0.5, 1.5, 2.5, 3.5],
            "close": [1.2, 2.2, 3.2, 4.2],
            "volume": [1.0, 2.0, 3.0, 4.0],
        },
        index=idx,
    )
    out, rep = clean_candles(df, "5m")
    assert rep.off_grid_rows == 1 and rep.bars_from_off_grid == 1
    bar = out.loc[pd.Timestamp("2024-01-01 00:05", tz="UTC")]
    assert (bar["open"], bar["high"], bar["low"], bar["close"], bar["volume"]) == (
        2.0,
        3.5,
        1.5,
        3.2,
        5.0,
    )
    assert bar["repaired"]


def test_pure_idempotent_and_errors():
    df = make_candles([10.0, 11.0, 12.0, 13.0]).drop(pd.Timestamp("2024-01-01 00:02", tz="UTC"))
    before = df.copy()
    out, rep = clean_candles(df, "1m")
    pd.testing.assert_frame_equal(df, before)
    again, rep2 = clean_candles(out, "1m")
    pd.testing.assert_frame_equal(again, out)
    assert not rep2.changed and rep.changed
    with pytest.raises(TypeError, match="unknown cleaning threshold.*spike_sigma"):
        clean_candles(df, "1m", spike_sigma=3)
    with pytest.raises(DataError, match="'volume'"):
        clean_candles(df.drop(columns="volume"), "1m")
    with pytest.raises(ValueError, match="spike_k"):
        clean_candles(df, "1m", spike_k=-1)


# ---- property-based ------------------------------------------------------------------------

@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messy_candles(), st.sampled_from(["1m", "5m"]))
def test_clean_output_invariants(df, tf):
    try:
        out, rep = clean_candles(df, tf)
    except DataError as exc:  # allowed only when no row that survives de-duplication is valid
        kept = df[~df.index.duplicated(keep="last")]["close"]
        assert "no valid close" in str(exc) and not ((kept > 0) & np.isfinite(kept)).any()
        return
    idx = out.index
    assert str(idx.tz) == "UTC" and idx.name == "timestamp"
    assert idx.is_monotonic_increasing and idx.is_unique
    step = {"1m": 60, "5m": 300}[tf] * 10**9
    assert np.all(idx.asi8 % step == 0)
    assert np.all(np.diff(idx.asi8) == step)  # full grid
    v = out[COLS].to_numpy()
    assert np.all(np.isfinite(v))
    o, h, l, c, vol = v.T
    assert np.all(l > 0) and np.all(vol >= 0)
    assert np.all(l <= np.minimum(o, c)) and np.all(h >= np.maximum(o, c))
    assert out["filled"].dtype == bool and out["repaired"].dtype == bool
    assert rep.rows_out == len(out) == rep.filled_rows + int((~out["filled"]).sum())
    assert rep.filled_rows == sum(g.bars for g in rep.gaps)
