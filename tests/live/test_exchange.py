"""CcxtBroker and the trader against a fake Binance USD-M exchange on 127.0.0.1 (REST and
WebSocket, the real ccxt client): timeouts, unknown cancels, stalls, disconnects, partial fills,
rejections, idempotent retries, and keys that go nowhere but the exchange."""

from __future__ import annotations

import asyncio
import io
import json

import pytest

from marketsim.live.exchange import CcxtBroker, make_live_exchange
from marketsim.live.feeds import CcxtBarFeed, QueueFeed
from marketsim.live.journal import Journal, read_journal
from marketsim.live.trader import Trader, TraderConfig
from tests.live.fake_exchange import FakeExchange
from tests.live.live_helpers import bar, constant_policy, run, small_cfg

FAST = {"place_timeout": 2.0, "cancel_timeout": 0.2, "reconcile_every": 0.5,
        "reconcile_backoff": 0.02, "stale_after": 1.0}
"""Short timeouts where a test needs one to expire; generous ones where none should (the
fake exchange shares this process, and the machine may be busy)."""


def _exchange(fx: FakeExchange):
    ex = make_live_exchange("binanceusdm", {"apiKey": fx.api_key, "secret": fx.secret},
                            config={"timeout": 3000, "options": {"recvWindow": 1000}})
    fx.point(ex)
    return ex


def _trader(fx, tmp_path, policy, cfg, order_entry="rest", **options):
    broker = CcxtBroker(_exchange(fx), "ETH/USDT", order_entry=order_entry,
                        backoff=(0.02, 0.2))
    journal = Journal(tmp_path / "j.jsonl", secrets=[fx.api_key, fx.secret])
    config = TraderConfig("ETH/USDT", 60_000, **{**FAST, **options})
    return Trader(policy, cfg, broker, journal, config)


async def until(pred, timeout: float = 5.0) -> bool:
    """Poll ``pred`` every 10 ms, at most ``timeout`` seconds; its last value."""
    for _ in range(int(timeout / 0.01)):
        if pred():
            return True
        await asyncio.sleep(0.01)
    return bool(pred())


async def _session(trader, body, n_warm=13, price=2000.0):
    """Run the trader on a queue feed: ``n_warm`` bars (the last one decided on), then
    ``body(feed)``; then stop the feed and return the summary."""
    feed = QueueFeed()
    task = asyncio.create_task(trader.run(feed))
    for i in range(n_warm):
        feed.put(bar(i, price))
    try:
        await body(feed)
    finally:
        feed.close()
    try:
        return await asyncio.wait_for(asyncio.shield(task), 30)
    except asyncio.TimeoutError:  # say where every task hangs
        out = io.StringIO()
        for t in asyncio.all_tasks():
            t.print_stack(file=out)
        raise AssertionError(f"the trader did not stop in 30 s; tasks:\n{out.getvalue()}") \
            from None


def _first_order(trader):
    return next(iter(trader.orders.values()))


def _journal_events(path, cid):
    return [r["event"] for r in read_journal(path) if r.get("client_id") == cid]


@pytest.mark.parametrize("order_entry", ["rest", "ws"])
def test_unfilled_limit_order_is_cancelled_after_the_timeout_and_gone(tmp_path, order_entry):
    """A buy limit 5% below the market, order_timeout 0.2 s: the trader cancels it, the
    exchange has it CANCELED and no open order is left (orders over REST or WebSocket)."""
    cfg = small_cfg(order_type="limit", limit_offset=0.05, max_leverage=2.0)
    with FakeExchange() as fx:
        trader = _trader(fx, tmp_path, constant_policy(0.5), cfg, order_entry,
                         order_timeout=0.2, cancel_timeout=2.0)

        async def body(feed):
            assert await until(lambda: trader.stats["cancels"] == 1)

        summary = run(_session(trader, body))
        rec = _first_order(trader)
        assert rec.status == "cancelled" and rec.filled == 0.0
        assert fx.order(rec.request.client_id)["status"] == "CANCELED"
        assert fx._call(lambda: [o for o in fx.orders.values() if o["status"] == "NEW"]) == []
        events = _journal_events(tmp_path / "j.jsonl", rec.request.client_id)
        assert events[:2] == ["intent", "sent"] and "cancel_sent" in events
        assert summary["cancel_unknown"] == 0
        if order_entry == "ws":
            assert fx.count("WS", "order.place") == 1 and fx.count("POST", "/fapi/v1/order") == 0


@pytest.mark.parametrize("how", ["stream", "fetch_order", "cancel-lost"])
def test_a_cancel_not_confirmed_in_time_is_unknown_then_reconciled(tmp_path, how):
    """The cancel's answer never comes: the order is marked unknown, then resolved by the
    order stream's CANCELED event (``stream``), by ``fetch_order`` when the stream is silent
    (``fetch_order``), or, when the cancel never reached the exchange, by a second cancel
    after ``fetch_order`` found the order still open (``cancel-lost``)."""
    cfg = small_cfg(order_type="limit", limit_offset=0.05, max_leverage=2.0)
    with FakeExchange() as fx:
        trader = _trader(fx, tmp_path, constant_policy(0.5), cfg, order_timeout=0.2)
        fx.drop_next("cancel", process=how != "cancel-lost")
        if how == "stream":
            fx.drop_next("fetch", process=False)  # the fetch hangs: the stream must answer

        async def body(feed):
            assert await until(lambda: trader.orders and _first_order(trader).status == "open")
            fx.hold_events(True)  # no CANCELED event before the cancel has timed out
            assert await until(lambda: trader.stats["cancel_unknown"] == 1)
            if how == "stream":
                fx.hold_events(False)
            assert await until(lambda: _first_order(trader).terminal)

        summary = run(_session(trader, body))
        rec = _first_order(trader)
        cid = rec.request.client_id
        assert rec.status == "cancelled"
        assert fx.order(cid)["status"] == "CANCELED"
        assert summary["cancel_unknown"] == 1
        events = _journal_events(tmp_path / "j.jsonl", cid)
        assert "cancel_unknown" in events
        resolved_by = events[events.index("cancel_unknown") + 1]
        assert resolved_by == ("update" if how == "stream" else "reconciled")
        if how == "cancel-lost":
            assert fx.count("DELETE", "/fapi/v1/order") == 2


def test_a_stalled_exchange_never_delays_decisions(tmp_path):
    """After a first fill, the exchange stops answering: the next order hangs, yet every bar
    that closes meanwhile is decided on (journaled; nothing is sent while the order is
    unresolved) before the exchange answers anything. Once it answers, the order is
    reconciled, and it exists once."""
    cfg = small_cfg(max_leverage=2.0)
    flip = {"n": 0}

    def alternate(obs):
        flip["n"] += 1
        return constant_policy(0.5 if flip["n"] % 2 else -0.5)(obs)

    with FakeExchange() as fx:
        trader = _trader(fx, tmp_path, alternate, cfg, order_timeout=0.2, place_timeout=0.3)
        marks = {}

        async def body(feed):
            assert await until(lambda: trader.orders and _first_order(trader).terminal)
            fx.stall(True)
            for i in range(13, 19):
                feed.put(bar(i, 2000.0))
                await asyncio.sleep(0.05)
            assert await until(lambda: trader.stats["decisions"] == 7)
            assert await until(lambda: trader.stats["place_unknown"] == 1)  # it timed out
            marks["release"] = trader.clock()
            fx.stall(False)
            assert await until(lambda: all(r.terminal for r in trader.orders.values()), 10)

        run(_session(trader, body))
        decisions = [r for r in read_journal(tmp_path / "j.jsonl") if r["kind"] == "decision"]
        assert len(decisions) == 7
        assert all(d["t_decision"] < marks["release"] for d in decisions)
        assert [d["busy"] for d in decisions] == [False, False] + [True] * 5
        first, stuck = trader.orders.values()
        assert stuck.request.side == "sell" and stuck.status == "filled"
        assert trader.stats["place_unknown"] == 1
        assert fx.client_ids() == [first.request.client_id, stuck.request.client_id]
        assert fx.position() == pytest.approx(-5.0, abs=0.01)


def test_order_stream_resumes_after_a_websocket_disconnect(tmp_path):
    """A limit order rests; its fill happens while the order stream is down (the event is
    lost); the broker watches the stream again, fetches what it missed, and the trader sees
    the fill. Later events come through the resumed stream."""
    cfg = small_cfg(order_type="limit", limit_offset=0.0, max_leverage=2.0)
    flip = {"n": 0}

    def alternate(obs):
        flip["n"] += 1
        return constant_policy(0.5 if flip["n"] % 2 else -0.5)(obs)

    with FakeExchange() as fx:
        trader = _trader(fx, tmp_path, alternate, cfg, order_timeout=None)

        async def body(feed):
            assert await until(lambda: trader.orders
                               and _first_order(trader).status == "open")
            fx.hold_events(True)
            fx.trade(1999.0)  # fills the buy at 2000; its event is held...
            assert fx.disconnect() >= 1  # ...and lost with the socket
            fx.hold_events(False)
            assert await until(lambda: _first_order(trader).status == "filled")
            fx.trade(2001.0)
            feed.put(bar(13, 2001.0))  # a new bar: a new order, over the resumed stream
            assert await until(lambda: len(trader.orders) == 2)

        run(_session(trader, body))
        broker = trader.broker
        assert broker.reconnects >= 1
        first, second = list(trader.orders.values())
        assert first.status == "filled" and first.filled == pytest.approx(5.0)
        events = _journal_events(tmp_path / "j.jsonl", second.request.client_id)
        assert "update" in events  # an event of the second order came over the stream


def test_bar_stream_resumes_after_a_disconnect_without_losing_a_bar():
    """Klines over WebSocket: bars closed while the stream is down, and a bar whose stream
    update is lost, come back over REST, so the feed hands on every bar once, in order, and
    fills none in (it would, with a made-up bar, if it did not ask)."""
    with FakeExchange() as fx:
        for i in range(5):
            fx.push_bar(bar(i, 2000.0).open_ms, 2000, 2020, 1990, 2000 + i, 10)

        async def go():
            ex = _exchange(fx)
            feed = CcxtBarFeed(ex, "ETH/USDT", "1m", 60_000, history=5, backoff=(0.02, 0.1))
            got, closes = [], []

            async def consume():
                async for b, live in feed:
                    got.append((b.open_ms, live))
                    closes.append((b.open_ms, b.close))
                    if len(got) == 12:
                        return

            task = asyncio.create_task(consume())
            assert await until(fx.subscribed)
            fx.push_bar(bar(5, 2000.0).open_ms, 2000, 2020, 1990, 2005, 10)
            assert await until(lambda: len(got) == 6)
            fx.disconnect()
            for i in range(6, 9):  # closed while the stream is down
                fx.push_bar(bar(i, 2000.0).open_ms, 2000, 2020, 1990, 2000 + i, 10)
            assert await until(lambda: len(got) == 9)  # fetched over REST
            assert await until(fx.subscribed)
            for i in range(9, 12):  # bar 9's stream update is lost: bar 10's shows the gap
                fx.push_bar(bar(i, 2000.0).open_ms, 2000, 2020, 1990, 2000 + i, 10,
                            stream=i != 9)
            await asyncio.wait_for(task, 10)
            await ex.close()
            return got, closes, feed.reconnects

        got, closes, reconnects = run(go())
        assert [t for t, _ in got] == [bar(i, 0).open_ms for i in range(12)]
        assert [c for _, c in closes] == [2000.0 + i for i in range(12)]  # real bars
        assert [live for _, live in got[:5]] == [False] * 5 and got[-1][1]
        assert reconnects >= 1


def test_partial_fill_and_rejection_are_tracked_and_the_next_decision_tops_up(tmp_path):
    """The first market order fills half (the rest expires), the second is rejected; the
    third decision trades the difference to the target."""
    cfg = small_cfg(max_leverage=2.0)
    with FakeExchange(latency=(0.02, 0.06)) as fx:  # every answer and event 20-60 ms late
        fx.partial_next(0.5)
        trader = _trader(fx, tmp_path, constant_policy(0.5), cfg)

        async def body(feed):
            assert await until(lambda: trader.orders and _first_order(trader).terminal)
            fx.reject_next()
            feed.put(bar(13, 2000.0))
            assert await until(lambda: len(trader.orders) == 2
                               and list(trader.orders.values())[1].terminal)
            await until(lambda: trader.broker.account().qty == pytest.approx(2.5))
            feed.put(bar(14, 2000.0))
            assert await until(lambda: len(trader.orders) == 3
                               and list(trader.orders.values())[2].terminal)

        run(_session(trader, body))
        first, second, third = trader.orders.values()
        assert first.status == "expired" and first.filled == pytest.approx(2.5)
        assert second.status == "rejected"
        records = [r for r in read_journal(tmp_path / "j.jsonl")
                   if r.get("client_id") == second.request.client_id]
        assert "Margin is insufficient" in records[-1]["reason"]
        assert third.status == "filled" and third.request.qty == pytest.approx(2.5, abs=0.01)
        assert fx.position() == pytest.approx(5.0, abs=0.01)


@pytest.mark.parametrize("processed", [True, False])
def test_an_order_whose_answer_is_lost_is_reconciled_not_sent_again(tmp_path, processed):
    """The order's answer never comes. Processed: fetch_order finds it filled and the trader
    adopts it. Not processed: the exchange does not know it, it is ``not_placed`` and the
    next bar's decision sends a new order with a new id. Never two orders with one id."""
    cfg = small_cfg(max_leverage=2.0)
    with FakeExchange() as fx:
        fx.drop_next("place", process=processed)
        trader = _trader(fx, tmp_path, constant_policy(0.5), cfg, place_timeout=0.3)

        async def body(feed):
            assert await until(lambda: trader.orders and _first_order(trader).terminal)
            feed.put(bar(13, 2000.0))
            await until(lambda: len(trader.orders) == 2, 2)

        summary = run(_session(trader, body))
        first = _first_order(trader)
        assert summary["place_unknown"] == 1
        ids = fx.client_ids()
        assert len(ids) == len(set(ids))
        if processed:
            assert first.status == "filled" and ids == [first.request.client_id]
            assert len(trader.orders) == 1  # at the target: nothing more to send
        else:
            assert first.status == "not_placed"
            assert len(ids) == 1 and ids[0] != first.request.client_id
        assert fx.position() == pytest.approx(5.0)


def test_start_reconciliation_cancels_our_orphan_orders_and_leaves_others(tmp_path):
    """Open orders left by an earlier session (our client-id prefix) are cancelled when the
    trader starts; someone else's order on the symbol is left alone."""
    cfg = small_cfg(max_leverage=2.0)
    with FakeExchange(latency=(0.01, 0.03)) as fx:

        async def leave_orders():
            ex = _exchange(fx)
            for cid in ("rl-1700000000000-0", "manual-7"):
                await ex.create_order("ETH/USDT:USDT", "limit", "buy", 1.0, 1500.0,
                                      {"clientOrderId": cid})
            await ex.close()

        run(leave_orders())
        trader = _trader(fx, tmp_path, constant_policy(0.0), cfg)

        async def body(feed):
            assert await until(lambda: trader.stats["orphans_cancelled"] == 1)

        run(_session(trader, body, n_warm=3))
        assert fx.order("rl-1700000000000-0")["status"] == "CANCELED"
        assert fx.order("manual-7")["status"] == "NEW"
        start = next(r for r in read_journal(tmp_path / "j.jsonl") if r["kind"] == "reconcile")
        assert start["orphans_cancelled"] == ["rl-1700000000000-0"]


def test_keys_reach_the_exchange_and_nothing_else(tmp_path, caplog):
    """The exchange receives the API key (signed requests pass its check); the journal, the
    summary, the broker's repr and the logs never contain the key or the secret."""
    cfg = small_cfg(max_leverage=2.0)
    with FakeExchange(api_key="KEY-visible-nowhere-123", secret="SECRET-never-written-456") as fx:
        trader = _trader(fx, tmp_path, constant_policy(0.5), cfg)

        async def body(feed):
            assert await until(lambda: trader.orders and _first_order(trader).terminal)

        summary = run(_session(trader, body))
        assert fx.received_keys == {fx.api_key}
        assert _first_order(trader).status == "filled"
        text = (tmp_path / "j.jsonl").read_text() + json.dumps(summary) + repr(trader.broker) \
            + caplog.text
        assert fx.api_key not in text and fx.secret not in text
