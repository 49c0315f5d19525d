"""The real shared data: loads, cleans, and the known exchange downtime is reported as gaps."""

from __future__ import annotations

import pandas as pd
import pytest

from marketsim.data import clean_candles, read_candles


@pytest.mark.parametrize(
    "name, timeframe, rows_in, gap_start, gap_bars",
    [
        (
            "binance-spot_ETHUSDT_1m_20210402_20210615.csv.gz",
            "1m",
            106_857,
            "2021-04-25T04:01:00+00:00",
            284,
        ),
        (
            "binance-spot_ETHUSDT_1m_20230316_20230501.csv.gz",
            "1m",
            66_087,
            "2023-03-24T12:40:00+00:00",
            80,
        ),
        (
            "binance-spot_BTCUSDT_1h_20170817_20230303.csv.gz",
            "1h",
            48_456,
            "2018-02-08T01:00:00+00:00",
            33,
        ),
    ],
)
def test_real_file_cleans_and_reports_gaps(
    shared_data, name, timeframe, rows_in, gap_start, gap_bars
):
    raw = read_candles(shared_data / name)
    assert len(raw) == rows_in
    out, rep = clean_candles(raw, timeframe)
    assert rep.rows_in == rows_in
    assert {(g.start, g.bars) for g in rep.gaps} >= {(gap_start, gap_bars)}
    span = (raw.index.max() - raw.index.min()) / pd.Timedelta(timeframe) + 1
    assert rep.rows_out == len(out) == span == rows_in + rep.filled_rows
    # the defaults repair nothing in this real data (its extreme bars are real moves)
    assert rep.repairs == []
    assert out["filled"].sum() == rep.filled_rows


def test_coinbase_flash_crash_wick_flagged_not_removed(shared_data):
    raw = read_candles(shared_data / "coinbase-spot_ETH-USD_1h_20170430_20221024.csv.gz")
    out, rep = clean_candles(raw, "1h")
    t = pd.Timestamp("2017-06-21 19:00", tz="UTC")
    assert out.loc[t, "low"] == pytest.approx(0.10)
    assert {"timestamp": t.isoformat(), "kind": "long_lower_wick"}.items() <= rep.flags[0].items()
