"""The ccxt path, with the real ccxt client pointed at a fake Binance on 127.0.0.1."""

from __future__ import annotations

import asyncio

import numpy as np
import pandas as pd
import pytest
from fake_binance import MINUTE_MS, FakeBinance, point_binance_at, price

from marketsim.data import DataStore
from marketsim.data.ccxt_loader import (
    FetchError,
    FetchJob,
    RetryPolicy,
    call_with_retry,
    fetch_many,
    make_exchange,
)

T0 = pd.Timestamp("2025-03-01", tz="UTC")
T0_MS = int(T0.value // 1_000_000)
FAST = RetryPolicy(max_tries=4, base_delay=0.01, factor=2.0, max_delay=0.05)


def _exchange(fb: FakeBinance, timeout_ms: int = 3000):
    ex = make_exchange(
        "binance",
        {"timeout": timeout_ms, "options": {"fetchMarkets": {"types": ["spot", "linear"]}}},
    )
    point_binance_at(ex, fb.base)
    return ex


def _run(fb, jobs, store, policy=FAST, timeout_ms=3000, limit=1000, checkpoint_pages=50):
    async def main():
        ex = _exchange(fb, timeout_ms)
        try:
            return await fetch_many(jobs, store, policy, {"binance": ex}, limit, checkpoint_pages)
        finally:
            await ex.close()

    return asyncio.run(main())


def _expected_close(index: pd.DatetimeIndex) -> np.ndarray:
    return np.array([round(price(int(t.value // 1_000_000)), 2) for t in index])


def test_paging_across_many_pages(tmp_path):
    n = 2_345
    store = DataStore(tmp_path)
    job = FetchJob("binance", "ETH/USDT", "1m", T0, T0 + pd.Timedelta(minutes=n))
    with FakeBinance(T0_MS, T0_MS + 10 * n * MINUTE_MS, max_limit=100) as fb:
        (res,) = _run(fb, [job], store, checkpoint_pages=7)
        assert res.error is None and res.pages == 24 and res.rows_fetched == n
        starts = [int(q["startTime"]) for p, q in fb.requests if p == "/api/v3/klines"]
    # each page starts one bar after the last one received: no overlap, no hole
    assert starts == [T0_MS + 100 * k * MINUTE_MS for k in range(24)]
    df = store.read("binance", "ETH/USDT", "1m", verify=True)
    assert len(df) == n and df.index[0] == T0 and df.index[-1] == T0 + pd.Timedelta(minutes=n - 1)
    np.testing.assert_allclose(df["close"].to_numpy(), _expected_close(df.index))
    assert not df["filled"].any() and not df["repaired"].any()


def test_429_and_500_retried(tmp_path):
    store = DataStore(tmp_path)
    job = FetchJob("binance", "ETH/USDT", "1m", T0, T0 + pd.Timedelta(minutes=250))
    fails = {"/api/v3/klines": [429, 500, None, 500]}
    with FakeBinance(T0_MS, T0_MS + 10_000 * MINUTE_MS, max_limit=100, failures=fails) as fb:
        (res,) = _run(fb, [job], store)
        assert fb.count("/api/v3/klines") == 3 + 3  # 3 failed tries + 3 pages
    assert res.error is None and res.retries == 3
    assert len(store.read("binance", "ETH/USDT", "1m")) == 250


def test_timeout_retried(tmp_path):
    store = DataStore(tmp_path)
    job = FetchJob("binance", "ETH/USDT", "1m", T0, T0 + pd.Timedelta(minutes=50))
    fails = {"/api/v3/klines": ["timeout"]}
    with FakeBinance(T0_MS, T0_MS + 10_000 * MINUTE_MS, failures=fails, timeout_sleep=1.0) as fb:
        (res,) = _run(fb, [job], store, timeout_ms=300)
        assert fb.count("/api/v3/klines") == 2
    assert res.error is None and res.retries == 1 and "RequestTimeout" in res.log[0]
    assert len(store.read("binance", "ETH/USDT", "1m")) == 50


def test_resume_from_store_end_keeps_existing_rows(tmp_path):
    store = DataStore(tmp_path)
    first = FetchJob("binance", "ETH/USDT", "1m", T0, T0 + pd.Timedelta(minutes=120))
    second = FetchJob("binance", "ETH/USDT", "1m", T0, T0 + pd.Timedelta(minutes=300))
    with FakeBinance(T0_MS, T0_MS + 10_000 * MINUTE_MS, max_limit=100) as fb:
        _run(fb, [first], store)
        stored = store.read("binance", "ETH/USDT", "1m")
        n_before = len(fb.requests)
        (res,) = _run(fb, [second], store)
        starts = [int(q["startTime"]) for p, q in fb.requests[n_before:] if p == "/api/v3/klines"]
    assert starts[0] == T0_MS + 120 * MINUTE_MS  # resumed from the store's end
    assert res.rows_fetched == 180 and any("resuming" in m for m in res.log)
    df = store.read("binance", "ETH/USDT", "1m", verify=True)
    assert len(df) == 300 and df.index.is_unique
    pd.testing.assert_frame_equal(df.iloc[:120], stored)


def test_permanent_error_reported_and_store_untouched(tmp_path):
    store = DataStore(tmp_path)
    ok = FetchJob("binance", "ETH/USDT", "1m", T0, T0 + pd.Timedelta(minutes=60))
    later = FetchJob("binance", "ETH/USDT", "1m", T0, T0 + pd.Timedelta(minutes=600))
    with FakeBinance(T0_MS, T0_MS + 10_000 * MINUTE_MS, max_limit=100) as fb:
        _run(fb, [ok], store)
        path = store.path("binance", "ETH/USDT", "1m")
        before = (path.read_bytes(), path.with_suffix(".json").read_bytes())
        fb.failures["/api/v3/klines"] = [None, 400]  # second page: invalid symbol
        (res,) = _run(fb, [later], store)
    assert res.error is not None
    assert "binance fetch_ohlcv ETH/USDT 1m" in res.error and "permanent error" in res.error
    assert "BadSymbol" in res.error or "BadRequest" in res.error
    assert (path.read_bytes(), path.with_suffix(".json").read_bytes()) == before


def test_gives_up_after_max_tries():
    calls = []

    async def always_503():
        calls.append(1)
        import ccxt

        raise ccxt.ExchangeNotAvailable("503 Service Unavailable")

    async def no_sleep(_):
        return None

    with pytest.raises(FetchError, match="gave up after 4 tries.*ExchangeNotAvailable"):
        asyncio.run(call_with_retry(always_503, FAST, "test call", sleep=no_sleep))
    assert len(calls) == 4
    assert [FAST.delay(k) for k in range(4)] == [0.01, 0.02, 0.04, 0.05]


def test_many_symbols_funding_and_order_book(tmp_path):
    store = DataStore(tmp_path)
    end = T0 + pd.Timedelta(days=2)
    jobs = [
        FetchJob("binance", "ETH/USDT", "1m", T0, T0 + pd.Timedelta(minutes=150)),
        FetchJob("binance", "BTC/USDT", "1m", T0, T0 + pd.Timedelta(minutes=90)),
        FetchJob("binance", "ETH/USDT:USDT", since=T0, until=end, kind="funding"),
        FetchJob("binance", "ETH/USDT", kind="orderbook"),
    ]
    with FakeBinance(T0_MS, T0_MS + 10_000 * MINUTE_MS, max_limit=100) as fb:
        results = _run(fb, jobs, store)
    assert [r.error for r in results] == [None] * 4
    assert len(store.read("binance", "ETH/USDT", "1m")) == 150
    assert len(store.read("binance", "BTC/USDT", "1m")) == 90
    funding = store.read("binance", "ETH/USDT:USDT", "funding")
    assert len(funding) == 6  # every 8 h over two days
    assert (funding.index.hour % 8 == 0).all()
    np.testing.assert_allclose(funding["funding_rate"].to_numpy()[:3], [1e-4, 2e-4, 3e-4])
    book = store.read("binance", "ETH/USDT", "orderbook")
    bids, asks = book[book.side == 1], book[book.side == -1]
    assert len(bids) == len(asks) == 100
    assert bids["price"].iloc[0] == 1999.99 and asks["price"].iloc[0] == 2000.01
    assert bids["price"].is_monotonic_decreasing and asks["price"].is_monotonic_increasing
