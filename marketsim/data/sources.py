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
from marketsim.data.schema import COLUMNS
from marketsim.data.store import DataStore
from marketsim.data.timeframe import infer_timeframe, timeframe_to_timedelta

__all__ = ["DataEvent", "StreamCleaner", "CandleSource", "ReplaySource", "CcxtSource",
           "parse_source"]

@dataclass(frozen=True)
class DataEvent:
    """One cleaning decision: ``kind`` is ``duplicate``, ``rejected`` or ``gap_filled``."""

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
        n0 = len(self.cleaner.events)
        out = self.cleaner.clean(closed)
        return out, self.cleaner.events[n0:]
    # --8<-- [end:poll]

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
    ``make_exchange(exchange_id)``. Only closed candles are stored by the loader.
    """

    name = "ccxt"

    def __init__(self, exchange_id: str, symbol: str, timeframe: str = "1m",
                 store_root: str | Path | None = None, since: pd.Timestamp | None = None,
                 exchange_factory: Callable[[], Any] | None = None, max_fill: int = 240):
        super().__init__(timeframe_to_timedelta(timeframe), max_fill)
        self.exchange_id, self.symbol, self.timeframe = exchange_id, symbol, timeframe
        self.store = DataStore(store_root)
        self.since = since
        self._factory = exchange_factory

    def _raw_until(self, now: pd.Timestamp) -> pd.DataFrame:
        from marketsim.data.ccxt_loader import FetchJob, fetch_ohlcv_to_store, make_exchange

        since = self.since if self.position is None else self.position + self.bar
        job = FetchJob(self.exchange_id, self.symbol, self.timeframe, since=since)

        async def go() -> None:
            ex = self._factory() if self._factory else make_exchange(self.exchange_id)
            try:
                await fetch_ohlcv_to_store(ex, job, self.store)
            finally:
                await ex.close()

        asyncio.run(go())
        if not self.store.exists(self.exchange_id, self.symbol, self.timeframe):
            return pd.DataFrame(columns=list(COLUMNS), index=pd.DatetimeIndex([], tz="UTC"))
        return self.store.read(self.exchange_id, self.symbol, self.timeframe)

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


def parse_source(spec: str, store_root: str | Path | None = None) -> CandleSource:
    """``replay:PATH`` or ``ccxt:EXCHANGE:SYMBOL:TIMEFRAME`` -> a source."""
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
        return CcxtSource(parts[0], parts[1], parts[2], store_root)
    raise ValueError(f"--source {spec!r}: expected replay:PATH or ccxt:EXCHANGE:SYMBOL:TIMEFRAME")
