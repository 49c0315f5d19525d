"""Closed-bar feeds for the trader: a replayed candle file, a queue, an exchange's kline stream.

A feed is an async iterator of ``(bar, live)``: ``live`` is False for history (bars fetched at
start to warm the features up; the trader decides on none of them) and True for bars that just
closed. Bars come in time order on the bar grid, gap-free: the exchange feed passes them through
:class:`marketsim.data.sources.StreamCleaner` (duplicates dropped, gaps filled) like the online
loop's sources.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pandas as pd

from marketsim.data.sources import StreamCleaner
from marketsim.live.bars import bars_from_frame
from marketsim.live.orders import Bar

__all__ = ["ReplayFeed", "QueueFeed", "CcxtBarFeed"]

FeedItem = tuple[Bar, bool]


class ReplayFeed:
    """Stored candles as if they were closing now, ``speed`` times faster than real time.

    Args:
        candles: a cleaned candle frame (``marketsim.data.load_candles``).
        bar_ms: bar length in milliseconds.
        speed: 600 plays ten hours of 1m bars in a minute; None: as fast as the trader goes.
        history: the first ``history`` bars are handed on as history (no decision).
        decide_last: decide on the last bar too; False (the default) only marks the account
            there, as the backtest's episode ends there (so their equities compare).
    """

    def __init__(self, candles: pd.DataFrame, bar_ms: int, speed: float | None = None,
                 history: int = 0, decide_last: bool = False) -> None:
        if speed is not None and not speed > 0:
            raise ValueError(f"speed: expected a number > 0 or None (max), got {speed!r}")
        self.bars = bars_from_frame(candles)
        if not self.bars:
            raise ValueError("replay: no candles to replay")
        self.bar_ms, self.speed, self.history = bar_ms, speed, int(history)
        self.decide_last = decide_last

    async def __aiter__(self) -> AsyncIterator[FeedItem]:
        pause = 0.0 if self.speed is None else self.bar_ms / 1000.0 / self.speed
        last = len(self.bars) - 1
        for i, bar in enumerate(self.bars):
            yield bar, i >= self.history and (i < last or self.decide_last)
            await asyncio.sleep(pause)


class QueueFeed:
    """Bars put from outside (a test, another task); iteration ends after :meth:`close`."""

    def __init__(self) -> None:
        self._q: asyncio.Queue[FeedItem | None] = asyncio.Queue()

    def put(self, bar: Bar, live: bool = True) -> None:
        """Hand on a closed bar."""
        self._q.put_nowait((bar, live))

    def close(self) -> None:
        """End the iteration after the bars already put."""
        self._q.put_nowait(None)

    async def __aiter__(self) -> AsyncIterator[FeedItem]:
        while True:
            item = await self._q.get()
            if item is None:
                return
            yield item


class CcxtBarFeed:
    """Closed candles of an exchange's WebSocket kline stream (``ccxt.pro`` ``watch_ohlcv``).

    At start, the latest ``history`` closed bars come over REST (``fetch_ohlcv``) to warm the
    features up (``symbol`` is resolved to the exchange's perpetual, as the broker does).
    A candle is closed once a newer one appears, or once its close time is ``grace`` seconds
    past. When the stream drops, it is watched again (ccxt reconnects) after a back-off, and the
    bars missed meanwhile are fetched over REST; a stream update that skips a bar (one that
    closed before the stream was back) fetches the missing bars over REST too. So no bar is
    lost, and none is invented while the exchange has it; ``reconnects`` counts drops.
    """

    def __init__(self, exchange: Any, symbol: str, timeframe: str, bar_ms: int,
                 history: int = 100, grace: float = 2.0, backoff: tuple[float, float] = (0.05, 2.0),
                 clock: Callable[[], float] = time.time) -> None:
        self.exchange, self.symbol, self.timeframe = exchange, symbol, timeframe
        self.bar_ms, self.history, self.grace = bar_ms, int(history), float(grace)
        self.backoff = backoff
        self.clock = clock
        self.cleaner = StreamCleaner(pd.Timedelta(milliseconds=bar_ms))
        self.reconnects = 0
        self.errors: list[str] = []

    async def aclose(self) -> None:
        """Close the exchange's connections (the trader calls this when it stops)."""
        await self.exchange.close()

    def _clean(self, rows: list[list[float]], now: float) -> list[Bar]:
        """The closed, new, clean bars among raw OHLCV rows."""
        if not rows:
            return []
        rows = sorted({int(r[0]): r for r in rows}.values(), key=lambda r: r[0])
        newest = rows[-1][0]
        closed = [r for r in rows if r[0] < newest or r[0] + self.bar_ms <= (now - self.grace) * 1000]
        if not closed:
            return []
        idx = pd.DatetimeIndex(pd.to_datetime([int(r[0]) for r in closed], unit="ms", utc=True))
        df = pd.DataFrame([r[1:6] for r in closed], index=idx,
                          columns=["open", "high", "low", "close", "volume"], dtype=float)
        return bars_from_frame(self.cleaner.clean(df))

    async def _rest_since(self, since_ms: int | None, limit: int | None = None) -> list[Bar]:
        rows = await self.exchange.fetch_ohlcv(self.symbol, self.timeframe, since=since_ms,
                                               limit=limit)
        return self._clean(rows, self.clock())

    async def __aiter__(self) -> AsyncIterator[FeedItem]:
        import ccxt

        from marketsim.live.exchange import resolve_symbol

        await self.exchange.load_markets()
        self.symbol = resolve_symbol(self.exchange, self.symbol)
        for bar in await self._rest_since(None, self.history + 1):
            yield bar, False
        delay = self.backoff[0]
        while True:
            try:
                rows = await self.exchange.watch_ohlcv(self.symbol, self.timeframe)
                delay = self.backoff[0]
            except (ccxt.NetworkError, ccxt.ExchangeError) as e:
                self.reconnects += 1
                self.errors.append(f"{type(e).__name__}: {e}"[:300])
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.backoff[1])
                last = self.cleaner.last
                try:
                    missed = await self._rest_since(
                        None if last is None else int(last.value // 1_000_000) + self.bar_ms)
                except (ccxt.NetworkError, ccxt.ExchangeError):
                    continue
                for i, bar in enumerate(missed):  # only the newest missed bar is decided on
                    yield bar, i == len(missed) - 1
                continue
            rows = [list(r) for r in rows]
            last = self.cleaner.last
            if last is not None and rows and min(r[0] for r in rows) > \
                    int(last.value // 1_000_000) + self.bar_ms:  # the stream skipped a bar
                try:
                    rows = await self.exchange.fetch_ohlcv(
                        self.symbol, self.timeframe, since=int(last.value // 1_000_000)
                        + self.bar_ms) + rows
                except (ccxt.NetworkError, ccxt.ExchangeError):
                    pass
            for bar in self._clean(rows, self.clock()):
                yield bar, True
