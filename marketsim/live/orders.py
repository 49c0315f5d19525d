"""What brokers and the trader exchange: bars, order requests, order updates, the account.

Plain data, no I/O. Every field is in the quote currency (money, prices) or in units of the base
asset (quantities); times are seconds since the epoch (``time.time()``), except bar open times,
which are milliseconds as exchanges give them.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

__all__ = ["Bar", "OrderRequest", "OrderUpdate", "Account", "BrokerError", "OrderRejected",
           "OrderNotFound", "DuplicateOrder", "ExchangeUnavailable", "OPEN", "TERMINAL",
           "client_order_id"]

OPEN = frozenset({"new", "open", "partially_filled"})
"""Statuses of an order that may still fill."""
TERMINAL = frozenset({"filled", "cancelled", "rejected", "expired", "not_placed"})
"""Statuses after which nothing more happens to an order. ``not_placed``: the exchange never
received it (found out by reconciliation)."""
_STATUSES = OPEN | TERMINAL | {"pending", "unknown"}
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:/-]{1,36}$")


class Bar(NamedTuple):
    """One closed candle: open time (ms since the epoch) and OHLCV."""

    open_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: float


class BrokerError(Exception):
    """A broker could not do what was asked; the message says what and why."""


class OrderRejected(BrokerError):
    """The exchange (or the paper broker) refused the order; it does not exist there."""


class OrderNotFound(BrokerError):
    """The exchange does not know this client order id."""


class DuplicateOrder(BrokerError):
    """The client order id was used before: the order exists (a retry of a sent order)."""


class ExchangeUnavailable(BrokerError):
    """No answer (timeout, network error, exchange down): the outcome is unknown."""


def client_order_id(prefix: str, bar_open_ms: int, seq: int) -> str:
    """Deterministic id ``<prefix>-<bar open ms>-<seq>``: the same decision always gets the
    same id, so a retry or a restart can never place it twice (exchanges reject a duplicate)."""
    cid = f"{prefix}-{int(bar_open_ms)}-{int(seq)}"
    if not _CLIENT_ID.match(cid):
        raise ValueError(f"client order id {cid!r}: expected 1-36 characters of "
                         "letters, digits and ._:/- (shorten the prefix)")
    return cid


def _positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value <= 0:
        raise ValueError(f"{name}: expected a finite number > 0, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class OrderRequest:
    """An order to send: ``qty`` units, ``side`` buy or sell, market or limit at ``price``."""

    client_id: str
    """The idempotency key: the exchange refuses a second order with the same id."""
    side: str
    """"buy" or "sell"."""
    qty: float
    """Units of the base asset, > 0."""
    type: str = "market"
    """"market" or "limit"."""
    price: float | None = None
    """Limit price (required for a limit order, ignored for a market order)."""
    reduce_only: bool = False
    """The order may only shrink the position (the exchange caps or refuses it otherwise)."""

    def __post_init__(self) -> None:
        """Check every field; ValueError names the field and the bad value."""
        if not isinstance(self.client_id, str) or not _CLIENT_ID.match(self.client_id):
            raise ValueError(f"client_id: expected 1-36 characters of letters, digits and "
                             f"._:/-, got {self.client_id!r}")
        if self.side not in ("buy", "sell"):
            raise ValueError(f"side: expected 'buy' or 'sell', got {self.side!r}")
        object.__setattr__(self, "qty", _positive("qty", self.qty))
        if self.type not in ("market", "limit"):
            raise ValueError(f"type: expected 'market' or 'limit', got {self.type!r}")
        if self.type == "limit":
            object.__setattr__(self, "price", _positive("price", self.price))

    @property
    def signed_qty(self) -> float:
        """+qty for a buy, -qty for a sell."""
        return self.qty if self.side == "buy" else -self.qty


@dataclass
class OrderUpdate:
    """What a broker knows of one order: an acknowledgement, a stream event, a fetch result."""

    client_id: str
    status: str
    """One of new, open, partially_filled, filled, cancelled, rejected, expired (exchange
    states), or not_placed (the exchange never got it)."""
    filled: float = 0.0
    """Units filled so far (cumulative)."""
    avg_price: float = 0.0
    """Average fill price so far (0 before any fill)."""
    fee: float = 0.0
    """Fees paid so far, quote currency (cumulative, as far as the broker knows)."""
    last_qty: float = 0.0
    """Units of the fill this update reports (0 if it reports no fill)."""
    last_price: float = 0.0
    """Price of that fill."""
    exchange_id: str | None = None
    """The exchange's own order id."""
    time: float = 0.0
    """When the broker learned it (seconds since the epoch)."""
    reason: str = ""
    """Why, for a rejection or a broker-made event (a liquidation)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Broker-specific numbers (the paper broker's slippage and funding books)."""

    def __post_init__(self) -> None:
        """Reject an unknown status (a broker bug, not a user's input)."""
        if self.status not in _STATUSES:
            raise ValueError(f"status: expected one of {sorted(_STATUSES)}, got {self.status!r}")

    @property
    def terminal(self) -> bool:
        """Nothing more will happen to the order."""
        return self.status in TERMINAL

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class Account:
    """The account as the trader sees it for one symbol, marked at ``price``.

    ``equity = wallet + upnl``; ``upnl = qty (price - entry)``. For the paper broker these are
    the futures kernel's own state fields; for an exchange, what it last reported.
    """

    qty: float
    """Signed position (units; long > 0)."""
    entry: float
    """Average entry price (0 when flat)."""
    leverage: float
    """Isolated leverage of the position (the symbol's setting on an exchange)."""
    margin: float
    """Isolated margin of the position."""
    wallet: float
    """Wallet balance: equity without the unrealised PnL."""
    price: float
    """Mark price these numbers are valued at."""
    upnl: float
    """Unrealised PnL at ``price``."""
    equity: float
    """wallet + upnl."""
    margin_ratio: float = 0.0
    """Maintenance margin / (margin + upnl); 1 means liquidation."""
    liq_price: float = 0.0
    """Liquidation price (0 when flat or unknown)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)
