"""Candle sources for the online loop: a stored dataset replayed as if live, and a live ccxt feed.

A source answers one question: which bars are new at tick time ``T``? A bar is indexed by its
open time ``o`` and closes at ``o + bar``; it is visible at ``T`` only if ``o + bar <= T``
(docs/guide/continual-learning.md, eq. (1)). Every bar passes through a :class:`StreamCleaner`
before it is handed on: duplicates and out-of-order bars are dropped, bars with NaN or
inconsistent prices are rejected, and a gap is filled (close carried forward, volume
interpolated) once the next good bar arrives. Each decision is logged with its reason.
The source's position is the open time of the last bar it handed on; it is saved with the
loop's state, so a resumed loop neither repeats nor skips a bar.

Both sources satisfy :class:`rlcore.continual.source.Source`, the protocol the online loop
(:class:`rlcore.continual.OnlineLoop`) steps; this module itself imports no torch and nothing of
rlcore.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from marketsim.data.load import read_candles
from marketsim.data.schema import COLUMNS, DataError
from marketsim.data.store import DataStore
from marketsim.data.timeframe import infer_timeframe, timeframe_to_timedelta

__all__ = ["DataEvent", "StreamCleaner", "CandleSource", "ReplaySource", "CcxtSource",
           "parse_source"]

@dataclass(frozen=True)
class DataEvent:
    """One decision about incoming data: a cleaning decision (``duplicate``, ``rejected``,
    ``gap_filled``, ``gap_not_filled``) or, for a live feed, ``retry`` (a request that failed and
    was tried again), ``repaired`` (the store's cleaning changed or filled bars) and
    ``fetch_failed`` (the poll got no new data; the loop goes on with what it has)."""

    time: str
    kind: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        """JSON-ready dict."""
        return {"time": self.time, "kind": self.kind, "reason": self.reason}


@dataclass
class StreamCleaner:
    """Checks bars one poll at a time against the last bar handed on (``last``).

    Attributes:
        bar: the bar length.
        last: open time of the last good bar handed on (None before the first).
        last_row: that bar's (open, high, low, close, volume), for forward filling.
        max_fill: gaps longer than this many bars are not filled; the stream restarts after them
            (logged), because a flat line over hours would teach the agent a market that never was.
    """

    bar: pd.Timedelta
    last: pd.Timestamp | None = None
    last_row: tuple[float, ...] | None = None
    max_fill: int = 240
    events: list[DataEvent] = field(default_factory=list)

    def clean(self, df: pd.DataFrame) -> pd.DataFrame:
        """Return the good (and gap-filled) bars of ``df`` newer than ``last``, in time order.

        Adds a bool column ``filled``. Appends a :class:`DataEvent` per decision to ``events``.
        """
        rows: list[tuple[pd.Timestamp, tuple[float, ...], bool]] = []
        for ts, rec in zip(df.index, df[list(COLUMNS)].itertuples(index=False, name=None)):
            ts = pd.Timestamp(ts)
            if self.last is not None and ts <= self.last:
                self._log(ts, "duplicate", f"bar at {ts.isoformat()} is not after the last bar "
                                           f"{self.last.isoformat()}: dropped")
                continue
            bad = _invalid(rec)
            if bad:
                self._log(ts, "rejected", f"bar at {ts.isoformat()}: {bad}; expected finite "
                                          "positive prices with low <= open, close <= high")
                continue
            if self.last is not None:
                missing = int(round((ts - self.last) / self.bar)) - 1
                if (ts - self.last) % self.bar != pd.Timedelta(0):
                    self._log(ts, "rejected", f"bar at {ts.isoformat()} is off the {self.bar} grid "
                                              f"that starts at {self.last.isoformat()}")
                    continue
                if 0 < missing <= self.max_fill:
                    rows.extend(self._fill(ts, rec, missing))
                elif missing > self.max_fill:
                    self._log(ts, "gap_not_filled", f"{missing} bars missing before "
                                                    f"{ts.isoformat()} (> max_fill "
                                                    f"{self.max_fill}): the stream restarts here")
            rows.append((ts, tuple(float(x) for x in rec), False))
            self.last, self.last_row = ts, tuple(float(x) for x in rec)
        if not rows:
            out = pd.DataFrame({c: pd.Series(dtype=np.float64) for c in COLUMNS})
            out.index = pd.DatetimeIndex([], tz="UTC")
            out["filled"] = pd.Series(dtype=bool)
            return out
        idx = pd.DatetimeIndex([r[0] for r in rows])
        out = pd.DataFrame([r[1] for r in rows], index=idx, columns=list(COLUMNS))
        out["filled"] = [r[2] for r in rows]
        return out

    def _fill(self, ts: pd.Timestamp, rec: tuple, missing: int) -> list:
        """Forward-fill the close and interpolate volume linearly over ``missing`` bars."""
        assert self.last is not None and self.last_row is not None
        c = self.last_row[3]
        v0, v1 = self.last_row[4], float(rec[4])
        out = []
        for j in range(1, missing + 1):
            v = v0 + (v1 - v0) * j / (missing + 1)
            out.append((self.last + j * self.bar, (c, c, c, c, v), True))
        self._log(ts, "gap_filled", f"{missing} bar(s) missing between {self.last.isoformat()} "
                                    f"and {ts.isoformat()}: close carried forward, volume "
                                    "interpolated")
        return out

    def _log(self, ts: pd.Timestamp, kind: str, reason: str) -> None:
        self.events.append(DataEvent(ts.isoformat(), kind, reason))

    def state_dict(self) -> dict[str, Any]:
        """Position (last bar and its values), for the loop's state file."""
        return {"last": None if self.last is None else self.last.isoformat(),
                "last_row": self.last_row}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the position saved by :meth:`state_dict`."""
        self.last = None if state["last"] is None else pd.Timestamp(state["last"])
        self.last_row = None if state["last_row"] is None else tuple(state["last_row"])


def _invalid(rec: tuple) -> str:
    """Why a bar (o, h, l, c, v) is unusable, or '' if it is fine."""
    o, h, lo, c, v = (float(x) for x in rec)
    if not all(np.isfinite([o, h, lo, c, v])):
        return "NaN or infinite value"
    if min(o, h, lo, c) <= 0:
        return "non-positive price"
    if v < 0:
        return "negative volume"
    if not (lo <= min(o, c) and max(o, c) <= h):
        return "inconsistent OHLC (low <= open, close <= high fails)"
    return ""


class CandleSource:
    """Shared parts of the sources: the cleaner, the position, ``poll``, the state."""

    name = "source"

    def __init__(self, bar: pd.Timedelta, max_fill: int = 240):
        self.bar = pd.Timedelta(bar)
        self.cleaner = StreamCleaner(self.bar, max_fill=max_fill)

    @property
    def position(self) -> pd.Timestamp | None:
        """Open time of the last bar handed on."""
        return self.cleaner.last

    def _raw_until(self, now: pd.Timestamp) -> pd.DataFrame:
        raise NotImplementedError

    # --8<-- [start:poll]
    def poll(self, now: pd.Timestamp) -> tuple[pd.DataFrame, list[DataEvent]]:
        """New clean bars that closed by ``now`` (open time + bar <= now) and the events logged."""
        now = pd.Timestamp(now)
        raw = self._raw_until(now)
        closed = raw[raw.index + self.bar <= now]  # docs/guide/continual-learning.md, eq. (1)
        if self.position is not None:
            closed = closed[closed.index > self.position]
        out = self.cleaner.clean(closed)
        events = list(self.cleaner.events)  # handed on, not kept: a live feed runs for months
        self.cleaner.events.clear()
        return out, events
    # --8<-- [end:poll]

    def _event(self, now: pd.Timestamp, kind: str, reason: str) -> None:
        """Log a source-level event (a retry, a repair, a failed fetch) for the next poll."""
        self.cleaner.events.append(DataEvent(pd.Timestamp(now).isoformat(), kind, reason))

    def state_dict(self) -> dict[str, Any]:
        """The position, for the loop's state file."""
        return {"name": self.name, "cleaner": self.cleaner.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue after the saved position."""
        self.cleaner.load_state_dict(state["cleaner"])


class ReplaySource(CandleSource):
    """Streams a stored candle file (or frame) as if it were arriving live.

    Rows are read raw (``marketsim.data.read_candles``, no cleaning) so that bad rows reach the
    stream cleaner as they would from an exchange. ``first_tick()`` is the close time of bar
    ``warmup`` (the bars the loop starts with); the loop advances the tick clock by ``every``,
    and ``--speed`` only sets how long it sleeps between ticks.
    """

    name = "replay"

    def __init__(self, data: str | Path | pd.DataFrame, bar: str | pd.Timedelta | None = None,
                 max_fill: int = 240):
        self.path = str(data) if not isinstance(data, pd.DataFrame) else "<DataFrame>"
        raw = read_candles(data)
        if len(raw) < 2:
            raise ValueError(f"{self.path}: replay source needs at least 2 candles, got {len(raw)}")
        self.raw = raw.sort_index(kind="stable")
        if bar is None:
            bar = timeframe_to_timedelta(infer_timeframe(self.raw.index))
        elif isinstance(bar, str):
            bar = timeframe_to_timedelta(bar)
        super().__init__(bar, max_fill)

    def _raw_until(self, now: pd.Timestamp) -> pd.DataFrame:
        end = self.raw.index.searchsorted(now - self.bar, side="right")
        start = 0 if self.position is None else self.raw.index.searchsorted(
            self.position, side="right")
        return self.raw.iloc[start:end]

    def first_tick(self, warmup: int) -> pd.Timestamp:
        """The close time of the ``warmup``-th bar: the loop's first tick."""
        warmup = max(1, min(int(warmup), len(self.raw)))
        return self.raw.index[warmup - 1] + self.bar

    @property
    def end(self) -> pd.Timestamp:
        """Close time of the last stored bar: no new data after it."""
        return self.raw.index[-1] + self.bar

    def closed_bars(self, now: pd.Timestamp) -> pd.DataFrame:
        """The stored bars (raw) that closed by ``now``, without moving the position."""
        return self.raw[self.raw.index + self.bar <= now]


class CcxtSource(CandleSource):
    """Polls an exchange through ``marketsim.data.ccxt_loader`` into a local store, then reads it.

    ``exchange_factory`` builds a fresh ccxt (async) exchange for each poll (each poll runs its
    own event loop, and a ccxt session belongs to one loop); by default
    ``make_exchange(exchange_id, base_url=url)``, public (no API keys). Only closed candles are
    stored by the loader.

    A poll never raises for the exchange's sake: each request is retried with bounded backoff
    (``retry``: at most ``max_tries`` tries, waits capped at ``max_delay``), and a poll that still
    gets nothing (an outage, no network) logs ``fetch_failed`` and returns no new bars; the next
    poll starts again from the position, so the bars of an outage arrive when it ends. Every
    retry and every repair of the store's cleaning is logged as a :class:`DataEvent`.
    """

    name = "ccxt"

    def __init__(self, exchange_id: str, symbol: str, timeframe: str = "1m",
                 store_root: str | Path | None = None, since: pd.Timestamp | None = None,
                 exchange_factory: Callable[[], Any] | None = None, max_fill: int = 240,
                 url: str | None = None, retry: Any = None):
        from marketsim.data.ccxt_loader import RetryPolicy

        super().__init__(timeframe_to_timedelta(timeframe), max_fill)
        self.exchange_id, self.symbol, self.timeframe = exchange_id, symbol, timeframe
        self.store = DataStore(store_root)
        self.since = since
        self.url = url
        self.retry = retry if retry is not None else RetryPolicy()
        self._factory = exchange_factory

    def _raw_until(self, now: pd.Timestamp) -> pd.DataFrame:
        from marketsim.data.ccxt_loader import (
            FetchJob,
            FetchResult,
            fetch_ohlcv_to_store,
            make_exchange,
        )

        since = self.since if self.position is None else self.position + self.bar
        job = FetchJob(self.exchange_id, self.symbol, self.timeframe, since=since)
        result = FetchResult(job=job)

        async def go() -> None:
            ex = (self._factory() if self._factory
                  else make_exchange(self.exchange_id, base_url=self.url))
            try:
                await fetch_ohlcv_to_store(ex, job, self.store, self.retry, result=result)
            finally:
                await ex.close()

        try:
            asyncio.run(go())
        except Exception as e:  # an outage, no network, a bad answer: serve on, log it
            self._event(now, "fetch_failed", f"{type(e).__name__}: {str(e)[:300]}; no new bars "
                                             "this poll, the next one starts from "
                                             f"{since.isoformat() if since is not None else '-'}")
        for line in result.log:
            if "failed" in line:
                self._event(now, "retry", line[:300])
        for report in result.cleaning:
            if report.filled_rows or report.repairs or report.duplicates_dropped:
                self._event(now, "repaired", f"store cleaning: {report.filled_rows} bar(s) "
                                             f"filled in {len(report.gaps)} gap(s), "
                                             f"{len(report.repairs)} cell(s) repaired, "
                                             f"{report.duplicates_dropped} duplicate(s) dropped")
        try:
            if self.store.exists(self.exchange_id, self.symbol, self.timeframe):
                return self.store.read(self.exchange_id, self.symbol, self.timeframe)
        except DataError as e:
            self._event(now, "fetch_failed", f"store unreadable: {str(e)[:300]}")
        return pd.DataFrame(columns=list(COLUMNS), index=pd.DatetimeIndex([], tz="UTC"))

    def first_tick(self, warmup: int) -> None:
        """None: a live feed starts at the wall clock."""
        return None

    @property
    def end(self) -> None:
        """None: a live feed has no last bar."""
        return None

    def closed_bars(self, now: pd.Timestamp) -> None:
        """None: the live feed holds no history before its first poll."""
        return None


def parse_source(spec: str, store_root: str | Path | None = None,
                 since: pd.Timestamp | None = None, url: str | None = None,
                 max_tries: int | None = None) -> CandleSource:
    """``replay:PATH`` or ``ccxt:EXCHANGE:SYMBOL:TIMEFRAME`` -> a source; ``since``, ``url``
    (the exchange's base URL) and ``max_tries`` (per request) apply to ccxt sources."""
    kind, _, rest = str(spec).partition(":")
    if kind == "replay" and rest:
        if not Path(rest).exists():
            raise ValueError(f"--source {spec!r}: file {rest} does not exist")
        return ReplaySource(rest)
    if kind == "ccxt":
        parts = rest.split(":")
        if len(parts) != 3 or not all(parts):
            raise ValueError(f"--source {spec!r}: expected ccxt:EXCHANGE:SYMBOL:TIMEFRAME, "
                             "e.g. ccxt:binance:ETH/USDT:1m")
        from marketsim.data.ccxt_loader import ccxt_async

        if parts[0] not in ccxt_async.exchanges:
            raise ValueError(f"--source {spec!r}: unknown ccxt exchange id {parts[0]!r}; e.g. "
                             "binance, bybit, okx")
        timeframe_to_timedelta(parts[2])
        from marketsim.data.ccxt_loader import RetryPolicy

        retry = RetryPolicy(max_tries=max_tries) if max_tries else None
        return CcxtSource(parts[0], parts[1], parts[2], store_root, since=since, url=url,
                          retry=retry)
    raise ValueError(f"--source {spec!r}: expected replay:PATH or ccxt:EXCHANGE:SYMBOL:TIMEFRAME")
