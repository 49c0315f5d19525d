"""A tiny Binance look-alike on 127.0.0.1 for testing the real ccxt client offline.

It answers ``exchangeInfo`` (spot, USDT-M and an empty COIN-M), ``klines``, ``fundingRate`` and
``depth`` in Binance's recorded JSON format, from a deterministic synthetic price path, and can be
told to fail: a script of failures (``429``, ``500``, ``"timeout"``, ``400``) consumed one per
request of a given path, or an outage (``outage = [500, 429, "timeout"]``: every request fails,
cycling through the list, until ``outage`` is None again). ``last_ms`` may be moved while it
serves (new bars appear), and every request's path, query and headers are recorded.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

MINUTE_MS = 60_000


def _spot_symbol(symbol: str, base: str, quote: str) -> dict:
    """One spot entry of /api/v3/exchangeInfo (the fields ccxt reads)."""
    return {
        "symbol": symbol,
        "status": "TRADING",
        "baseAsset": base,
        "baseAssetPrecision": 8,
        "quoteAsset": quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "orderTypes": ["LIMIT", "MARKET"],
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": True,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": "0.01",
                "maxPrice": "1000000.00",
                "tickSize": "0.01",
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": "0.0001",
                "maxQty": "100000.0",
                "stepSize": "0.0001",
            },
        ],
        "permissions": ["SPOT"],
        "permissionSets": [["SPOT"]],
    }


def _perp_symbol(symbol: str, base: str, quote: str) -> dict:
    """One USDT-M perpetual entry of /fapi/v1/exchangeInfo."""
    return {
        "symbol": symbol,
        "pair": symbol,
        "contractType": "PERPETUAL",
        "deliveryDate": 4133404800000,
        "onboardDate": 1569398400000,
        "status": "TRADING",
        "baseAsset": base,
        "quoteAsset": quote,
        "marginAsset": quote,
        "pricePrecision": 2,
        "quantityPrecision": 3,
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "underlyingType": "COIN",
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": "0.01",
                "maxPrice": "100000",
                "tickSize": "0.01",
            },
            {"filterType": "LOT_SIZE", "minQty": "0.001", "maxQty": "10000", "stepSize": "0.001"},
        ],
        "orderTypes": ["LIMIT", "MARKET"],
        "timeInForce": ["GTC"],
    }


def price(t_ms: int) -> float:
    """Deterministic close price of the bar opening at ``t_ms``."""
    k = t_ms // MINUTE_MS
    return 2000.0 + (k % 97) * 0.5 - (k % 13) * 0.25


class FakeBinance:
    """Start with ``with FakeBinance(...) as fb:``; ``fb.base`` is ``http://127.0.0.1:<port>``.

    Args:
        first_ms / last_ms: the range of 1-minute klines that exist (inclusive).
        max_limit: the most klines one response holds (Binance: 1000).
        failures: ``{path: [429, 500, "timeout", 400, ...]}`` consumed one per request.
        timeout_sleep: seconds a "timeout" response sleeps before answering.
    """

    def __init__(
        self,
        first_ms: int,
        last_ms: int,
        max_limit: int = 1000,
        failures: dict[str, list] | None = None,
        timeout_sleep: float = 1.0,
    ) -> None:
        self.first_ms, self.last_ms, self.max_limit = first_ms, last_ms, max_limit
        self.failures = {k: list(v) for k, v in (failures or {}).items()}
        self.timeout_sleep = timeout_sleep
        self.requests: list[tuple[str, dict]] = []
        self.headers: list[dict[str, str]] = []
        self.outage: list | None = None
        self.failed = 0
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            """Routes GET requests to the owner."""

            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                """Answer one request."""
                owner._handle(self)

            def log_message(self, *args) -> None:  # silence
                """Do not log."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeBinance:
        """Start serving."""
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()

    def count(self, path: str) -> int:
        """How many requests hit ``path``."""
        return sum(1 for p, _ in self.requests if p == path)

    def _send(self, handler: BaseHTTPRequestHandler, status: int, body) -> None:
        data = json.dumps(body).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlparse(handler.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        with self.lock:
            self.requests.append((url.path, q))
            self.headers.append({k.lower(): v for k, v in handler.headers.items()})
            script = self.failures.get(url.path)
            failure = script.pop(0) if script else None
            if self.outage:
                failure = self.outage[self.failed % len(self.outage)]
            if failure is not None:
                self.failed += 1
        if failure == "timeout":
            time.sleep(self.timeout_sleep)
        elif failure == 429:
            return self._send(handler, 429, {"code": -1003, "msg": "Too many requests."})
        elif failure == 500:
            return self._send(handler, 500, {"code": -1000, "msg": "Internal error."})
        elif failure == 400:
            return self._send(handler, 400, {"code": -1121, "msg": "Invalid symbol."})
        if url.path == "/api/v3/exchangeInfo":
            body = {
                "timezone": "UTC",
                "serverTime": int(time.time() * 1000),
                "rateLimits": [],
                "symbols": [
                    _spot_symbol("ETHUSDT", "ETH", "USDT"),
                    _spot_symbol("BTCUSDT", "BTC", "USDT"),
                ],
            }
            return self._send(handler, 200, body)
        if url.path == "/fapi/v1/exchangeInfo":
            body = {
                "timezone": "UTC",
                "serverTime": int(time.time() * 1000),
                "rateLimits": [],
                "assets": [],
                "symbols": [_perp_symbol("ETHUSDT", "ETH", "USDT")],
            }
            return self._send(handler, 200, body)
        if url.path == "/dapi/v1/exchangeInfo":
            body = {"timezone": "UTC", "serverTime": int(time.time() * 1000), "rateLimits": [],
                    "symbols": []}
            return self._send(handler, 200, body)
        if url.path == "/api/v3/klines":
            return self._send(handler, 200, self._klines(q))
        if url.path == "/fapi/v1/fundingRate":
            return self._send(handler, 200, self._funding(q))
        if url.path == "/api/v3/depth":
            return self._send(handler, 200, self._depth(q))
        return self._send(handler, 404, {"code": -1, "msg": f"no route {url.path}"})

    def _klines(self, q: dict) -> list:
        start = int(q.get("startTime", self.first_ms))
        limit = min(int(q.get("limit", 500)), self.max_limit)
        t = max(start, self.first_ms)
        t = -(-t // MINUTE_MS) * MINUTE_MS
        out = []
        while t <= self.last_ms and len(out) < limit:
            c = price(t)
            o = price(t - MINUTE_MS)
            out.append(
                [
                    t,
                    f"{o:.2f}",
                    f"{max(o, c) + 0.5:.2f}",
                    f"{min(o, c) - 0.5:.2f}",
                    f"{c:.2f}",
                    "12.5000",
                    t + MINUTE_MS - 1,
                    "25000.0",
                    42,
                    "6.0",
                    "12000.0",
                    "0",
                ]
            )
            t += MINUTE_MS
        return out

    def _funding(self, q: dict) -> list:
        start = int(q.get("startTime", self.first_ms))
        limit = min(int(q.get("limit", 100)), 100)
        step = 8 * 3600 * 1000
        t = -(-max(start, self.first_ms) // step) * step
        out = []
        while t <= self.last_ms and len(out) < limit:
            out.append(
                {
                    "symbol": "ETHUSDT",
                    "fundingTime": t,
                    "fundingRate": f"{0.0001 * (1 + (t // step) % 3):.8f}",
                    "markPrice": "2000.00",
                }
            )
            t += step
        return out

    def _depth(self, q: dict) -> dict:
        n = int(q.get("limit", 100))
        return {
            "lastUpdateId": 1027024,
            "bids": [[f"{2000 - 0.01 * (i + 1):.2f}", f"{1 + i:.4f}"] for i in range(n)],
            "asks": [[f"{2000 + 0.01 * (i + 1):.2f}", f"{2 + i:.4f}"] for i in range(n)],
        }


def point_binance_at(exchange, base: str) -> None:
    """Redirect every Binance REST url of a ccxt exchange to the local ``base``."""
    for key, url in list(exchange.urls["api"].items()):
        if isinstance(url, str):
            path = urlparse(url).path
            exchange.urls["api"][key] = base + path
