"""The ``Broker`` protocol: all the trader knows of where its orders go.

Two brokers satisfy it: :class:`~marketsim.live.paper.PaperBroker` (the default; fills with the
futures environment's own kernel) and :class:`~marketsim.live.exchange.CcxtBroker` (an exchange
through ccxt, REST and WebSocket). A broker trades one symbol. Its coroutines may be slow or
hang (an exchange); the trader calls them from their own tasks, under timeouts, and never on
the path of a decision. Its synchronous methods do no I/O.
"""

from __future__ import annotations

import asyncio
from typing import Protocol, runtime_checkable

from marketsim.live.orders import Account, Bar, OrderRequest, OrderUpdate

__all__ = ["Broker"]


# --8<-- [start:broker-protocol]
@runtime_checkable
class Broker(Protocol):
    """Place and cancel orders, report the account, stream order and fill events."""

    name: str
    """"paper" or the exchange id."""
    events: asyncio.Queue[OrderUpdate]
    """Order and fill events as they arrive (the exchange's order stream, or the paper fills)."""

    async def start(self) -> None:
        """Connect: load markets, start the streams. Called once, before anything else."""

    async def close(self) -> None:
        """Stop the streams and release connections."""

    async def place(self, request: OrderRequest) -> OrderUpdate:
        """Send an order; returns the exchange's acknowledgement. Raises OrderRejected,
        DuplicateOrder (the client id exists: the order was sent before) or
        ExchangeUnavailable (no answer: the outcome is unknown)."""

    async def cancel(self, client_id: str) -> OrderUpdate:
        """Cancel an open order; returns its state after the cancel. Raises OrderNotFound
        (it is not open: filled, cancelled or never placed) or ExchangeUnavailable."""

    async def fetch_order(self, client_id: str) -> OrderUpdate | None:
        """The exchange's state of an order; None if the exchange never had it."""

    async def open_orders(self) -> list[OrderUpdate]:
        """Every open order of the symbol, ours or not."""

    async def fetch_account(self) -> Account:
        """Ask the exchange for the position and balance (reconciliation)."""

    async def set_leverage(self, leverage: float) -> float:
        """Set the symbol's leverage; returns the leverage in force (an exchange rounds)."""

    def account(self) -> Account:
        """The account as last known, marked at the last price seen; no I/O."""

    def on_bar(self, bar: Bar) -> None:
        """A closed bar of market data: the paper broker fills resting orders, charges
        funding, checks liquidation and marks with it; an exchange broker marks with it."""
# --8<-- [end:broker-protocol]
