"""The trader loop: on every closed bar, decide from the training observation; send orders in
their own tasks; cancel what does not fill in time; reconcile what is unknown.

One asyncio loop, several tasks:

* **the bar loop** (:meth:`Trader.run`): for each closed bar, the observation the environment
  would give (:class:`~marketsim.live.bars.BarWindow` and
  :func:`~marketsim.live.sizing.observation`), the policy's action, the environment's trade for
  it (:func:`~marketsim.live.sizing.target_order`), the risk limits, and, if an order is due,
  a new *order task*. It never awaits the exchange: the account it reads is the broker's last
  known one, so a slow or stalled exchange cannot delay a decision;
* **one order task per order** (``_execute``): journal, send, wait for a fill until
  ``order_timeout`` (or the next bar), cancel, and when an answer does not come in time mark
  the order ``unknown`` and reconcile it through the order stream or ``fetch_order``;
* **the event pump**: the broker's order and fill events into the orders' states and the journal;
* **the reconciler**: positions and open orders against the exchange, at start and every
  ``reconcile_every`` seconds; orders of ours still open from before a restart are cancelled.

While an order is unresolved the next decision is journaled but sends nothing (targets are
absolute, so the decision after it corrects whatever the order did). See
docs/guide/live-trading.md.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import os
import time
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from marketsim.futures.config import FuturesConfig
from marketsim.live.bars import BarWindow
from marketsim.live.broker import Broker
from marketsim.live.journal import Journal, percentiles, recover
from marketsim.live.orders import (
    TERMINAL,
    Bar,
    BrokerError,
    DuplicateOrder,
    ExchangeUnavailable,
    OrderNotFound,
    OrderRejected,
    OrderRequest,
    OrderUpdate,
    client_order_id,
)
from marketsim.live.risk import RiskGuard, RiskLimits
from marketsim.live.sizing import action_fraction, kernel_params, observation, target_order

__all__ = ["TraderConfig", "Trader", "OrderRecord", "stacked_decider"]

_NO_ANSWER = (asyncio.TimeoutError, ExchangeUnavailable)
_RANK = {"pending": 0, "unknown": 0, "new": 1, "open": 1, "partially_filled": 2,
         **dict.fromkeys(TERMINAL, 3)}
"""Order statuses only move forward (a late 'open' ack does not undo a fill event)."""


@dataclass(frozen=True)
class TraderConfig:
    """How the trader trades one symbol; every time is in seconds."""

    symbol: str
    """The market traded (as the broker names it)."""
    bar_ms: int
    """Bar length of the feed, in milliseconds."""
    order_timeout: float | None = 0.5
    """An order not filled this long after it was sent is cancelled; None: at the next bar
    (the environment's limit order, which lives for one bar)."""
    place_timeout: float = 2.0
    """An order (or a fetch) with no answer after this is ``unknown`` and reconciled."""
    cancel_timeout: float = 0.4
    """A cancel not confirmed after this is ``unknown`` and reconciled."""
    reconcile_every: float = 30.0
    """Seconds between reconciliations of the account and open orders with the exchange."""
    reconcile_tries: int = 6
    """Fetches of an unknown order before it counts as lost (the reconciler goes on trying)."""
    reconcile_backoff: float = 0.05
    """First pause between those fetches (doubling)."""
    stale_after: float = 10.0
    """Seconds after an order was sent when the exchange would refuse it if it arrived only
    now (Binance's ``recvWindow``, which ccxt sets to 10 s): an order the exchange does not know
    is ``not_placed`` only after this, never while its request may still be on its way."""
    client_prefix: str = "rl"
    """Start of every client order id (``<prefix>-<bar open ms>-<n>``)."""
    settle: bool = False
    """Replays: the orders of a bar finish before the next bar is taken (a simulated clock
    never runs ahead of the broker). Never for live bars."""
    stop_on_halt: bool = True
    """Stop the loop once the kill switch has fired (and flattened)."""

    def __post_init__(self) -> None:
        """ValueError naming the field for a bad value."""
        if not isinstance(self.symbol, str) or not self.symbol:
            raise ValueError(f"symbol: expected a market name like ETH/USDT, got {self.symbol!r}")
        if isinstance(self.bar_ms, bool) or not isinstance(self.bar_ms, int) or self.bar_ms <= 0:
            raise ValueError(f"bar_ms: expected a positive integer, got {self.bar_ms!r}")
        for name in ("order_timeout", "place_timeout", "cancel_timeout", "reconcile_every",
                     "reconcile_backoff", "stale_after"):
            value = getattr(self, name)
            if value is None and name == "order_timeout":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name}: expected seconds > 0, got {value!r}")
        if not isinstance(self.reconcile_tries, int) or self.reconcile_tries < 1:
            raise ValueError(f"reconcile_tries: expected an integer >= 1, got "
                             f"{self.reconcile_tries!r}")
        client_order_id(self.client_prefix, 0, 0)  # raises on a bad prefix


@dataclass
class OrderRecord:
    """One order as the trader tracks it, with its timestamps (seconds since the epoch)."""

    request: OrderRequest
    bar_open_ms: int
    decision_close: float
    leverage: float
    good_till_bar: bool = False
    status: str = "pending"
    filled: float = 0.0
    avg_price: float = 0.0
    fee: float = 0.0
    acked: bool = False
    times: dict[str, float] = field(default_factory=dict)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    parked: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once the order waits for the next bar (a good-till-bar order), or is finished."""

    @property
    def terminal(self) -> bool:
        """Nothing more will happen to it."""
        return self.status in TERMINAL


def stacked_decider(decide: Callable[[np.ndarray, dict[str, Any]], Any],
                    frame_stack: int) -> Callable[[np.ndarray], Any]:
    """A ``decide(obs)`` that stacks the last ``frame_stack`` observations as the backtest does
    (the first observation repeated to start) before calling a policy's ``decide(obs, info)``."""
    box: dict[str, Any] = {"stack": None}

    def call(obs: np.ndarray) -> Any:
        if frame_stack <= 1:
            return decide(obs, {})
        if box["stack"] is None:
            box["stack"] = np.repeat(obs[None], frame_stack, 0)
        else:
            box["stack"] = np.concatenate([box["stack"][1:], obs[None]], 0)
        return decide(box["stack"], {})

    return call


async def _stop(tasks: list[asyncio.Task], timeout: float = 5.0) -> None:
    """Cancel ``tasks`` and wait for them, at most ``timeout`` seconds: Python 3.11's
    ``wait_for`` can swallow a cancellation that meets its inner call finishing, so a loop is
    also told to stop by a flag, and nobody waits on it forever."""
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=timeout)


class Trader:
    """Trades one symbol with a policy through a broker; see the module docstring.

    Args:
        decide: the policy, ``decide(observation) -> action`` (no I/O; see
            :func:`stacked_decider`).
        run_cfg: the futures configuration the policy was trained with (window, sizing,
            order type, costs): its observation and its meaning of an action.
        broker: a :class:`~marketsim.live.broker.Broker`.
        journal: the append-only journal (continued after a restart).
        config: a :class:`TraderConfig`.
        limits: risk limits (none by default).
        window: a bar window to share with a paper broker (a new one by default).
        clear_halt: trade again although the journal says the kill switch fired.
        clock: time source (seconds since the epoch).
    """

    def __init__(self, decide: Callable[[np.ndarray], Any], run_cfg: FuturesConfig,
                 broker: Broker, journal: Journal, config: TraderConfig,
                 limits: RiskLimits | None = None, window: BarWindow | None = None,
                 clear_halt: bool = False, clock: Callable[[], float] = time.time) -> None:
        self.decide, self.broker, self.journal, self.cfg = decide, broker, journal, config
        self.run_cfg = dataclasses.replace(run_cfg, episode_length=None)
        self.params = kernel_params(self.run_cfg)
        self.window = window if window is not None else BarWindow(self.run_cfg, config.bar_ms)
        self.limits = limits or RiskLimits()
        self.clock = clock
        rec = recover(journal.read())
        self.recovered = rec
        self.guard = RiskGuard(self.limits, rec.risk)
        self.last_decided: int | None = rec.last_decided_bar
        self.halted: str | None = rec.halted
        if self.halted and clear_halt:
            journal.write("halt_cleared", reason=self.halted)
            self.halted = None
        self.orders: dict[str, OrderRecord] = {}
        self._open: set[str] = set()
        self._tasks: dict[asyncio.Task, OrderRecord | None] = {}
        self._bar_event = asyncio.Event()
        self._leverage: float | None = None
        self.stats: dict[str, int] = {"bars": 0, "decisions": 0, "orders": 0, "fills": 0,
                                      "cancels": 0, "cancel_unknown": 0, "place_unknown": 0,
                                      "reconciled": 0, "lost": 0, "skipped_busy": 0,
                                      "orphans_cancelled": 0}
        self.latency: dict[str, list[float]] = {"decision_ms": [], "bar_to_send_ms": [],
                                                 "timeout_to_cancel_sent_ms": [],
                                                 "timeout_to_cancel_done_ms": [],
                                                 "send_to_ack_ms": []}
        self.first_equity: float | None = None
        self._stopping = False

    # ---------------------------------------------------------------------------- the loop
    async def run(self, feed: AsyncIterable[tuple[Bar, bool]],
                  max_bars: int | None = None) -> dict[str, Any]:
        """Trade every bar of ``feed`` (or ``max_bars`` live bars); returns the summary.

        The broker is closed at the end, and so is the feed if it has an ``aclose``."""
        background: list[asyncio.Task] = []
        try:
            await self.broker.start()
            self.journal.write("start", pid=os.getpid(), broker=self.broker.name,
                               symbol=self.cfg.symbol, config=dataclasses.asdict(self.cfg),
                               limits=self.limits.to_dict(), halted=self.halted,
                               last_decided_bar=self.last_decided)
            await self._recover_orders()
            await self._reconcile(start=True)
            if self.run_cfg.sizing == "leverage":  # one leverage for every order: set it now,
                await self._set_leverage(self.run_cfg.max_leverage)  # not on the order's path
            background = [asyncio.create_task(self._pump()),
                          asyncio.create_task(self._periodic_reconcile())]
            live_bars = 0
            if not (self.halted and self.cfg.stop_on_halt):
                async for bar, live in feed:
                    await self.on_bar(bar, live)
                    live_bars += bool(live)
                    if self.halted and self.cfg.stop_on_halt:
                        break
                    if max_bars is not None and live_bars >= max_bars:
                        break
            await self._drain()
        finally:
            self._stopping = True
            await _stop(background)
            self._drain_events()
            await self._cancel_tasks()
            await self.broker.close()
            closer = getattr(feed, "aclose", None)
            if closer is not None:
                await closer()
            summary = self.summary()
            self.journal.write("stop", summary=summary)
        return summary

    async def on_bar(self, bar: Bar, live: bool = True) -> None:
        """One closed bar: market data to the broker, then (when live and warm) a decision."""
        t_recv = self.clock()
        if self.cfg.settle:
            await self._settle(waiting_bar=False)
        self.broker.on_bar(bar)
        try:
            self.window.push(bar)
        except ValueError as e:  # a gap the feed could not fill: start the features again
            self.journal.write("gap", bar_open_ms=bar.open_ms, reason=str(e))
            self.window.reset()
            self.window.push(bar)
        self.stats["bars"] += 1
        self._drain_events()
        self._bar_event.set()
        self._bar_event = asyncio.Event()
        if self.cfg.settle:
            await self._settle(waiting_bar=True)
        if not live or not self.window.warm:
            return
        if self.last_decided is not None and bar.open_ms <= self.last_decided:
            return  # decided before a restart
        self._decide(bar, t_recv)

    # --8<-- [start:decide]
    def _decide(self, bar: Bar, t_recv: float) -> None:
        """Decide on a closed bar and start an order task if a trade is due (no await)."""
        close_s = (bar.open_ms + self.cfg.bar_ms) / 1000.0
        account = self.broker.account()  # the last known account: no I/O
        if self.first_equity is None:
            self.first_equity = account.equity
        breach = self.guard.breach(account.equity, close_s)
        if breach and not self.halted:
            self._halt(breach, bar)
        if self.halted:
            self.last_decided = bar.open_ms
            return
        obs = observation(self.window.static_observation(), account, self.params)
        action = self.decide(obs)
        t_decision = self.clock()
        fraction = action_fraction(action, self.run_cfg)
        tgt = target_order(account, fraction, self.window.row(), self.params)
        target, note = self.guard.clamp(account.qty, tgt.target, bar.close, account.equity)
        delta = target - account.qty if note else tgt.delta
        busy = self._busy()
        self.latency["decision_ms"].append((t_decision - t_recv) * 1000.0)
        self.stats["decisions"] += 1
        self.journal.write(
            "decision", bar_open_ms=bar.open_ms, close=bar.close, t_bar_close=close_s,
            t_recv=t_recv, t_decision=t_decision,
            action=np.asarray(action, dtype=np.float64).reshape(-1).tolist(), fraction=fraction,
            qty=account.qty, equity=account.equity, target=target, delta=delta,
            leverage=tgt.leverage, limit_price=tgt.price, reason=tgt.reason, risk_note=note,
            busy=busy, risk=self.guard.state_dict())
        self.last_decided = bar.open_ms
        if delta == 0.0:
            return
        if busy:
            self.stats["skipped_busy"] += 1
            return
        order_type = "limit" if tgt.price is not None else "market"
        req = OrderRequest(client_order_id(self.cfg.client_prefix, bar.open_ms, 0),
                           "buy" if delta > 0 else "sell", abs(delta), order_type, tgt.price,
                           reduce_only=self.limits.reduce_only)
        rec = OrderRecord(req, bar.open_ms, bar.close, tgt.leverage,
                          good_till_bar=order_type == "limit" and self.cfg.order_timeout is None)
        rec.times.update(t_bar_close=close_s, t_recv=t_recv, t_decision=t_decision)
        self._start_order(rec)
    # --8<-- [end:decide]

    def _busy(self) -> bool:
        """An order of this session is not resolved yet."""
        self._open = {cid for cid in self._open if not self.orders[cid].terminal}
        return bool(self._open)

    def _track(self, rec: OrderRecord) -> None:
        self.orders[rec.request.client_id] = rec
        self._open.add(rec.request.client_id)
        self.stats["orders"] += 1

    def _start_order(self, rec: OrderRecord) -> None:
        """Journal the intent (before anything is sent) and start the order's task."""
        req = rec.request
        self._track(rec)
        self._journal_order(rec, "intent", side=req.side, qty=req.qty, type=req.type,
                            price=req.price, reduce_only=req.reduce_only, leverage=rec.leverage,
                            decision_close=rec.decision_close, bar_open_ms=rec.bar_open_ms)
        self._spawn(self._execute(rec, self._bar_event), rec)

    def _spawn(self, coro: Any, rec: OrderRecord | None = None) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        self._tasks[task] = rec
        task.add_done_callback(lambda t: self._tasks.pop(t, None))
        return task

    # ----------------------------------------------------------------------- order tasks
    # --8<-- [start:execute]
    async def _execute(self, rec: OrderRecord, next_bar: asyncio.Event) -> None:
        """Send, wait for the fill until the timeout (or the next bar), cancel, reconcile."""
        cfg = self.cfg
        try:
            await self._send(rec)
            if rec.terminal:
                return
            if rec.good_till_bar:
                deadline = None
                rec.parked.set()
                waits = [asyncio.ensure_future(rec.done.wait()),
                         asyncio.ensure_future(next_bar.wait())]
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                for w in waits:
                    w.cancel()
            else:
                deadline = rec.times["t_send"] + cfg.order_timeout
                try:
                    await asyncio.wait_for(rec.done.wait(), max(deadline - self.clock(), 0.0))
                except asyncio.TimeoutError:
                    pass
            if rec.terminal:
                return
            rec.times["t_deadline"] = deadline if deadline is not None else self.clock()
            await self._cancel(rec)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a bug must not end the trader silently: journal it
            self._journal_order(rec, "error", reason=f"{type(e).__name__}: {e}")
            rec.status = "unknown" if not rec.terminal else rec.status
        finally:
            rec.parked.set()
    # --8<-- [end:execute]

    async def _set_leverage(self, leverage: float) -> str:
        """Set the symbol's leverage (journaled); '' or why it failed."""
        try:
            got = await asyncio.wait_for(self.broker.set_leverage(leverage),
                                         self.cfg.place_timeout)
        except (*_NO_ANSWER, BrokerError, ValueError) as e:
            self.journal.write("leverage", requested=leverage, error=f"{type(e).__name__}: {e}")
            return f"leverage not set: {type(e).__name__}: {e}"
        self._leverage = leverage
        self.journal.write("leverage", requested=leverage, set=got)
        return ""

    async def _send(self, rec: OrderRecord) -> None:
        cfg, req = self.cfg, rec.request
        if self._leverage != rec.leverage:
            error = await self._set_leverage(rec.leverage)
            if error:
                self._apply(rec, OrderUpdate(req.client_id, "not_placed", time=self.clock(),
                                             reason=error), "not_placed")
                return
        rec.times["t_send"] = self.clock()
        self._journal_order(rec, "sent")
        if "t_recv" in rec.times:
            self.latency["bar_to_send_ms"].append((rec.times["t_send"] - rec.times["t_recv"])
                                                  * 1000.0)
        try:
            update = await asyncio.wait_for(self.broker.place(req), cfg.place_timeout)
        except OrderRejected as e:
            self._apply(rec, OrderUpdate(req.client_id, "rejected", time=self.clock(),
                                         reason=str(e)), "ack")
            return
        except DuplicateOrder:
            await self._reconcile_order(rec)
            return
        except _NO_ANSWER as e:
            self.stats["place_unknown"] += 1
            if not rec.terminal:
                rec.status = "unknown"
            self._journal_order(rec, "place_unknown", reason=f"{type(e).__name__}: {e}")
            await self._reconcile_order(rec)
            return
        rec.times["t_ack"] = self.clock()
        self.latency["send_to_ack_ms"].append((rec.times["t_ack"] - rec.times["t_send"]) * 1000)
        rec.acked = True
        self._apply(rec, update, "ack")

    async def _or_stream(self, coro: Any, rec: OrderRecord, timeout: float) -> OrderUpdate | None:
        """Await a broker call under ``timeout``, or stop early when the order stream has
        finished the order (then None: the stream's event was applied already)."""
        call = asyncio.ensure_future(coro)
        if rec.terminal:
            call.cancel()
            return None
        done = asyncio.ensure_future(rec.done.wait())
        try:
            finished, _ = await asyncio.wait({call, done}, timeout=timeout,
                                             return_when=asyncio.FIRST_COMPLETED)
        finally:
            done.cancel()
        if call in finished:
            return call.result()
        call.cancel()
        call.add_done_callback(lambda f: f.cancelled() or f.exception())
        if rec.terminal:
            return None
        raise asyncio.TimeoutError

    # --8<-- [start:cancel]
    async def _cancel(self, rec: OrderRecord) -> None:
        """Cancel under ``cancel_timeout`` (the order stream's CANCELED event confirms it as
        well as the answer does); no confirmation in time: ``unknown``, then reconcile."""
        cid = rec.request.client_id
        rec.times["t_cancel_sent"] = now = self.clock()
        self.latency["timeout_to_cancel_sent_ms"].append((now - rec.times["t_deadline"]) * 1000)
        self._journal_order(rec, "cancel_sent")
        try:
            update = await self._or_stream(self.broker.cancel(cid), rec, self.cfg.cancel_timeout)
        except OrderNotFound:  # filled, cancelled or never there: ask what became of it
            await self._reconcile_order(rec)
        except _NO_ANSWER as e:
            self.stats["cancel_unknown"] += 1
            if not rec.terminal:
                rec.status = "unknown"
            self._journal_order(rec, "cancel_unknown", reason=f"{type(e).__name__}: {e}")
            await self._reconcile_order(rec, cancel=True)
        else:
            if update is not None:
                self._apply(rec, update, "cancel_ack")
        if rec.terminal:
            rec.times.setdefault("t_cancel_done", self.clock())
            self.latency["timeout_to_cancel_done_ms"].append(
                (rec.times["t_cancel_done"] - rec.times["t_deadline"]) * 1000)
    # --8<-- [end:cancel]

    # --8<-- [start:reconcile-order]
    async def _reconcile_order(self, rec: OrderRecord, cancel: bool = False) -> None:
        """Find out what became of an order: its stream event or ``fetch_order``, a few tries
        with back-off; an order still open that should not be is cancelled again."""
        cfg, cid = self.cfg, rec.request.client_id
        for attempt in range(cfg.reconcile_tries):
            if rec.terminal:
                break
            try:
                update = await self._or_stream(self.broker.fetch_order(cid), rec,
                                               cfg.place_timeout)
            except _NO_ANSWER:
                await asyncio.sleep(cfg.reconcile_backoff * 2**attempt)
                continue
            if rec.terminal:  # the order stream answered first
                break
            if update is None:  # not there: never sent, or its request is still on its way
                wait = rec.times.get("t_send", -math.inf) + cfg.stale_after - self.clock()
                if wait > 0:  # a request that late would be refused: ask once more then
                    await asyncio.sleep(wait)
                    continue
                self._apply(rec, OrderUpdate(cid, "not_placed", time=self.clock(),
                                             reason="the exchange does not know this order"),
                            "reconciled")
                break
            self._apply(rec, update, "reconciled")
            if rec.terminal:
                break
            if cancel or "t_deadline" in rec.times:
                try:
                    update = await asyncio.wait_for(self.broker.cancel(cid), cfg.cancel_timeout)
                    self._apply(rec, update, "reconciled")
                except (*_NO_ANSWER, OrderNotFound):
                    pass
            await asyncio.sleep(cfg.reconcile_backoff * 2**attempt)
        if rec.terminal:
            self.stats["reconciled"] += 1
        else:
            self.stats["lost"] += 1
            self._journal_order(rec, "lost", reason=f"no answer after {cfg.reconcile_tries} "
                                                    "tries; the reconciler goes on")
    # --8<-- [end:reconcile-order]

    def _apply(self, rec: OrderRecord, update: OrderUpdate, event: str) -> None:
        """Fold an update into the order (terminal states stick; fills only grow); journal it."""
        if rec.terminal and update.filled <= rec.filled:
            return
        new_fill = max(update.filled - rec.filled, 0.0)
        if update.filled > rec.filled:
            rec.filled, rec.avg_price = update.filled, update.avg_price or rec.avg_price
            rec.times.setdefault("t_fill", update.time or self.clock())
        rec.fee = max(rec.fee, update.fee)
        if not rec.terminal and _RANK.get(update.status, 0) >= _RANK.get(rec.status, 0):
            rec.status = update.status
        if update.status in ("open", "new", "partially_filled", "filled"):
            rec.acked = True
        if new_fill:
            self.stats["fills"] += 1
        if rec.status == "cancelled" and event in ("cancel_ack", "update", "reconciled"):
            rec.times.setdefault("t_cancel_done", self.clock())
            self.stats["cancels"] += 1
        self._journal_order(rec, event, last_qty=update.last_qty or new_fill,
                            last_price=update.last_price or None, reason=update.reason or None,
                            exchange_id=update.exchange_id)
        if rec.terminal:
            rec.done.set()

    def _journal_order(self, rec: OrderRecord, event: str, **extra: Any) -> None:
        fields = {k: v for k, v in extra.items() if v is not None}
        self.journal.write("order", event=event, client_id=rec.request.client_id,
                           status=rec.status, filled=rec.filled, avg_price=rec.avg_price,
                           fee=rec.fee, **rec.times, **fields)

    # --------------------------------------------------------------------- events, settle
    def _on_event(self, update: OrderUpdate) -> None:
        rec = self.orders.get(update.client_id)
        if rec is None:  # not an order of this session: a liquidation, a foreign order
            self.journal.write("event", **update.to_dict())
            return
        self._apply(rec, update, "update")

    def _drain_events(self) -> None:
        """Apply the events already queued (the pump does the same as they come)."""
        q = self.broker.events
        while not q.empty():
            self._on_event(q.get_nowait())

    async def _pump(self) -> None:
        while not self._stopping:
            self._on_event(await self.broker.events.get())

    async def _settle(self, waiting_bar: bool) -> None:
        """Wait for the running tasks (bounded by their own timeouts); before the bar is
        handed on (``waiting_bar=False``), not for the orders that live until that bar."""
        waits: list[asyncio.Future] = []
        helpers = []
        for task, rec in list(self._tasks.items()):
            if task.done():
                continue
            if not waiting_bar and rec is not None and rec.good_till_bar:
                helpers.append(asyncio.ensure_future(rec.parked.wait()))
                waits.append(helpers[-1])
            else:
                waits.append(task)
        if waits:
            await asyncio.wait(waits, timeout=self._task_bound())
        for h in helpers:
            h.cancel()
        self._drain_events()

    def _task_bound(self) -> float:
        """The longest an order task can run: send, timeout, cancel, reconciliation."""
        c = self.cfg
        tries = sum(c.reconcile_backoff * 2**i + c.place_timeout + c.cancel_timeout
                    for i in range(c.reconcile_tries))
        return 2 * c.place_timeout + (c.order_timeout or 0.0) + c.cancel_timeout + tries

    async def _drain(self) -> None:
        """At the end: let running order tasks finish; good-till-bar orders are cancelled."""
        self._bar_event.set()
        tasks = [t for t in self._tasks if not t.done()]
        if tasks:
            await asyncio.wait(tasks, timeout=self._task_bound())
        self._drain_events()

    async def _cancel_tasks(self) -> None:
        await _stop([t for t in self._tasks if not t.done()])

    # --------------------------------------------------------------------- reconciliation
    async def _recover_orders(self) -> None:
        """Orders the journal left unresolved (a killed trader): ask the exchange about each;
        one still open is cancelled (its decision is stale)."""
        for cid, last in self.recovered.open_orders.items():
            try:
                req = OrderRequest(cid, last.get("side", "buy"), float(last.get("qty") or 1.0),
                                   last.get("type", "market"), last.get("price"))
            except ValueError:
                continue
            rec = OrderRecord(req, int(last.get("bar_open_ms") or 0),
                              float(last.get("decision_close") or 0.0),
                              float(last.get("leverage") or 0.0), status="unknown",
                              filled=float(last.get("filled") or 0.0))
            rec.times["t_deadline"] = self.clock()
            self.orders[cid] = rec
            self._open.add(cid)
            self._journal_order(rec, "recovered")
            await self._reconcile_order(rec, cancel=True)

    async def _reconcile(self, start: bool = False) -> None:
        """Account and open orders from the exchange; cancel our open orders it still has
        that we do not expect (left by a killed session) and resolve unknown ones."""
        cfg = self.cfg
        try:
            account = await asyncio.wait_for(self.broker.fetch_account(), cfg.place_timeout)
            opens = await asyncio.wait_for(self.broker.open_orders(), cfg.place_timeout)
        except (*_NO_ANSWER, BrokerError) as e:
            self.journal.write("reconcile", ok=False, reason=f"{type(e).__name__}: {e}")
            return
        prefix = cfg.client_prefix + "-"
        orphans = [u.client_id for u in opens if u.client_id.startswith(prefix)
                   and (u.client_id not in self.orders or self.orders[u.client_id].terminal)]
        for cid in orphans:
            try:
                await asyncio.wait_for(self.broker.cancel(cid), cfg.cancel_timeout)
                self.stats["orphans_cancelled"] += 1
            except (*_NO_ANSWER, OrderNotFound):
                pass
        busy = {id(rec) for t, rec in self._tasks.items() if rec is not None and not t.done()}
        for rec in self.orders.values():
            if rec.status == "unknown" and id(rec) not in busy:
                self._spawn(self._reconcile_order(rec, cancel=True), rec)
        self.journal.write("reconcile", ok=True, start=start, account=account.to_dict(),
                           open_orders=[u.client_id for u in opens], orphans_cancelled=orphans)

    async def _periodic_reconcile(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.cfg.reconcile_every)
            if not self._stopping:
                await self._reconcile()

    # ------------------------------------------------------------------------ kill switch
    def retire(self, reason: str, bar: Bar) -> None:
        """Stop trading on an outside decision (an A/B rollback): reduce-only from now on, then
        the kill switch's cancel-all, flatten and halt, journaled with ``reason``."""
        self.limits = dataclasses.replace(self.limits, reduce_only=True)
        self.guard.limits = self.limits
        if not self.halted:
            self._halt(reason, bar)

    def _halt(self, reason: str, bar: Bar) -> None:
        """Kill switch: journal the halt, then cancel everything and flatten (in a task)."""
        self.halted = reason
        self.journal.write("halt", reason=reason, bar_open_ms=bar.open_ms)
        self._spawn(self._flatten(bar))

    # --8<-- [start:flatten]
    async def _flatten(self, bar: Bar) -> None:
        """Cancel every open order, then close the position with reduce-only market orders."""
        cfg = self.cfg
        for rec in list(self.orders.values()):
            if not rec.terminal:
                rec.times.setdefault("t_deadline", self.clock())
                await self._cancel(rec)
        try:
            for u in await asyncio.wait_for(self.broker.open_orders(), cfg.place_timeout):
                try:
                    await asyncio.wait_for(self.broker.cancel(u.client_id), cfg.cancel_timeout)
                except (*_NO_ANSWER, OrderNotFound):
                    pass
        except (*_NO_ANSWER, BrokerError):
            pass
        for attempt in range(3):
            try:
                account = await asyncio.wait_for(self.broker.fetch_account(), cfg.place_timeout)
            except (*_NO_ANSWER, BrokerError):
                account = self.broker.account()
            if account.qty == 0.0:
                break
            req = OrderRequest(client_order_id(cfg.client_prefix, bar.open_ms, attempt + 1),
                               "sell" if account.qty > 0 else "buy", abs(account.qty),
                               "market", reduce_only=True)
            rec = OrderRecord(req, bar.open_ms, bar.close, account.leverage)
            self._track(rec)
            self._journal_order(rec, "intent", side=req.side, qty=req.qty, type=req.type,
                                reduce_only=True, reason="kill switch: flatten",
                                decision_close=bar.close, bar_open_ms=bar.open_ms)
            self._leverage = rec.leverage  # a closing order needs no leverage change
            await self._send(rec)
            if rec.status == "filled":
                break
        self.journal.write("flattened", qty=self.broker.account().qty)
    # --8<-- [end:flatten]

    # ----------------------------------------------------------------------------- report
    def summary(self) -> dict[str, Any]:
        """Counts, the account, latency percentiles (ms); no key, no secret."""
        account = self.broker.account()
        statuses: dict[str, int] = {}
        for rec in self.orders.values():
            statuses[rec.status] = statuses.get(rec.status, 0) + 1
        return {"broker": self.broker.name, "symbol": self.cfg.symbol, **self.stats,
                "order_status": statuses, "halted": self.halted,
                "equity_start": self.first_equity, "equity_end": account.equity,
                "position_end": account.qty,
                "latency_ms": {k: percentiles(v) for k, v in self.latency.items()},
                "journal": str(self.journal.path)}
