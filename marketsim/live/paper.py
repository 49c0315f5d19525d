"""``PaperBroker``: paper trading with the futures environment's own kernel.

The account *is* a one-environment kernel state (:class:`marketsim.futures.kernel.State`), and
every change to it is a :func:`marketsim.futures.kernel.step`:

* a fill is a step into a bar in which no time passes (close = high = low = the fill price, no
  funding): the kernel books the trade, its fee (1), slippage (2), entry, margin and
  liquidation price (4)-(6), and shrinks an order whose margin does not fit (19);
* a closed bar is a step with no trade into that bar: liquidation against its low or high (7),
  funding for the events since the last close (3), mark to its close (10).

The environment's step does both at once (trade at the close of bar t, then bar t+1); here they
are two steps with the same arithmetic, so a paper account that trades at the closes the
environment trades at holds the environment's numbers (``tests/live/test_paper.py`` checks it bar
by bar). A market order fills at the last close (or the last price given to :meth:`on_price`)
with the taker fee and slippage; a limit order rests until a bar trades through its price
(strictly, no queue, no partial fills: the environment's rule) and fills at its price with the
maker fee and no slippage. Fees, slippage and funding rates are the run's
:class:`~marketsim.futures.config.FuturesConfig` fields, set in one place for both.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections.abc import Callable

from marketsim.futures import interface
from marketsim.futures.config import FuturesConfig
from marketsim.futures.kernel import STATE_FIELDS, KernelParams, State, step
from marketsim.futures.ops import ScalarOps
from marketsim.live.bars import BarWindow
from marketsim.live.orders import (
    Account,
    Bar,
    DuplicateOrder,
    OrderNotFound,
    OrderRejected,
    OrderRequest,
    OrderUpdate,
)
from marketsim.live.sizing import TwoRows, account_of, kernel_params

__all__ = ["PaperBroker"]

MIN_FRACTION = 1e-9
"""The paper kernel's ``min_trade_fraction``: a bar step whose scratch target differs from the
position by rounding only trades nothing; any real order is far above it."""


def _copy(state: State) -> State:
    out = State.scalar()
    for name in STATE_FIELDS:
        setattr(out, name, getattr(state, name))
    return out


class PaperBroker:
    """The default broker: fills from live or replayed bars with the environment's rules.

    Args:
        cfg: the run's futures configuration: fees, slippage, funding, brackets, initial equity
            and the default leverage (``max_leverage``).
        bar_ms: bar length of the feed, in milliseconds.
        window: a :class:`BarWindow` to share with the trader (one computation of the features
            per bar); a new one by default.
        latency: seconds before an order or cancel reaches the paper exchange: a number, or
            (lo, hi) for a uniform draw.
        seed: seed of the latency draws.
        clock: the time source of event timestamps.
    """

    name = "paper"

    def __init__(self, cfg: FuturesConfig, bar_ms: int, window: BarWindow | None = None,
                 latency: float | tuple[float, float] = 0.0, seed: int = 0,
                 clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.window = window if window is not None else BarWindow(cfg, bar_ms)
        lo, hi = (latency, latency) if isinstance(latency, (int, float)) else latency
        if not 0.0 <= lo <= hi:
            raise ValueError(f"latency: expected seconds >= 0 (or lo <= hi), got {latency!r}")
        self._latency = (float(lo), float(hi))
        self._rng = random.Random(seed)
        self._clock = clock
        self.events: asyncio.Queue[OrderUpdate] = asyncio.Queue()
        self.leverage = cfg.max_leverage
        self._params: dict[tuple[str, float], KernelParams] = {}
        self._state = State.scalar()
        interface.reset_state_scalar(self._state, 0, 0.0, self._kernel("market"))
        self._ref: tuple[float, ...] | None = None
        self._orders: dict[str, OrderUpdate] = {}
        self._resting: dict[str, OrderRequest] = {}

    # ------------------------------------------------------------------------- the kernel
    def _kernel(self, kind: str) -> KernelParams:
        """Kernel constants: the run's costs at the current leverage; a limit fill is a
        market fill at the limit price with the maker fee and no spread or impact."""
        key = (kind, self.leverage)
        if key not in self._params:
            cfg = dataclasses.replace(
                self.cfg, sizing="leverage", max_leverage=self.leverage, order_type="market",
                min_trade_fraction=MIN_FRACTION, episode_length=None, drawdown_coef=0.0,
                turnover_coef=0.0)
            if kind == "limit":
                cfg = dataclasses.replace(cfg, taker_fee=self.cfg.maker_fee, half_spread=0.0,
                                          impact_coef=0.0)
            self._params[key] = kernel_params(cfg)
        return self._params[key]

    def _fraction(self, target: float, price: float, params: KernelParams) -> float:
        """The action whose kernel target (eq. (8), leverage sizing) is ``target`` units."""
        equity = self._state.equity
        if equity == 0.0:
            equity = 1e-300
        return target * price / (params.cfg.max_leverage * equity)

    # --8<-- [start:paper-fill]
    def _fill(self, signed_qty: float, price: float, kind: str) -> tuple[float, State] | None:
        """Trade ``signed_qty`` at ``price`` as one kernel step into a bar where no time
        passes. Returns (units traded, new state), or None if the kernel shrank the order
        (its margin and costs do not fit, eq. (19)): the order is refused, the state kept."""
        assert self._ref is not None
        _, _, _, sigma, mean_volume, _ = self._ref
        params = self._kernel(kind)
        now = (price, price, price, sigma, mean_volume, 0.0)
        trial = _copy(self._state)
        trial.t = 0
        target = trial.qty + signed_qty
        step(ScalarOps, trial, TwoRows(now, now), params, self._fraction(target, price, params))
        traded = float(trial.trade_qty)
        if abs(traded - signed_qty) > 1e-9 * abs(signed_qty):
            return None
        return traded, trial

    def _hold(self, row: tuple[float, ...]) -> None:
        """Step into a closed bar without trading: liquidation (7), funding (3), mark (10)."""
        assert self._ref is not None
        s = self._state
        params = self._kernel("market")
        _, _, _, sigma, mean_volume, _ = self._ref
        now = (s.price, s.price, s.price, sigma, mean_volume, 0.0)
        qty, liq_price = s.qty, s.liq_price
        s.t = 0
        step(ScalarOps, s, TwoRows(now, row), params, self._fraction(qty, s.price, params))
        if s.liquidated:
            self._emit(OrderUpdate(f"liquidation-{self.window.last.open_ms}", "filled",
                                   filled=abs(qty), avg_price=liq_price, last_qty=abs(qty),
                                   last_price=liq_price, time=self._clock(),
                                   reason="liquidated: the bar traded through the liquidation "
                                          "price"))
    # --8<-- [end:paper-fill]

    # ------------------------------------------------------------------------ market data
    def on_bar(self, bar: Bar) -> None:
        """A closed bar: fill resting limit orders it trades through, then step into it."""
        self.window.push(bar)
        if not self.window.warm:
            return
        row = self.window.row()
        if self._ref is None:
            self._ref = row
            self._state.price = row[0]
            return
        for cid, req in list(self._resting.items()):
            crossed = bar.low < req.price if req.side == "buy" else bar.high > req.price
            if crossed:
                del self._resting[cid]
                self._execute(req, req.price, "limit")
        self._hold(row)
        self._ref = row

    def on_price(self, price: float) -> None:
        """The last traded price (a trade or ticker stream): market orders fill at it."""
        if self._ref is not None and price > 0:
            self._ref = (float(price),) + self._ref[1:]

    # ---------------------------------------------------------------------------- orders
    async def _wait(self) -> None:
        lo, hi = self._latency
        if hi > 0:
            await asyncio.sleep(self._rng.uniform(lo, hi))

    def _emit(self, update: OrderUpdate) -> None:
        self.events.put_nowait(update)

    def _execute(self, req: OrderRequest, price: float, kind: str) -> OrderUpdate:
        """Fill ``req`` completely at ``price``; the update (filled or rejected) is emitted."""
        s = self._state
        qty = req.signed_qty
        if req.reduce_only:
            if s.qty == 0.0 or s.qty * qty > 0:
                return self._reject(req, "reduce-only order would not reduce the position")
            qty = max(-abs(s.qty), min(abs(s.qty), qty))
        result = self._fill(qty, price, kind)
        if result is None:
            return self._reject(req, "margin is insufficient for this order (eq. (19))")
        traded, new = result
        fee = (new.fees_long + new.fees_short) - (s.fees_long + s.fees_short)
        slip = (new.slippage_long + new.slippage_short) - (s.slippage_long + s.slippage_short)
        self._state = new
        update = OrderUpdate(req.client_id, "filled", filled=abs(traded), avg_price=price,
                             fee=fee, last_qty=abs(traded), last_price=price,
                             time=self._clock(), extra={"slippage": slip})
        self._orders[req.client_id] = update
        self._emit(update)
        return update

    def _reject(self, req: OrderRequest, reason: str) -> OrderUpdate:
        update = OrderUpdate(req.client_id, "rejected", time=self._clock(), reason=reason)
        self._orders[req.client_id] = update
        self._emit(update)
        return update

    async def place(self, request: OrderRequest) -> OrderUpdate:
        """Fill a market order at the last price; rest a limit order (a limit order that is
        already through the last price fills at once, as a taker, at the last price)."""
        await self._wait()
        if request.client_id in self._orders:
            raise DuplicateOrder(f"paper broker: client order id {request.client_id} exists")
        if self._ref is None:
            raise OrderRejected(f"paper broker: order {request.client_id}: no market data yet "
                                f"(needs {self.window.need} bars before the first fill)")
        last = self._ref[0]
        marketable = request.type == "limit" and (
            request.price > last if request.side == "buy" else request.price < last)
        if request.type == "market" or marketable:
            update = self._execute(request, last, "market")
            if update.status == "rejected":
                raise OrderRejected(f"paper broker: order {request.client_id}: {update.reason}")
            return dataclasses.replace(update)
        update = OrderUpdate(request.client_id, "open", time=self._clock())
        self._orders[request.client_id] = update
        self._resting[request.client_id] = request
        self._emit(update)
        return dataclasses.replace(update)

    async def cancel(self, client_id: str) -> OrderUpdate:
        """Cancel a resting limit order; OrderNotFound if it is not open."""
        await self._wait()
        if client_id not in self._resting:
            raise OrderNotFound(f"paper broker: order {client_id} is not open")
        del self._resting[client_id]
        update = OrderUpdate(client_id, "cancelled", time=self._clock())
        self._orders[client_id] = update
        self._emit(update)
        return dataclasses.replace(update)

    async def fetch_order(self, client_id: str) -> OrderUpdate | None:
        """The order's last state, None if this broker never had it."""
        update = self._orders.get(client_id)
        return None if update is None else dataclasses.replace(update)

    async def open_orders(self) -> list[OrderUpdate]:
        """The resting limit orders."""
        return [dataclasses.replace(self._orders[cid]) for cid in self._resting]

    async def fetch_account(self) -> Account:
        """The kernel state as an :class:`Account` (no exchange to ask)."""
        return self.account()

    async def set_leverage(self, leverage: float) -> float:
        """The leverage of the next trades (any positive number: paper has no integer rule)."""
        if not leverage > 0:
            raise ValueError(f"leverage: expected a number > 0, got {leverage!r}")
        self.leverage = float(leverage)
        return self.leverage

    def account(self) -> Account:
        """The kernel state: position, entry, margin, wallet, equity marked at the last close."""
        return account_of(self._state)

    @property
    def state(self) -> State:
        """A copy of the kernel state (every book: fees, funding, slippage, realised PnL)."""
        return _copy(self._state)

    async def start(self) -> None:
        """Nothing to connect."""

    async def close(self) -> None:
        """Nothing to release."""
