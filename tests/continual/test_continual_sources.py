"""Sources: exact tick visibility, no repeated or skipped bars, cleaning of bad bars."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from marketsim.data.sources import ReplaySource, StreamCleaner, parse_source
from rlcore.continual.source import parse_duration, parse_speed

BAR = pd.Timedelta("1min")


def candles(n: int, start: str = "2024-01-01", seed: int = 0) -> pd.DataFrame:
    """Valid 1m candles with close = 100 + i and volume = 10 + i (easy to check by hand)."""
    idx = pd.date_range(start, periods=n, freq="1min", tz="UTC")
    c = 100.0 + np.arange(n)
    return pd.DataFrame({"open": c - 0.5, "high": c + 1, "low": c - 1, "close": c,
                         "volume": 10.0 + np.arange(n)}, index=idx)


def test_replay_poll_shows_only_closed_bars():
    src = ReplaySource(candles(10))
    t0 = pd.Timestamp("2024-01-01", tz="UTC")
    # at t0 + 3 min, bars opening at 0, 1, 2 have closed (open + 1 min <= T); bar 3 has not
    new, _ = src.poll(t0 + 3 * BAR)
    assert list(new.index) == [t0, t0 + BAR, t0 + 2 * BAR]
    # 59 seconds later bar 3 is still open
    new, _ = src.poll(t0 + 3 * BAR + pd.Timedelta("59s"))
    assert len(new) == 0
    new, _ = src.poll(t0 + 4 * BAR)
    assert list(new.index) == [t0 + 3 * BAR]
    assert (new.index + BAR <= t0 + 4 * BAR).all()


def test_replay_polls_partition_the_data_and_resume_from_state():
    df = candles(50)
    src = ReplaySource(df)
    t = src.first_tick(7)
    assert t == df.index[6] + BAR
    seen = []
    for _ in range(3):
        new, _ = src.poll(t)
        seen.append(new)
        t += pd.Timedelta("6min")
    state = src.state_dict()
    src2 = ReplaySource(df)  # a fresh process
    src2.load_state_dict(state)
    while t <= src2.end + pd.Timedelta("6min"):
        new, _ = src2.poll(t)
        seen.append(new)
        t += pd.Timedelta("6min")
    got = pd.concat(seen)
    assert got.index.equals(df.index)  # every bar exactly once, in order
    np.testing.assert_array_equal(got["close"].to_numpy(), df["close"].to_numpy())
    assert not got["filled"].any()


def test_cleaner_fills_a_gap_by_hand_numbers():
    df = candles(6).drop(index=candles(6).index[[2, 3]])  # bars 2 and 3 missing
    cl = StreamCleaner(BAR)
    out = cl.clean(df)
    assert len(out) == 6
    assert list(out["filled"]) == [False, False, True, True, False, False]
    # close carried forward from bar 1 (close 101); volume interpolated 11 -> 14 over 3 steps
    np.testing.assert_allclose(out["close"].iloc[2:4], [101.0, 101.0])
    np.testing.assert_allclose(out["high"].iloc[2:4], [101.0, 101.0])
    np.testing.assert_allclose(out["volume"].iloc[2:4], [12.0, 13.0])
    assert [e.kind for e in cl.events] == ["gap_filled"]
    assert "2 bar(s) missing" in cl.events[0].reason


def test_cleaner_rejects_nan_and_duplicates_with_reasons():
    df = candles(6)
    df.iloc[2, df.columns.get_loc("close")] = math.nan
    dup = df.iloc[[4]]
    messy = pd.concat([df.iloc[:5], dup, df.iloc[5:]])
    cl = StreamCleaner(BAR)
    out = cl.clean(messy)
    kinds = [e.kind for e in cl.events]
    assert kinds == ["rejected", "gap_filled", "duplicate"]
    assert "NaN" in cl.events[0].reason
    assert "not after the last bar" in cl.events[2].reason
    assert out.index.equals(candles(6).index)  # the NaN bar became a filled one
    assert out["filled"].tolist() == [False, False, True, False, False, False]
    assert np.isfinite(out[["open", "high", "low", "close", "volume"]].to_numpy()).all()


def test_cleaner_rejects_inconsistent_and_off_grid_bars():
    df = candles(4)
    df.iloc[1, df.columns.get_loc("high")] = 50.0  # high below close
    off = candles(1, start="2024-01-01 00:03:30")
    cl = StreamCleaner(BAR)
    out = cl.clean(pd.concat([df, off]))
    assert [e.kind for e in cl.events] == ["rejected", "gap_filled", "rejected"]
    assert "inconsistent OHLC" in cl.events[0].reason
    assert "off the" in cl.events[2].reason
    assert len(out) == 4


def test_long_gap_is_not_filled():
    df = candles(10).iloc[[0, 1, 9]]
    cl = StreamCleaner(BAR, max_fill=3)
    out = cl.clean(df)
    assert len(out) == 3 and not out["filled"].any()
    assert cl.events[0].kind == "gap_not_filled"


def test_parsers_and_errors(tmp_path):
    assert parse_duration("60m") == pd.Timedelta("1h")
    assert parse_duration("2h") == pd.Timedelta("2h")
    assert parse_speed("600x") == 600.0 and parse_speed("max") == math.inf
    with pytest.raises(ValueError, match="--every '5y'"):
        parse_duration("5y")
    with pytest.raises(ValueError, match="--speed"):
        parse_speed("fast")
    with pytest.raises(ValueError, match="does not exist"):
        parse_source(f"replay:{tmp_path / 'nope.csv'}")
    with pytest.raises(ValueError, match="ccxt:EXCHANGE:SYMBOL:TIMEFRAME"):
        parse_source("ccxt:binance")
    with pytest.raises(ValueError, match="expected replay:PATH"):
        parse_source("kafka:x")


def test_ccxt_source_against_a_local_fake_binance(tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
    from fake_binance import MINUTE_MS, FakeBinance, point_binance_at

    from marketsim.data.ccxt_loader import make_exchange
    from marketsim.data.sources import CcxtSource

    t0 = pd.Timestamp("2025-03-01", tz="UTC")
    t0_ms = int(t0.value // 1_000_000)
    with FakeBinance(t0_ms, t0_ms + 299 * MINUTE_MS, max_limit=100) as fb:
        def factory():
            ex = make_exchange("binance", {"timeout": 3000,
                                           "options": {"fetchMarkets": {"types": ["spot"]}}})
            point_binance_at(ex, fb.base)
            return ex

        src = CcxtSource("binance", "ETH/USDT", "1m", tmp_path / "store", since=t0,
                         exchange_factory=factory)
        a, _ = src.poll(t0 + 100 * BAR)
        assert a.index[0] == t0 and a.index[-1] == t0 + 99 * BAR and len(a) == 100
        b, _ = src.poll(t0 + 250 * BAR + pd.Timedelta("30s"))
        assert b.index[0] == t0 + 100 * BAR and b.index[-1] == t0 + 249 * BAR
        assert src.position == t0 + 249 * BAR
