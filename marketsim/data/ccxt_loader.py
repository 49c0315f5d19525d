"""Exchange loading through ``ccxt.async_support``: paged candles, funding rates, order books.

* one exchange instance per exchange id, ``enableRateLimit=True`` so ccxt's throttler spaces
  the requests of all concurrent jobs on that exchange by its ``rateLimit``;
* transient errors (``ccxt.OperationFailed``: timeouts, HTTP 429, 5xx, maintenance) are retried
  with exponential backoff, at most ``RetryPolicy.max_tries`` tries; anything else is permanent
  and raised as :class:`FetchError` naming exchange, symbol, time and cause;
* candles resume from the store's last bar; only closed candles are kept; pages reach the store
  in checkpoints of whole pages, each written atomically, and rows already stored are never
  rewritten.

Keys are never needed for public data and never given to an exchange that fetches it (with keys,
ccxt signs public requests and makes private calls while loading markets, and a failing private
call then breaks public fetching); :func:`make_exchange` adds them, from the environment only
(``MARKETSIM_<EXCHANGE>_API_KEY``, ``..._SECRET``, ``..._PASSWORD``), for ``private=True``.
``base_url`` points every REST endpoint of an exchange at another host (a proxy, a mirror, a test
server). See docs/marketsim/data.md, section "Loading from exchanges".
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlparse

import ccxt.async_support as ccxt_async
import numpy as np
import pandas as pd
from ccxt.base.errors import OperationFailed

from marketsim.data.clean import clean_candles
from marketsim.data.readers import from_ccxt_ohlcv
from marketsim.data.report import CleaningReport
from marketsim.data.store import DataStore
from marketsim.data.timeframe import timeframe_to_timedelta

T = TypeVar("T")


class FetchError(RuntimeError):
    """A permanent exchange error, or transient errors that outlasted the retry policy."""


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff: wait ``min(max_delay, base_delay * factor**k)`` after try k.

    Attributes:
        max_tries: total tries of one request (first try included).
        base_delay: seconds to wait after the first failure.
        factor: growth of the wait per further failure.
        max_delay: cap on one wait, seconds.
    """

    max_tries: int = 5
    base_delay: float = 1.0
    factor: float = 2.0
    max_delay: float = 30.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed try number ``attempt`` (0-based)."""
        return min(self.max_delay, self.base_delay * self.factor**attempt)


@dataclass(frozen=True)
class FetchJob:
    """One download: ``kind`` is ``"ohlcv"``, ``"funding"`` or ``"orderbook"``.

    ``since``/``until`` are UTC timestamps (``until`` exclusive); ``until=None`` means now.
    """

    exchange: str
    symbol: str
    timeframe: str = "1m"
    since: pd.Timestamp | None = None
    until: pd.Timestamp | None = None
    kind: str = "ohlcv"


@dataclass
class FetchResult:
    """Outcome of one :class:`FetchJob`: the store path and row counts, or the error."""

    job: FetchJob
    path: str | None = None
    rows_fetched: int = 0
    pages: int = 0
    retries: int = 0
    error: str | None = None
    log: list[str] = field(default_factory=list)
    cleaning: list[CleaningReport] = field(default_factory=list)
    """The report of each merge of new rows into the store (repairs, filled gaps)."""


def api_credentials(exchange_id: str) -> dict[str, str]:
    """API keys from ``MARKETSIM_<ID>_API_KEY``/``_SECRET``/``_PASSWORD`` (empty if unset)."""
    prefix = f"MARKETSIM_{exchange_id.upper()}_"
    out = {}
    for env, key in (("API_KEY", "apiKey"), ("SECRET", "secret"), ("PASSWORD", "password")):
        value = os.environ.get(prefix + env)
        if value:
            out[key] = value
    return out


def make_exchange(exchange_id: str, config: dict[str, Any] | None = None,
                  base_url: str | None = None, private: bool = False) -> Any:
    """An async ccxt exchange by id (``binance``, ``bybit``, ``okx``, ...), rate limit on.

    Public by default: API keys are added (from the environment) only with ``private=True``.
    ``base_url`` (``http://host:port``) replaces the scheme and host of every REST endpoint.
    """
    if exchange_id not in ccxt_async.exchanges:
        raise ValueError(f"unknown ccxt exchange id {exchange_id!r}; e.g. binance, bybit, okx")
    cfg: dict[str, Any] = {"enableRateLimit": True}
    if private:
        cfg.update(api_credentials(exchange_id))
    cfg.update(config or {})
    ex = getattr(ccxt_async, exchange_id)(cfg)
    if base_url:
        point_at(ex, base_url)
    return ex


def point_at(exchange: Any, base_url: str) -> None:
    """Replace the scheme and host of every REST url of a ccxt exchange by ``base_url``."""
    base = base_url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise ValueError(f"exchange url {base_url!r}: expected http://host[:port] or https://...")

    def swap(urls: Any) -> Any:
        if isinstance(urls, str):
            return base + urlparse(urls).path if urls.startswith("http") else urls
        if isinstance(urls, dict):
            return {k: swap(v) for k, v in urls.items()}
        return urls

    exchange.urls["api"] = swap(exchange.urls["api"])


def _to_ms(ts: pd.Timestamp | str | None) -> int | None:
    """Milliseconds since the epoch of a UTC timestamp (naive means UTC)."""
    if ts is None:
        return None
    t = pd.Timestamp(ts)
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    return int(t.value // 1_000_000)


async def call_with_retry(
    make_call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    what: str,
    result: FetchResult | None = None,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> T:
    """Await ``make_call()``; retry ``ccxt.OperationFailed`` with backoff; wrap the rest.

    ``OperationFailed`` is ccxt's base of transient errors: ``NetworkError`` (``RequestTimeout``,
    ``DDoSProtection``/``RateLimitExceeded`` for HTTP 429, ``ExchangeNotAvailable`` for 5xx)
    and exchange codes that mean "try again" (Binance -1000 UNKNOWN).

    Raises :class:`FetchError` for a permanent error (first try) or when ``policy.max_tries``
    transient failures happened; the message names ``what`` and the last cause.
    """
    # --8<-- [start:retry]
    for attempt in range(policy.max_tries):
        try:
            return await make_call()
        except OperationFailed as exc:  # NetworkError (timeouts, 429, 5xx), unknown: transient
            if result is not None:
                result.retries += 1
                result.log.append(f"{what}: try {attempt + 1} failed: {type(exc).__name__}")
            if attempt + 1 >= policy.max_tries:
                raise FetchError(
                    f"{what}: gave up after {policy.max_tries} tries; last error "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            await sleep(policy.delay(attempt))
        except Exception as exc:  # ccxt.ExchangeError and the like: permanent
            raise FetchError(f"{what}: permanent error {type(exc).__name__}: {exc}") from exc
    # --8<-- [end:retry]
    raise AssertionError("unreachable")  # pragma: no cover


def _merge_candles(
    existing: pd.DataFrame | None, rows: list[list[float]], timeframe: str
) -> tuple[pd.DataFrame, CleaningReport]:
    """Existing store rows unchanged + the cleaned new rows after them; returns (frame, report)."""
    new = from_ccxt_ohlcv(rows, source="exchange pages")
    if existing is None or len(existing) == 0:
        return clean_candles(new, timeframe, max_gap_bars=None)  # an exchange's gaps are real
    last = existing.index.max()
    new = new[new.index > last]
    combined = pd.concat([existing, new.assign(filled=False, repaired=False)])
    cleaned, report = clean_candles(combined, timeframe, max_gap_bars=None)
    out = pd.concat([existing, cleaned[cleaned.index > last]])
    return out, report


async def fetch_ohlcv_to_store(
    exchange: Any,
    job: FetchJob,
    store: DataStore,
    policy: RetryPolicy = RetryPolicy(),
    limit: int = 1000,
    checkpoint_pages: int = 50,
    result: FetchResult | None = None,
) -> FetchResult:
    """Page ``fetch_ohlcv`` from the store's end (or ``job.since``) to ``job.until`` into the store.

    Pages are kept in memory and merged into the store every ``checkpoint_pages`` pages and at
    the end (docs/marketsim/data.md, "Loading from exchanges"). Candles that have not closed
    yet (open time + bar > exchange time) are dropped, so no partial candle is ever stored.
    """
    result = result if result is not None else FetchResult(job=job)
    step_ms = int(timeframe_to_timedelta(job.timeframe).value // 1_000_000)
    now_ms = int(exchange.milliseconds())
    until_ms = _to_ms(job.until) or now_ms
    until_ms = min(until_ms, now_ms - step_ms + 1)  # only closed candles
    cursor = _to_ms(job.since)
    last = store.last_timestamp(job.exchange, job.symbol, job.timeframe)
    if last is not None:
        resume = _to_ms(last) + step_ms
        if cursor is None or cursor < resume:
            result.log.append(f"resuming from the store's end {last.isoformat()}")
            cursor = resume
    if cursor is None:
        raise FetchError(f"{job.exchange} {job.symbol}: no --since and nothing in the store")
    pending: list[list[float]] = []
    source = f"ccxt:{job.exchange}"

    def flush() -> None:
        """Merge pending pages into the store (atomic write)."""
        nonlocal pending
        if not pending:
            return
        existing = (
            store.read(job.exchange, job.symbol, job.timeframe)
            if store.exists(job.exchange, job.symbol, job.timeframe)
            else None
        )
        merged, report = _merge_candles(existing, pending, job.timeframe)
        result.cleaning.append(report)
        path = store.write(merged, job.exchange, job.symbol, job.timeframe, source, report)
        result.path = str(path)
        pending = []

    # --8<-- [start:paging]
    while cursor < until_ms:
        what = f"{job.exchange} fetch_ohlcv {job.symbol} {job.timeframe} since {cursor}"
        since = cursor
        page = await call_with_retry(
            lambda since=since: exchange.fetch_ohlcv(job.symbol, job.timeframe, since, limit),
            policy,
            what,
            result,
        )
        page = [list(map(float, r)) for r in page if since <= r[0] < until_ms]
        if not page:
            break
        result.pages += 1
        result.rows_fetched += len(page)
        pending.extend(page)
        cursor = int(page[-1][0]) + step_ms
        if result.pages % checkpoint_pages == 0:
            flush()
    flush()
    # --8<-- [end:paging]
    if result.path is None and store.exists(job.exchange, job.symbol, job.timeframe):
        result.path = str(store.path(job.exchange, job.symbol, job.timeframe))
    return result


async def fetch_funding_to_store(
    exchange: Any,
    job: FetchJob,
    store: DataStore,
    policy: RetryPolicy = RetryPolicy(),
    result: FetchResult | None = None,
) -> FetchResult:
    """Page ``fetch_funding_rate_history`` into dataset ``funding`` (column ``funding_rate``)."""
    result = result if result is not None else FetchResult(job=job)
    until_ms = _to_ms(job.until) or int(exchange.milliseconds())
    existing = (
        store.read(job.exchange, job.symbol, "funding")
        if store.exists(job.exchange, job.symbol, "funding")
        else None
    )
    cursor = _to_ms(job.since)
    if existing is not None and len(existing):
        resume = _to_ms(existing.index.max()) + 1
        cursor = resume if cursor is None else max(cursor, resume)
    if cursor is None:
        raise FetchError(f"{job.exchange} {job.symbol}: no --since and no stored funding")
    times: list[int] = []
    rates: list[float] = []
    while cursor < until_ms:
        since = cursor
        page = await call_with_retry(
            lambda since=since: exchange.fetch_funding_rate_history(job.symbol, since),
            policy,
            f"{job.exchange} fetch_funding_rate_history {job.symbol} since {since}",
            result,
        )
        page = [p for p in page if since <= p["timestamp"] < until_ms]
        if not page:
            break
        result.pages += 1
        times.extend(int(p["timestamp"]) for p in page)
        rates.extend(float(p["fundingRate"]) for p in page)
        cursor = times[-1] + 1
    result.rows_fetched = len(times)
    new = pd.DataFrame(
        {"funding_rate": np.asarray(rates, dtype=np.float64)},
        index=pd.DatetimeIndex(pd.to_datetime(times, unit="ms", utc=True), name="timestamp"),
    )
    frame = new if existing is None else pd.concat([existing, new])
    frame = frame[~frame.index.duplicated(keep="first")].sort_index()
    if len(new) or existing is None:
        path = store.write(frame, job.exchange, job.symbol, "funding", f"ccxt:{job.exchange}")
        result.path = str(path)
    return result


async def fetch_order_book_to_store(
    exchange: Any,
    job: FetchJob,
    store: DataStore,
    policy: RetryPolicy = RetryPolicy(),
    depth: int = 100,
    result: FetchResult | None = None,
) -> FetchResult:
    """Append one L2 snapshot to dataset ``orderbook`` (columns side, level, price, amount).

    ``side`` is +1 for bids and -1 for asks; ``level`` 0 is the best price.
    """
    result = result if result is not None else FetchResult(job=job)
    book = await call_with_retry(
        lambda: exchange.fetch_order_book(job.symbol, depth),
        policy,
        f"{job.exchange} fetch_order_book {job.symbol}",
        result,
    )
    ts = book.get("timestamp") or int(exchange.milliseconds())
    rows = [(1, i, float(p), float(a)) for i, (p, a, *_) in enumerate(book["bids"])]
    rows += [(-1, i, float(p), float(a)) for i, (p, a, *_) in enumerate(book["asks"])]
    snap = pd.DataFrame(rows, columns=["side", "level", "price", "amount"])
    snap["side"] = snap["side"].astype(np.int8)
    snap["level"] = snap["level"].astype(np.int32)
    snap.index = pd.DatetimeIndex(
        pd.to_datetime(np.full(len(snap), ts), unit="ms", utc=True), name="timestamp"
    )
    existing = (
        store.read(job.exchange, job.symbol, "orderbook")
        if store.exists(job.exchange, job.symbol, "orderbook")
        else None
    )
    frame = snap if existing is None else pd.concat([existing, snap])
    result.path = str(
        store.write(frame, job.exchange, job.symbol, "orderbook", f"ccxt:{job.exchange}")
    )
    result.rows_fetched, result.pages = len(snap), 1
    return result


async def fetch_many(
    jobs: list[FetchJob],
    store: DataStore,
    policy: RetryPolicy = RetryPolicy(),
    exchanges: dict[str, Any] | None = None,
    limit: int = 1000,
    checkpoint_pages: int = 50,
) -> list[FetchResult]:
    """Run all jobs concurrently (one rate-limited instance per exchange); never raises per job.

    ``exchanges`` maps ids to ready instances (tests pass ones pointed at a local server);
    missing ids are created with :func:`make_exchange` and closed at the end.
    """
    given = dict(exchanges or {})
    created: dict[str, Any] = {}
    for job in jobs:
        if job.exchange not in given and job.exchange not in created:
            created[job.exchange] = make_exchange(job.exchange)
    instances = {**created, **given}

    async def run(job: FetchJob) -> FetchResult:
        """One job, with its error captured in the result."""
        ex = instances[job.exchange]
        res = FetchResult(job=job)
        try:
            if job.kind == "ohlcv":
                return await fetch_ohlcv_to_store(
                    ex, job, store, policy, limit, checkpoint_pages, result=res
                )
            if job.kind == "funding":
                return await fetch_funding_to_store(ex, job, store, policy, result=res)
            if job.kind == "orderbook":
                return await fetch_order_book_to_store(ex, job, store, policy, result=res)
            raise FetchError(f"unknown kind {job.kind!r}; expected ohlcv, funding or orderbook")
        except FetchError as exc:
            res.error = str(exc)
            return res

    try:
        return list(await asyncio.gather(*(run(j) for j in jobs)))
    finally:
        for ex in created.values():
            await ex.close()
