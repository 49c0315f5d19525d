"""``CcxtBroker``: an exchange through ccxt, orders over WebSocket where the exchange has it.

One ``ccxt.pro`` exchange object (which extends ``ccxt.async_support``) serves both sides: its
REST methods for markets, leverage, positions, balances, ``fetch_order`` and, where there is no
WebSocket order entry, orders; its WebSocket methods for the order stream (``watch_orders``)
and, where the exchange has them, ``create_order_ws`` / ``cancel_order_ws``.

Its rate limiter is ccxt's *rolling window* (the exchange's budget per minute), not ccxt's
default leaky bucket: the leaky bucket refills only while requests queue, so on Binance every
request after an order (cost 4) waited 200 ms however long ago the order was sent, and a
cancel could never go out sooner than that (``benchmarks/bench_live.py`` measures the path).
Binance USD-M (``binanceusdm``) is the first target; Bybit and OKX go through the same calls
(ccxt's unified ``clientOrderId`` and ``reduceOnly`` parameters). When the order stream drops,
it is watched again after a back-off (ccxt reconnects) and the orders it may have missed are
fetched over REST, so no fill or cancel is lost.

Keys are given to ccxt and nowhere else: this module never logs, journals or reports them.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import Any

from marketsim.live.orders import (
    Account,
    Bar,
    BrokerError,
    DuplicateOrder,
    ExchangeUnavailable,
    OrderNotFound,
    OrderRejected,
    OrderRequest,
    OrderUpdate,
)

__all__ = ["CcxtBroker", "make_live_exchange", "live_credentials", "resolve_symbol"]

_STATUS = {"open": "open", "closed": "filled", "canceled": "cancelled", "cancelled": "cancelled",
           "expired": "expired", "rejected": "rejected"}
_NOT_FOUND = ("-2011", "-2013", "unknown order", "does not exist", "order not found")
_DUPLICATE = ("-4116", "duplicate")
DERIVATIVE_DEFAULTS: dict[str, dict[str, Any]] = {"bybit": {"defaultType": "swap"},
                                                   "okx": {"defaultType": "swap"}}
"""ccxt options that make an exchange's unified symbols mean its perpetual swaps."""
RATE_LIMITER = {"enableRateLimit": True, "rateLimiterAlgorithm": "rollingWindow",
                "rollingWindowSize": 60_000}
"""ccxt's rolling-window limiter over a minute: the exchange's budget, with no wait between
requests that fit in it (see the module docstring)."""


def live_credentials(exchange_id: str) -> dict[str, str]:
    """API keys from ``MARKETSIM_<ID>_API_KEY``, ``_SECRET`` and ``_PASSWORD`` (the loader's
    names, :func:`marketsim.data.ccxt_loader.api_credentials`); ValueError naming the missing
    variables when there is no key or no secret."""
    from marketsim.data.ccxt_loader import api_credentials

    creds = api_credentials(exchange_id)
    prefix = f"MARKETSIM_{exchange_id.upper()}_"
    missing = [prefix + n for n, k in (("API_KEY", "apiKey"), ("SECRET", "secret"))
               if not creds.get(k)]
    if missing:
        raise ValueError(f"--live needs API keys in the environment: set {', '.join(missing)}")
    return creds


def make_live_exchange(exchange_id: str, credentials: dict[str, str] | None = None,
                       testnet: bool = False, demo: bool = False,
                       config: dict[str, Any] | None = None) -> Any:
    """A ``ccxt.pro`` exchange (REST and WebSocket), rolling-window rate limit, optionally on
    the testnet (``set_sandbox_mode``) or Binance's demo-trading endpoints
    (``enable_demo_trading``)."""
    import ccxt.pro

    if exchange_id not in ccxt.pro.exchanges:
        raise ValueError(f"--exchange {exchange_id!r}: not a ccxt.pro exchange id; e.g. "
                         "binanceusdm, bybit, okx")
    cfg: dict[str, Any] = {**RATE_LIMITER, "newUpdates": True,
                           "options": dict(DERIVATIVE_DEFAULTS.get(exchange_id, {}))}
    cfg.update(credentials or {})
    cfg.update(config or {})
    ex = getattr(ccxt.pro, exchange_id)(cfg)
    if testnet:
        ex.set_sandbox_mode(True)
    if demo:
        ex.enable_demo_trading(True)
    return ex


def resolve_symbol(exchange: Any, symbol: str) -> str:
    """The exchange's perpetual for ``ETH/USDT`` (``ETH/USDT:USDT``), or the symbol as given
    if the exchange lists it; ValueError naming near matches otherwise."""
    markets = exchange.markets or {}
    if symbol in markets and markets[symbol].get("swap", False):
        return symbol
    if ":" not in symbol and "/" in symbol:
        perp = f"{symbol}:{symbol.split('/')[1]}"
        if perp in markets:
            return perp
    if symbol in markets:
        return symbol
    base = symbol.split("/")[0]
    near = sorted(s for s in markets if s.startswith(base + "/"))[:8]
    raise ValueError(f"--symbol {symbol!r}: not a market of {exchange.id}; near: {near}")


def _error(e: Exception, what: str) -> BrokerError:
    """A ccxt error as the broker's own, by what it means for the order."""
    import ccxt

    text = str(e)
    low = text.lower()
    if isinstance(e, ccxt.OrderNotFound) or any(k in low for k in _NOT_FOUND):
        return OrderNotFound(f"{what}: {text[:300]}")
    if any(k in low for k in _DUPLICATE):
        return DuplicateOrder(f"{what}: {text[:300]}")
    if isinstance(e, (ccxt.NetworkError, ccxt.ExchangeNotAvailable)):
        return ExchangeUnavailable(f"{what}: {type(e).__name__}: {text[:300]}")
    if isinstance(e, ccxt.AuthenticationError):
        return BrokerError(f"{what}: authentication failed ({type(e).__name__}); check the "
                           "API key's permissions and the clock")
    return OrderRejected(f"{what}: {type(e).__name__}: {text[:300]}")


class CcxtBroker:
    """A :class:`~marketsim.live.broker.Broker` over a ``ccxt.pro`` exchange and one symbol.

    Args:
        exchange: a ``ccxt.pro`` exchange with keys (:func:`make_live_exchange`).
        symbol: the market, e.g. ``ETH/USDT`` (its perpetual is traded if it has one).
        order_entry: "ws" (WebSocket order entry), "rest", or "auto" (ws where the exchange
            has ``createOrderWs`` and ``cancelOrderWs``).
        backoff: (first, largest) pause in seconds before watching a dropped stream again.
        clock: time source of event timestamps.
    """

    def __init__(self, exchange: Any, symbol: str, order_entry: str = "auto",
                 backoff: tuple[float, float] = (0.05, 2.0),
                 clock: Callable[[], float] = time.time) -> None:
        if order_entry not in ("auto", "ws", "rest"):
            raise ValueError(f"order_entry: expected 'auto', 'ws' or 'rest', got {order_entry!r}")
        self.exchange = exchange
        self.name = str(exchange.id)
        self.symbol = symbol
        self.order_entry = order_entry
        self.backoff = backoff
        self.clock = clock
        self.events: asyncio.Queue[OrderUpdate] = asyncio.Queue()
        self.reconnects = 0
        self.stream_errors: list[str] = []
        self.ws_orders = False
        self._known: dict[str, OrderUpdate] = {}
        self._acct: dict[str, float] = {"qty": 0.0, "entry": 0.0, "leverage": 1.0, "margin": 0.0,
                                        "wallet": 0.0, "margin_ratio": 0.0, "liq_price": 0.0}
        self._mark = 0.0
        self._stream: asyncio.Task | None = None
        self._refresh: asyncio.Task | None = None
        self._closing = False

    def __repr__(self) -> str:
        """No keys in a repr."""
        return f"CcxtBroker({self.name}, {self.symbol}, order_entry={self.order_entry})"

    # -------------------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        """Load markets, resolve the symbol, read the account, start the order stream."""
        try:
            await self.exchange.load_markets()
        except Exception as e:
            raise _error(e, f"{self.name}: load_markets") from None
        self.symbol = resolve_symbol(self.exchange, self.symbol)
        has = self.exchange.has
        self.ws_orders = self.order_entry == "ws" or (
            self.order_entry == "auto" and bool(has.get("createOrderWs"))
            and bool(has.get("cancelOrderWs")))
        await self.fetch_account()
        self._stream = asyncio.create_task(self._watch_orders())

    async def close(self) -> None:
        """Stop the stream and close the exchange's connections."""
        self._closing = True
        tasks = [t for t in (self._stream, self._refresh) if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:  # bounded: a cancellation swallowed by wait_for must not hang the close
            await asyncio.wait(tasks, timeout=5.0)
        await self.exchange.close()

    # ----------------------------------------------------------------------------- stream
    def _update(self, o: dict[str, Any]) -> OrderUpdate:
        """A ccxt order structure as an :class:`OrderUpdate` (fills from the filled delta)."""
        cid = o.get("clientOrderId") or str(o.get("id"))
        status = _STATUS.get(str(o.get("status")), "open")
        filled = float(o.get("filled") or 0.0)
        if status == "open" and filled > 0:
            status = "partially_filled"
        prev = self._known.get(cid)
        last_qty = max(filled - (prev.filled if prev else 0.0), 0.0)
        avg = float(o.get("average") or o.get("price") or 0.0) if filled else 0.0
        fee = float((o.get("fee") or {}).get("cost") or 0.0)
        update = OrderUpdate(cid, status, filled=filled, avg_price=avg, fee=fee,
                             last_qty=last_qty, last_price=avg if last_qty else 0.0,
                             exchange_id=str(o.get("id")), time=self.clock())
        if prev is None or prev.status not in ("filled", "cancelled", "expired", "rejected") \
                or filled > prev.filled:
            self._known[cid] = update
        if last_qty or fee > (prev.fee if prev else 0.0):
            side = 1.0 if str(o.get("side")) == "buy" else -1.0
            self._book_fill(side * last_qty, avg, fee - (prev.fee if prev else 0.0))
            self._schedule_refresh()
        return update

    def _book_fill(self, qty: float, price: float, fee: float) -> None:
        """Provisional account after a fill, until the refresh brings the exchange's numbers:
        one-way position arithmetic (average entry on an increase, realised PnL on a
        decrease, a flip opens at the fill price) and the fee."""
        a = self._acct
        old = a["qty"]
        new = old + qty
        if qty and old * qty < 0:  # closing part: realised against the entry
            closed = min(abs(qty), abs(old))
            a["wallet"] += closed * (price - a["entry"]) * (1.0 if old > 0 else -1.0)
        if abs(new) < 1e-12:
            new, a["entry"] = 0.0, 0.0
        elif old == 0.0 or old * new < 0:
            a["entry"] = price
        elif abs(new) > abs(old):
            a["entry"] = (abs(old) * a["entry"] + abs(qty) * price) / abs(new)
        a["qty"] = new
        a["wallet"] -= fee

    def _schedule_refresh(self) -> None:
        """Read the account again in the background (never on a decision's path)."""
        if self._refresh is None or self._refresh.done():
            async def go() -> None:
                try:
                    await self.fetch_account()
                except BrokerError:
                    pass
            self._refresh = asyncio.ensure_future(go())

    async def _resync(self) -> None:
        """After a stream drop: fetch the orders we know as open, emit what changed."""
        for cid, known in list(self._known.items()):
            if known.terminal:
                continue
            try:
                update = await self.fetch_order(cid)
            except BrokerError:
                continue
            if update is not None and (update.status != known.status
                                       or update.filled != known.filled):
                self.events.put_nowait(update)

    async def _watch_orders(self) -> None:
        import ccxt

        delay, resync = self.backoff[0], False
        while not self._closing:
            watch = asyncio.ensure_future(self.exchange.watch_orders(self.symbol))
            try:
                if resync:
                    resync = False
                    await self._resync()
                orders = await watch
                delay = self.backoff[0]
            except asyncio.CancelledError:
                watch.cancel()
                raise
            except ccxt.BaseError as e:
                self.reconnects += 1
                self.stream_errors.append(f"{type(e).__name__}: {e}"[:300])
                resync = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.backoff[1])
                continue
            for o in orders:
                self.events.put_nowait(self._update(o))

    # ----------------------------------------------------------------------------- orders
    # --8<-- [start:ccxt-place]
    async def place(self, request: OrderRequest) -> OrderUpdate:
        """Send the order (WebSocket order entry where available) with its client order id."""
        ex = self.exchange
        amount = float(ex.amount_to_precision(self.symbol, request.qty))
        if amount <= 0:
            raise OrderRejected(f"order {request.client_id}: {request.qty} is below the lot "
                                f"size of {self.symbol}")
        price = None if request.type == "market" else float(
            ex.price_to_precision(self.symbol, request.price))
        params: dict[str, Any] = {"clientOrderId": request.client_id}
        if request.reduce_only:
            params["reduceOnly"] = True
        create = ex.create_order_ws if self.ws_orders else ex.create_order
        self._known.setdefault(request.client_id, OrderUpdate(request.client_id, "pending"))
        try:
            o = await create(self.symbol, request.type, request.side, amount, price, params)
        except Exception as e:
            raise _error(e, f"place {request.client_id}") from None
        return self._update(o)
    # --8<-- [end:ccxt-place]

    async def cancel(self, client_id: str) -> OrderUpdate:
        """Cancel by client order id (WebSocket where available)."""
        ex = self.exchange
        cancel = ex.cancel_order_ws if self.ws_orders else ex.cancel_order
        try:
            o = await cancel(None, self.symbol, {"clientOrderId": client_id})
        except Exception as e:
            raise _error(e, f"cancel {client_id}") from None
        update = self._update(o)
        if update.status in ("open", "partially_filled"):  # some exchanges answer before it
            update.status = "cancelled"                     # is done; the stream confirms
        return update

    async def fetch_order(self, client_id: str) -> OrderUpdate | None:
        """The exchange's state of an order by client id (REST); None if it never had it."""
        try:
            o = await self.exchange.fetch_order(None, self.symbol, {"clientOrderId": client_id})
        except Exception as e:
            err = _error(e, f"fetch {client_id}")
            if isinstance(err, OrderNotFound):
                return None
            raise err from None
        return self._update(o)

    async def open_orders(self) -> list[OrderUpdate]:
        """Every open order of the symbol (REST)."""
        try:
            orders = await self.exchange.fetch_open_orders(self.symbol)
        except Exception as e:
            raise _error(e, "open orders") from None
        return [self._update(o) for o in orders]

    async def set_leverage(self, leverage: float) -> float:
        """Set the symbol's leverage, rounded to an integer >= 1 (what exchanges accept)."""
        lev = max(1, int(round(float(leverage))))
        try:
            await self.exchange.set_leverage(lev, self.symbol)
        except Exception as e:
            raise _error(e, f"set leverage {lev}") from None
        self._acct["leverage"] = float(lev)
        return float(lev)

    # ---------------------------------------------------------------------------- account
    async def fetch_account(self) -> Account:
        """Position and balance over REST; the cache :meth:`account` reads."""
        ex = self.exchange
        try:
            positions = await ex.fetch_positions([self.symbol])
            balance = await ex.fetch_balance()
        except Exception as e:
            raise _error(e, "account") from None
        market = ex.market(self.symbol)
        quote = market.get("settle") or market.get("quote")
        acct = self._acct
        acct["wallet"] = float((balance.get(quote) or {}).get("total") or 0.0)
        pos = next((p for p in positions if p.get("symbol") == self.symbol
                    and float(p.get("contracts") or 0.0)), None)
        if pos is None:
            acct.update(qty=0.0, entry=0.0, margin=0.0, margin_ratio=0.0, liq_price=0.0)
        else:
            size = float(pos.get("contracts") or 0.0) * float(pos.get("contractSize") or 1.0)
            acct["qty"] = size if pos.get("side") != "short" else -size
            acct["entry"] = float(pos.get("entryPrice") or 0.0)
            acct["leverage"] = float(pos.get("leverage") or acct["leverage"])
            acct["margin"] = float(pos.get("initialMargin") or pos.get("collateral") or 0.0)
            acct["liq_price"] = float(pos.get("liquidationPrice") or 0.0)
            maint = float(pos.get("maintenanceMargin") or 0.0)
            upnl = float(pos.get("unrealizedPnl") or 0.0)
            ratio = pos.get("marginRatio")
            acct["margin_ratio"] = float(ratio) if ratio is not None else (
                maint / (acct["margin"] + upnl) if acct["margin"] + upnl > 0 else 0.0)
            if not self._mark:
                self._mark = float(pos.get("markPrice") or acct["entry"])
        return self.account()

    def account(self) -> Account:
        """The last known position and balance, marked at the last bar's close."""
        a, mark = self._acct, self._mark or self._acct["entry"]
        upnl = a["qty"] * (mark - a["entry"]) if a["qty"] else 0.0
        return Account(qty=a["qty"], entry=a["entry"], leverage=a["leverage"], margin=a["margin"],
                       wallet=a["wallet"], price=mark, upnl=upnl, equity=a["wallet"] + upnl,
                       margin_ratio=a["margin_ratio"], liq_price=a["liq_price"])

    def on_bar(self, bar: Bar) -> None:
        """Mark the account at the bar's close."""
        self._mark = float(bar.close)


def exchange_secrets(credentials: dict[str, str]) -> list[str]:
    """The values that must never be written anywhere (the journal scrubs them)."""
    return [v for k, v in credentials.items() if k in ("apiKey", "secret", "password") and v] + [
        v for k, v in os.environ.items() if k.startswith("MARKETSIM_") and (
            k.endswith("_API_KEY") or k.endswith("_SECRET") or k.endswith("_PASSWORD")) and v]
