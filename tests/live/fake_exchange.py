"""A fake Binance USD-M futures exchange on 127.0.0.1: REST, WebSocket streams and WebSocket
order entry, for testing the real ccxt client (and ``CcxtBroker``) offline.

It speaks the subset of Binance's USD-M API that ccxt uses for one symbol in one-way mode:
markets, balance, positions, leverage, orders (place, cancel, fetch, open orders) over REST and
over the WebSocket API (``order.place``, ``order.cancel``, ``order.status``), the user-data
stream (``ORDER_TRADE_UPDATE``) and kline streams. Signed requests are checked (HMAC-SHA256 of
the query with the secret), so a test also proves the keys reach the exchange and nowhere else.

Like Binance, it refuses a signed request that arrives more than its ``recvWindow`` after its
timestamp, so a request held up in the network cannot land long after it was sent. It can be
told to misbehave, from the test's thread: add latency (uniform in ``[lo, hi]``
seconds) to every response and event, stall (hang every REST and WebSocket-API request until
released), drop (take a request and never answer, processing it or not), reject orders, fill
them partially, disconnect every WebSocket. Market orders fill at the last price; a limit order
rests until :meth:`FakeExchange.push_bar` or :meth:`FakeExchange.trade` moves the price through
it (no queue: the whole remaining quantity fills at the limit price). Every hanging request is
released when the exchange stops, so no test waits on it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

from tests.data.fake_binance import _perp_symbol

MINUTE_MS = 60_000


def _num(x: float, digits: int = 8) -> str:
    return f"{x:.{digits}f}"


def point_exchange(exchange: Any, port: int) -> None:
    """Redirect a ccxt Binance exchange's REST and WebSocket urls to 127.0.0.1:``port``."""
    from urllib.parse import urlparse

    exchange.options["fetchCurrencies"] = False  # the wallet endpoints (sapi) are not faked
    api = exchange.urls["api"]
    for key, url in list(api.items()):
        if isinstance(url, str):
            api[key] = f"http://127.0.0.1:{port}" + urlparse(url).path
    ws = f"ws://127.0.0.1:{port}"
    api["ws"] = {"linear": ws + "/ws", "spot": ws + "/ws", "margin": ws + "/ws",
                 "inverse": ws + "/ws", "ws-api": {"linear": ws + "/ws-fapi/v1",
                                                   "spot": ws + "/ws-fapi/v1",
                                                   "inverse": ws + "/ws-fapi/v1"}}


class FakeExchange:
    """Start with ``with FakeExchange() as fx:``; point ccxt at it with :meth:`point`.

    Args:
        price: the last price before any bar is pushed.
        balance: the USDT wallet balance.
        api_key / secret: the credentials signed requests must carry.
        latency: (lo, hi) seconds added to every response and pushed event.
        taker_fee / maker_fee: fee rates charged on fills.
        seed: seed of the latency draws.
    """

    def __init__(self, price: float = 2000.0, balance: float = 10_000.0,
                 api_key: str = "test-key-0123", secret: str = "test-secret-4567",
                 latency: tuple[float, float] = (0.0, 0.0), taker_fee: float = 0.0005,
                 maker_fee: float = 0.0002, seed: int = 0) -> None:
        self.price, self.wallet = float(price), float(balance)
        self.api_key, self.secret = api_key, secret
        self.latency = latency
        self.taker_fee, self.maker_fee = taker_fee, maker_fee
        self.rng = random.Random(seed)
        self.qty = 0.0
        self.entry = 0.0
        self.leverage = 10
        self.orders: dict[int, dict[str, Any]] = {}
        self.by_client: dict[str, int] = {}
        self.fills: list[dict[str, Any]] = []
        self.bars: list[list[float]] = []
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.received_keys: set[str] = set()
        self.next_id = 1000
        self.lock = threading.Lock()
        self.faults: dict[str, Any] = {"drop": [], "reject": [], "partial": [],
                                        "stall_ws_events": False}
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stalled: asyncio.Event | None = None
        self._released: asyncio.Event | None = None
        self._sockets: dict[str, set[web.WebSocketResponse]] = {"market": set(), "private": set(),
                                                                 "api": set()}
        self._subs: dict[web.WebSocketResponse, set[str]] = {}
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._ready = threading.Event()
        self.port = 0

    # ----------------------------------------------------------------------------- lifecycle
    def __enter__(self) -> FakeExchange:
        """Start serving on a free port of 127.0.0.1."""
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fake exchange did not start in 10 s")
        return self

    def __exit__(self, *exc: Any) -> None:
        """Release every hanging request, close sockets, stop the loop."""
        loop = self.loop
        if loop is None:
            return
        fut = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
        try:
            fut.result(10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join(10)

    @property
    def base(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def point(self, exchange: Any) -> None:
        """Redirect a ccxt Binance exchange's REST and WebSocket urls to this server."""
        point_exchange(exchange, self.port)

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self.loop = loop
        asyncio.set_event_loop(loop)
        self._stalled = asyncio.Event()
        self._released = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/fapi/{tail:.*}", self._rest)
        for path in ("/ws", "/market/ws", "/public/ws"):  # ccxt appends a stream number
            app.router.add_get(path, self._ws_market)
            app.router.add_get(path + "/{n}", self._ws_market)
        app.router.add_get("/private/ws", self._ws_private)
        app.router.add_get("/ws-fapi/v1", self._ws_api)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    async def _shutdown(self) -> None:
        assert self._released is not None
        self._released.set()
        for group in self._sockets.values():
            for ws in list(group):
                await ws.close()
        await self._runner.cleanup()

    def _call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the server's loop and wait for its result."""
        assert self.loop is not None

        async def go() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(go(), self.loop).result(10)

    # ------------------------------------------------------------------------------ controls
    def stall(self, on: bool = True) -> None:
        """Hang every REST and WebSocket-API request until ``stall(False)``."""
        def go() -> None:
            assert self._stalled is not None
            (self._stalled.set if on else self._stalled.clear)()
        self._call(go)

    def drop_next(self, kind: str, n: int = 1, process: bool = True) -> None:
        """Never answer the next ``n`` requests of ``kind`` (``place``, ``cancel``, ``fetch``);
        ``process=True`` carries them out first (the answer is lost), False ignores them."""
        with self.lock:
            self.faults["drop"].extend([(kind, process)] * n)

    def reject_next(self, n: int = 1, code: int = -2019, msg: str = "Margin is insufficient.") -> None:
        """Reject the next ``n`` new orders with Binance error ``code``."""
        with self.lock:
            self.faults["reject"].extend([(code, msg)] * n)

    def partial_next(self, fraction: float, n: int = 1) -> None:
        """Fill only ``fraction`` of the next ``n`` orders (a market order's rest expires)."""
        with self.lock:
            self.faults["partial"].extend([fraction] * n)

    def hold_events(self, on: bool = True) -> None:
        """Stop pushing user-data events (they are queued) until ``hold_events(False)``."""
        def go() -> None:
            self.faults["stall_ws_events"] = on
            if not on:
                for ws, payload in self.faults.pop("held", []):
                    self._send_later(ws, payload)
        self._call(go)

    def disconnect(self) -> int:
        """Close every open WebSocket (market, user data, WebSocket API); returns how many."""
        async def go() -> int:
            n = 0
            for group in self._sockets.values():
                for ws in list(group):
                    n += 1
                    await ws.close(code=1006, message=b"fake disconnect")
            return n
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(go(), self.loop).result(10)

    def push_bar(self, open_ms: int, o: float, h: float, lo: float, c: float, v: float,
                 stream: bool = True) -> None:
        """A closed 1-minute bar: resting limit orders it trades through fill, the price moves
        to its close, and kline subscribers get it (Binance ``kline`` event, ``x: true``) unless
        ``stream`` is False (a stream update lost on its way; REST still has the bar)."""
        def go() -> None:
            self.bars.append([open_ms, o, h, lo, c, v])
            self._cross(lo, h)
            self.price = c
            event = {"e": "kline", "E": open_ms + MINUTE_MS, "s": "ETHUSDT", "k": {
                "t": open_ms, "T": open_ms + MINUTE_MS - 1, "s": "ETHUSDT", "i": "1m",
                "f": 1, "L": 2, "o": _num(o, 2), "c": _num(c, 2), "h": _num(h, 2),
                "l": _num(lo, 2), "v": _num(v, 3), "n": 10, "x": True, "q": "0", "V": "0",
                "Q": "0", "B": "0"}}
            for ws, subs in list(self._subs.items()):
                if stream and "ethusdt@kline_1m" in subs:
                    self._send_later(ws, event)
        self._call(go)

    def trade(self, price: float) -> None:
        """A public trade at ``price``: limit orders it crosses fill; the last price moves."""
        def go() -> None:
            self._cross(price, price)
            self.price = price
        self._call(go)

    def set_latency(self, lo: float, hi: float) -> None:
        """Latency of every later response and event, uniform in [lo, hi] seconds."""
        self.latency = (lo, hi)

    # ---------------------------------------------------------------------------- inspection
    def client_ids(self) -> list[str]:
        """Client order ids of every order the exchange accepted, in order."""
        with self.lock:
            return [o["clientOrderId"] for o in sorted(self.orders.values(),
                                                         key=lambda o: o["orderId"])]

    def order(self, client_id: str) -> dict[str, Any] | None:
        """The exchange's record of an order (a copy), or None."""
        with self.lock:
            oid = self.by_client.get(client_id)
            return dict(self.orders[oid]) if oid is not None else None

    def count(self, method: str, path: str) -> int:
        """How many requests hit ``method path`` (e.g. ``POST``, ``/fapi/v1/order``)."""
        with self.lock:
            return sum(1 for m, p, _ in self.requests if m == method and p == path)

    def subscribed(self, stream: str = "ethusdt@kline_1m") -> bool:
        """Some market-data socket is subscribed to ``stream``."""
        return self._call(lambda: any(stream in subs for subs in self._subs.values()))

    def position(self) -> float:
        """The signed position (units)."""
        with self.lock:
            return self.qty

    # ------------------------------------------------------------------------------ plumbing
    def _delay(self) -> float:
        lo, hi = self.latency
        return self.rng.uniform(lo, hi) if hi > 0 else 0.0

    def _send_later(self, ws: web.WebSocketResponse, payload: dict[str, Any]) -> None:
        assert self.loop is not None

        async def go() -> None:
            d = self._delay()
            if d:
                await asyncio.sleep(d)
            if not ws.closed:
                try:
                    await ws.send_str(json.dumps(payload))
                except (ConnectionError, RuntimeError):
                    pass
        self.loop.create_task(go())

    def _push_private(self, payload: dict[str, Any]) -> None:
        for ws in list(self._sockets["private"]):
            if self.faults["stall_ws_events"]:
                self.faults.setdefault("held", []).append((ws, payload))
            else:
                self._send_later(ws, payload)

    async def _gate(self) -> None:
        """Latency, then wait out a stall (bounded by the exchange's life)."""
        d = self._delay()
        if d:
            await asyncio.sleep(d)
        assert self._stalled is not None and self._released is not None
        while self._stalled.is_set() and not self._released.is_set():
            await asyncio.sleep(0.005)

    async def _hang(self) -> None:
        """Never answer (until the exchange stops, or 30 s)."""
        assert self._released is not None
        try:
            await asyncio.wait_for(self._released.wait(), 30)
        except asyncio.TimeoutError:
            pass

    def _check_signature(self, params: dict[str, str], raw_query: str, key: str | None) -> str:
        """'' when the request is signed with our secret, else the error message."""
        if key != self.api_key:
            return "API-key format invalid."
        sig = params.get("signature")
        payload = raw_query.split("&signature=")[0]
        want = hmac.new(self.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if sig != want:
            return "Signature for this request is not valid."
        return ""

    @staticmethod
    def _expired(p: dict[str, str]) -> bool:
        """Binance refuses a signed request that arrives recvWindow ms after its timestamp."""
        ts, window = p.get("timestamp"), p.get("recvWindow", "5000")
        return ts is not None and time.time() * 1000 > int(ts) + int(window)

    def _drop_fault(self, kind: str) -> tuple[bool, bool]:
        """(drop this request?, process it first?) for a request of ``kind``."""
        with self.lock:
            for i, (k, process) in enumerate(self.faults["drop"]):
                if k == kind:
                    del self.faults["drop"][i]
                    return True, process
        return False, False

    # ---------------------------------------------------------------------------------- REST
    async def _rest(self, request: web.Request) -> web.Response:
        path = request.path
        params = dict(request.query)
        raw = request.query_string
        if request.method in ("POST", "PUT", "DELETE") and request.can_read_body:
            body = await request.text()
            if body:
                params.update(dict(parse_qsl(body)))
                raw = body if not raw else raw + "&" + body
        key = request.headers.get("X-MBX-APIKEY")
        with self.lock:
            self.requests.append((request.method, path, {k: v for k, v in params.items()
                                                         if k != "signature"}))
            if key:
                self.received_keys.add(key)
        await self._gate()
        status, body = self._route(request.method, path, params, raw, key)
        if status == -1:  # dropped
            await self._hang()
            return web.Response(status=504)
        return web.json_response(body, status=status)

    def _route(self, method: str, path: str, p: dict[str, str], raw: str,
               key: str | None) -> tuple[int, Any]:
        now = int(time.time() * 1000)
        public = {"/fapi/v1/exchangeInfo", "/fapi/v1/time", "/fapi/v1/klines", "/fapi/v1/ping"}
        if path not in public and path != "/fapi/v1/listenKey":
            err = self._check_signature(p, raw, key)
            if err:
                return 401, {"code": -1022, "msg": err}
            if self._expired(p):
                return 400, {"code": -1021, "msg": "Timestamp for this request is outside of "
                                                   "the recvWindow."}
        if path == "/fapi/v1/exchangeInfo":
            return 200, {"timezone": "UTC", "serverTime": now, "rateLimits": [], "assets": [],
                         "symbols": [_perp_symbol("ETHUSDT", "ETH", "USDT")]}
        if path == "/fapi/v1/time":
            return 200, {"serverTime": now}
        if path == "/fapi/v1/klines":
            limit = int(p.get("limit", 500))
            with self.lock:
                if "startTime" in p:  # Binance: from startTime on; without it, the latest
                    rows = [b for b in self.bars if b[0] >= int(p["startTime"])][:limit]
                else:
                    rows = self.bars[-limit:]
            return 200, [[b[0], _num(b[1], 2), _num(b[2], 2), _num(b[3], 2), _num(b[4], 2),
                          _num(b[5], 3), b[0] + MINUTE_MS - 1, "0", 1, "0", "0", "0"]
                         for b in rows]
        if path == "/fapi/v1/listenKey":
            return 200, {"listenKey": "fake-listen-key"}
        if path == "/fapi/v1/leverage" and method == "POST":
            self.leverage = int(float(p["leverage"]))
            return 200, {"leverage": self.leverage, "maxNotionalValue": "1000000",
                         "symbol": "ETHUSDT"}
        if path == "/fapi/v1/marginType":
            return 200, {"code": 200, "msg": "success"}
        if path == "/fapi/v1/positionSide/dual":
            return 200, {"dualSidePosition": False}
        if path in ("/fapi/v2/balance", "/fapi/v3/balance"):
            return 200, [self._balance_row(now)]
        if path in ("/fapi/v2/account", "/fapi/v3/account"):
            return 200, self._account(now)
        if path in ("/fapi/v2/positionRisk", "/fapi/v3/positionRisk"):
            return 200, [self._position_row(now)]
        if path == "/fapi/v1/leverageBracket":
            return 200, [{"symbol": "ETHUSDT", "brackets": [
                {"bracket": 1, "initialLeverage": 125, "notionalCap": 50000, "notionalFloor": 0,
                 "maintMarginRatio": 0.004, "cum": 0.0}]}]
        if path == "/fapi/v1/order":
            if method == "POST":
                return self._place(p)
            if method == "DELETE":
                return self._cancel(p)
            return self._fetch(p)
        if path == "/fapi/v1/openOrders":
            with self.lock:
                return 200, [self._order_json(o) for o in self.orders.values()
                             if o["status"] in ("NEW", "PARTIALLY_FILLED")]
        if path == "/fapi/v1/allOpenOrders" and method == "DELETE":
            with self.lock:
                for o in self.orders.values():
                    if o["status"] in ("NEW", "PARTIALLY_FILLED"):
                        self._set_status(o, "CANCELED", "CANCELED")
            return 200, {"code": 200, "msg": "The operation of cancel all open order is done."}
        if path == "/fapi/v1/userTrades":
            with self.lock:
                return 200, list(self.fills)
        return 404, {"code": -1, "msg": f"fake exchange: no route {method} {path}"}

    # ------------------------------------------------------------------------------- orders
    def _place(self, p: dict[str, str]) -> tuple[int, Any]:
        drop, process = self._drop_fault("place")
        if drop and not process:
            return -1, None
        with self.lock:
            if self.faults["reject"]:
                code, msg = self.faults["reject"].pop(0)
                return (-1, None) if drop else (400, {"code": code, "msg": msg})
            cid = p.get("newClientOrderId") or f"x-{self.next_id}"
            if cid in self.by_client:
                return (-1, None) if drop else (400, {"code": -4116,
                                                      "msg": "ClientOrderId is duplicated."})
            qty = float(p["quantity"])
            side = p["side"]
            typ = p["type"]
            if qty <= 0 or side not in ("BUY", "SELL") or typ not in ("MARKET", "LIMIT"):
                return 400, {"code": -1102, "msg": "Mandatory parameter was not sent or bad."}
            reduce_only = p.get("reduceOnly", "false").lower() == "true"
            if reduce_only:
                room = -self.qty if side == "BUY" else self.qty
                if room <= 1e-12:
                    return 400, {"code": -2022, "msg": "ReduceOnly Order is rejected."}
                qty = min(qty, room)
            self.next_id += 1
            now = int(time.time() * 1000)
            o = {"orderId": self.next_id, "clientOrderId": cid, "side": side, "type": typ,
                 "origQty": qty, "price": float(p.get("price", 0.0)), "executedQty": 0.0,
                 "cumQuote": 0.0, "status": "NEW", "reduceOnly": reduce_only,
                 "time": now, "updateTime": now}
            self.orders[o["orderId"]] = o
            self.by_client[cid] = o["orderId"]
            self._event(o, "NEW", 0.0, 0.0, 0.0)
            fraction = self.faults["partial"].pop(0) if self.faults["partial"] else 1.0
            if typ == "MARKET":
                self._fill(o, qty * fraction, self.price, self.taker_fee)
                if o["status"] != "FILLED":
                    self._set_status(o, "EXPIRED", "EXPIRED")
            else:
                o["fraction"] = fraction
            out = self._order_json(o)
        return (-1, None) if drop else (200, out)

    def _find(self, p: dict[str, str]) -> dict[str, Any] | None:
        cid = p.get("origClientOrderId")
        oid = self.by_client.get(cid) if cid else p.get("orderId")
        return self.orders.get(int(oid)) if oid is not None else None

    def _cancel(self, p: dict[str, str]) -> tuple[int, Any]:
        drop, process = self._drop_fault("cancel")
        if drop and not process:
            return -1, None
        with self.lock:
            o = self._find(p)
            if o is None:
                return (-1, None) if drop else (400, {"code": -2011, "msg": "Unknown order sent."})
            if o["status"] not in ("NEW", "PARTIALLY_FILLED"):
                return (-1, None) if drop else (400, {"code": -2011,
                                                      "msg": "Unknown order sent."})
            self._set_status(o, "CANCELED", "CANCELED")
            out = self._order_json(o)
        return (-1, None) if drop else (200, out)

    def _fetch(self, p: dict[str, str]) -> tuple[int, Any]:
        drop, process = self._drop_fault("fetch")
        if drop:
            return -1, None
        with self.lock:
            o = self._find(p)
            if o is None:
                return 400, {"code": -2013, "msg": "Order does not exist."}
            return 200, self._order_json(o)

    def _cross(self, low: float, high: float) -> None:
        """Fill resting limit orders that [low, high] trades through (strictly)."""
        with self.lock:
            for o in list(self.orders.values()):
                if o["type"] != "LIMIT" or o["status"] not in ("NEW", "PARTIALLY_FILLED"):
                    continue
                crossed = low < o["price"] if o["side"] == "BUY" else high > o["price"]
                if crossed:
                    left = o["origQty"] - o["executedQty"]
                    part = o.pop("fraction", 1.0)
                    self._fill(o, left * part, o["price"], self.maker_fee)

    def _fill(self, o: dict[str, Any], qty: float, price: float, fee_rate: float) -> None:
        """Book a fill of ``qty`` at ``price``: position, wallet (realised PnL, fee), event."""
        if qty <= 0:
            return
        signed = qty if o["side"] == "BUY" else -qty
        realised = 0.0
        if self.qty * signed < 0:
            closing = min(abs(signed), abs(self.qty))
            realised = closing * (price - self.entry) * (1 if self.qty > 0 else -1)
        new = self.qty + signed
        if abs(new) < 1e-12:
            new, entry = 0.0, 0.0
        elif self.qty * new < 0 or self.qty == 0:
            entry = price
        elif abs(new) > abs(self.qty):
            entry = (abs(self.qty) * self.entry + abs(signed) * price) / abs(new)
        else:
            entry = self.entry
        fee = qty * price * fee_rate
        self.qty, self.entry = new, entry
        self.wallet += realised - fee
        o["cumQuote"] += qty * price
        o["executedQty"] += qty
        o["updateTime"] = int(time.time() * 1000)
        full = o["executedQty"] >= o["origQty"] - 1e-12
        o["status"] = "FILLED" if full else "PARTIALLY_FILLED"
        self.next_id += 1
        trade = {"symbol": "ETHUSDT", "id": self.next_id, "orderId": o["orderId"],
                 "side": o["side"], "price": _num(price, 2), "qty": _num(qty, 3),
                 "realizedPnl": _num(realised), "quoteQty": _num(qty * price),
                 "commission": _num(fee), "commissionAsset": "USDT", "time": o["updateTime"],
                 "positionSide": "BOTH", "maker": o["type"] == "LIMIT", "buyer": o["side"] == "BUY"}
        self.fills.append(trade)
        self._event(o, "TRADE", qty, price, fee, trade_id=self.next_id)

    def _set_status(self, o: dict[str, Any], status: str, exec_type: str) -> None:
        o["status"] = status
        o["updateTime"] = int(time.time() * 1000)
        self._event(o, exec_type, 0.0, 0.0, 0.0)

    def _event(self, o: dict[str, Any], exec_type: str, last_qty: float, last_price: float,
               fee: float, trade_id: int = 0) -> None:
        avg = o["cumQuote"] / o["executedQty"] if o["executedQty"] else 0.0
        now = int(time.time() * 1000)
        self._push_private({"e": "ORDER_TRADE_UPDATE", "E": now, "T": now, "o": {
            "s": "ETHUSDT", "c": o["clientOrderId"], "S": o["side"], "o": o["type"], "f": "GTC",
            "q": _num(o["origQty"], 3), "p": _num(o["price"], 2), "ap": _num(avg, 5), "sp": "0",
            "x": exec_type, "X": o["status"], "i": o["orderId"], "l": _num(last_qty, 3),
            "z": _num(o["executedQty"], 3), "L": _num(last_price, 2), "N": "USDT",
            "n": _num(fee), "T": o["updateTime"], "t": trade_id, "b": "0", "a": "0",
            "m": o["type"] == "LIMIT", "R": o["reduceOnly"], "wt": "CONTRACT_PRICE",
            "ot": o["type"], "ps": "BOTH", "cp": False, "rp": "0", "pP": False, "si": 0,
            "ss": 0}})

    def _order_json(self, o: dict[str, Any]) -> dict[str, Any]:
        avg = o["cumQuote"] / o["executedQty"] if o["executedQty"] else 0.0
        return {"orderId": o["orderId"], "symbol": "ETHUSDT", "status": o["status"],
                "clientOrderId": o["clientOrderId"], "price": _num(o["price"], 2),
                "avgPrice": _num(avg, 5), "origQty": _num(o["origQty"], 3),
                "executedQty": _num(o["executedQty"], 3), "cumQuote": _num(o["cumQuote"]),
                "timeInForce": "GTC", "type": o["type"], "reduceOnly": o["reduceOnly"],
                "closePosition": False, "side": o["side"], "positionSide": "BOTH",
                "stopPrice": "0", "workingType": "CONTRACT_PRICE", "priceProtect": False,
                "origType": o["type"], "time": o["time"], "updateTime": o["updateTime"]}

    def _upnl(self) -> float:
        return self.qty * (self.price - self.entry) if self.qty else 0.0

    def _balance_row(self, now: int) -> dict[str, Any]:
        with self.lock:
            upnl = self._upnl()
            return {"accountAlias": "fake", "asset": "USDT", "balance": _num(self.wallet),
                    "crossWalletBalance": _num(self.wallet), "crossUnPnl": _num(upnl),
                    "availableBalance": _num(self.wallet), "maxWithdrawAmount": _num(self.wallet),
                    "marginAvailable": True, "updateTime": now}

    def _account(self, now: int) -> dict[str, Any]:
        with self.lock:
            upnl = self._upnl()
            w = _num(self.wallet)
            return {"totalWalletBalance": w, "totalUnrealizedProfit": _num(upnl),
                    "totalMarginBalance": _num(self.wallet + upnl), "availableBalance": w,
                    "maxWithdrawAmount": w, "assets": [{
                        "asset": "USDT", "walletBalance": w, "unrealizedProfit": _num(upnl),
                        "marginBalance": _num(self.wallet + upnl), "availableBalance": w,
                        "maxWithdrawAmount": w, "crossWalletBalance": w, "crossUnPnl": "0",
                        "updateTime": now}],
                    "positions": [self._position_row(now, locked=True)]}

    def _position_row(self, now: int, locked: bool = False) -> dict[str, Any]:
        if not locked:
            with self.lock:
                return self._position_row(now, locked=True)
        upnl = self._upnl()
        notional = self.qty * self.price
        margin = abs(self.qty) * self.entry / self.leverage
        return {"symbol": "ETHUSDT", "positionSide": "BOTH", "positionAmt": _num(self.qty, 3),
                "entryPrice": _num(self.entry, 5), "breakEvenPrice": _num(self.entry, 5),
                "markPrice": _num(self.price, 5), "unRealizedProfit": _num(upnl),
                "liquidationPrice": "0", "isolatedMargin": _num(margin),
                "notional": _num(notional), "marginAsset": "USDT",
                "isolatedWallet": _num(margin), "initialMargin": _num(margin),
                "maintMargin": _num(abs(notional) * 0.004), "positionInitialMargin": _num(margin),
                "openOrderInitialMargin": "0", "adl": 0, "bidNotional": "0", "askNotional": "0",
                "leverage": str(self.leverage), "marginType": "isolated", "updateTime": now}

    # ----------------------------------------------------------------------------- WebSocket
    async def _ws_market(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets["market"].add(ws)
        self._subs[ws] = set()
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                m = json.loads(msg.data)
                if m.get("method") == "SUBSCRIBE":
                    self._subs[ws].update(m.get("params", []))
                    await ws.send_str(json.dumps({"result": None, "id": m.get("id")}))
                elif m.get("method") == "UNSUBSCRIBE":
                    self._subs[ws].difference_update(m.get("params", []))
                    await ws.send_str(json.dumps({"result": None, "id": m.get("id")}))
        finally:
            self._sockets["market"].discard(ws)
            self._subs.pop(ws, None)
        return ws

    async def _ws_private(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets["private"].add(ws)
        try:
            async for _ in ws:
                pass
        finally:
            self._sockets["private"].discard(ws)
        return ws

    async def _ws_api(self, request: web.Request) -> web.WebSocketResponse:
        """Binance's WebSocket API: ``order.place``, ``order.cancel``, ``order.status``."""
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets["api"].add(ws)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    asyncio.get_running_loop().create_task(self._ws_api_call(ws, msg.data))
        finally:
            self._sockets["api"].discard(ws)
        return ws

    async def _ws_api_call(self, ws: web.WebSocketResponse, data: str) -> None:
        m = json.loads(data)
        params = {k: str(v).lower() if isinstance(v, bool) else str(v)
                  for k, v in m.get("params", {}).items()}
        method = m.get("method", "")
        with self.lock:
            self.requests.append(("WS", method, {k: v for k, v in params.items()
                                                 if k != "signature"}))
            if params.get("apiKey"):
                self.received_keys.add(params["apiKey"])
        await self._gate()
        payload = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "signature")
        want = hmac.new(self.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if params.get("apiKey") != self.api_key or params.get("signature") != want:
            status, body = 401, {"code": -1022, "msg": "Signature for this request is not valid."}
        elif self._expired(params):
            status, body = 400, {"code": -1021, "msg": "Timestamp for this request is outside "
                                                       "of the recvWindow."}
        elif method == "order.place":
            status, body = self._place(params)
        elif method == "order.cancel":
            status, body = self._cancel(params)
        elif method == "order.status":
            status, body = self._fetch(params)
        else:
            status, body = 400, {"code": -1, "msg": f"unknown method {method}"}
        if status == -1:
            return
        reply: dict[str, Any] = {"id": m.get("id"), "status": status}
        if status == 200:
            reply["result"] = body
        else:
            reply["error"] = body
        if not ws.closed:
            await ws.send_str(json.dumps(reply))
