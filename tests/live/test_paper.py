"""PaperBroker: the futures environment's fills, bar by bar, through the environment's kernel."""

from __future__ import annotations

import numpy as np
import pytest

from marketsim.futures.env import CryptoFuturesEnv
from marketsim.live.bars import BarWindow, bars_from_frame
from marketsim.live.orders import (
    Bar,
    DuplicateOrder,
    OrderNotFound,
    OrderRejected,
    OrderRequest,
)
from marketsim.live.paper import PaperBroker
from marketsim.live.sizing import action_fraction, kernel_params, observation, target_order
from tests.live.live_helpers import bar, run, small_cfg, synthetic_candles

BOOKS = ("equity", "wallet", "qty", "entry", "margin", "liq_price")


def _lockstep(candles, env_kwargs, seed=0, trade_prob=0.15, always=None):
    """Step the environment and a paper broker together with the same random actions; the
    broker's orders are sized by ``target_order``. Returns per-step (env info, broker state,
    observation difference) and the broker's events."""
    env = CryptoFuturesEnv(data=candles, episode_length=None, **env_kwargs)
    cfg = env.config
    params = kernel_params(cfg)
    bars = bars_from_frame(candles)
    window = BarWindow(cfg, 60_000)
    broker = PaperBroker(cfg, 60_000, window=window)
    t0 = env.market.t_min
    obs, info = env.reset(options={"start": t0})
    for b in bars[: t0 + 1]:
        broker.on_bar(b)
    rng = np.random.default_rng(seed)
    rows = []

    async def go():
        nonlocal obs, info
        for t in range(t0, len(bars) - 1):
            acc = broker.account()
            obs_diff = float(np.max(np.abs(
                observation(window.static_observation(), acc, params) - obs)))
            if always is not None:
                a = always
            elif rng.random() < trade_prob:
                a = rng.choice([-1.0, -0.6, 0.0, 0.25, 0.8, 1.0])
            else:  # hold the current fraction (a rebalancing trade only past min_trade)
                a = float(np.clip(acc.qty * acc.price / (cfg.max_leverage * acc.equity), -1, 1))
            action = np.array([a], np.float32)
            tgt = target_order(acc, action_fraction(action, cfg), window.row(), params)
            if tgt.delta:
                await broker.set_leverage(tgt.leverage)
                try:
                    await broker.place(OrderRequest(f"o-{t}", "buy" if tgt.delta > 0 else "sell",
                                                    abs(tgt.delta), cfg.order_type, tgt.price))
                except OrderRejected:
                    pass
            obs, _, term, trunc, info = env.step(action)
            broker.on_bar(bars[t + 1])
            for u in await broker.open_orders():  # the environment's limit order lives one bar
                await broker.cancel(u.client_id)
            rows.append((info, broker.state, obs_diff))
            if term or trunc:
                break

    run(go())
    events = []
    while not broker.events.empty():
        events.append(broker.events.get_nowait())
    return rows, events


def _assert_same(rows):
    assert rows
    for info, s, obs_diff in rows:
        assert obs_diff < 1e-5  # float32 observations, identical inputs
        env_books = {"equity": info["equity"], "wallet": info["wallet"], "qty": info["position"],
                     "entry": info["entry_price"], "margin": info["margin"],
                     "liq_price": info["liquidation_price"]}
        for name in BOOKS:
            assert getattr(s, name) == pytest.approx(env_books[name], rel=1e-10, abs=1e-9), name
        for book in ("fees", "funding", "slippage"):
            assert s.__getattribute__(f"{book}_long") + s.__getattribute__(f"{book}_short") == \
                pytest.approx(info[book], rel=1e-10, abs=1e-9), book
        assert s.liquidated == info["liquidated"]


@pytest.mark.parametrize("env_kwargs", [
    {"sizing": "leverage"},
    {"sizing": "risk"},
    {"sizing": "leverage", "order_type": "limit", "limit_offset": 0.0005},
    {"sizing": "leverage", "order_type": "limit"},
    {"sizing": "risk", "order_type": "limit", "limit_offset": 0.001},
], ids=["market", "risk-sizing", "limit-offset", "limit-at-close", "risk-limit"])
def test_paper_fills_equal_the_environment_on_the_same_bars(eth_1m, env_kwargs):
    """Real ETHUSDT bars: equity, position, margin, liquidation price, fees, funding and
    slippage of the paper account equal the environment's after every bar, and the trader's
    observation equals the environment's."""
    rows, events = _lockstep(eth_1m.iloc[:700], env_kwargs)
    _assert_same(rows)
    fills = [e for e in events if e.status == "filled"]
    assert len(fills) > 25  # it traded
    assert sum(info["fees"] for info, _, _ in rows[-1:]) > 0


def test_liquidation_and_funding_equal_the_environment():
    """Always fully long at 50x through a wick 10% down, funding 0.1% per 8 h (the bars span
    three funding times): the same liquidation (and an event saying so), the same funding."""
    candles = synthetic_candles(1100, seed=4, vol=0.001)
    crash = candles.index[700]
    candles.loc[crash, ["low"]] = candles.loc[crash, "low"] * 0.9
    rows, events = _lockstep(candles, {"sizing": "leverage", "max_leverage": 50.0,
                                       "funding": 0.001}, always=1.0)
    _assert_same(rows)
    assert any(info["liquidated"] for info, _, _ in rows)
    assert any(e.client_id.startswith("liquidation-") for e in events)
    assert abs(rows[-1][0]["funding"]) > 0


def _warm_broker(n=13, price=100.0, **cfg_over):
    cfg = small_cfg(**cfg_over)
    broker = PaperBroker(cfg, 60_000)
    for i in range(n):
        broker.on_bar(bar(i, price))
    return broker, cfg


def test_limit_order_fills_only_when_the_market_trades_through_it():
    """A buy limit at 99: a bar whose low is exactly 99 does not fill it; a low of 98.9 does,
    at 99, with the maker fee and no slippage."""
    broker, cfg = _warm_broker()

    async def go():
        ack = await broker.place(OrderRequest("l-1", "buy", 2.0, "limit", 99.0))
        assert ack.status == "open"
        broker.on_bar(Bar(bar(13, 100).open_ms, 100.0, 100.5, 99.0, 100.0, 100.0))
        assert [u.client_id for u in await broker.open_orders()] == ["l-1"]
        broker.on_bar(Bar(bar(14, 100).open_ms, 100.0, 100.5, 98.9, 100.0, 100.0))
        assert await broker.open_orders() == []
        filled = await broker.fetch_order("l-1")
        assert filled.status == "filled" and filled.avg_price == 99.0
        assert filled.fee == pytest.approx(2.0 * 99.0 * cfg.maker_fee)
        assert filled.extra["slippage"] == 0.0
        assert broker.account().qty == pytest.approx(2.0)

    run(go())


def test_market_order_fills_at_the_last_close_with_taker_fee_and_slippage():
    """A market sell fills at the last close, pays the taker fee and at least half the spread."""
    broker, cfg = _warm_broker()

    async def go():
        ack = await broker.place(OrderRequest("m-1", "sell", 3.0))
        assert ack.status == "filled" and ack.avg_price == 100.0
        assert ack.fee == pytest.approx(3.0 * 100.0 * cfg.taker_fee)
        assert ack.extra["slippage"] > 3.0 * 100.0 * cfg.half_spread * 0.999
        assert broker.account().qty == pytest.approx(-3.0)

    run(go())


def test_paper_broker_refuses_bad_orders_with_clear_reasons():
    """No data yet, a duplicate id, an unknown cancel, reduce-only from flat, too little
    margin: each refused with its reason, the account untouched."""
    cfg = small_cfg()
    cold = PaperBroker(cfg, 60_000)
    with pytest.raises(OrderRejected, match="needs 13 bars"):
        run(cold.place(OrderRequest("a-1", "buy", 1.0)))
    broker, _ = _warm_broker()

    async def go():
        await broker.place(OrderRequest("a-1", "buy", 1.0))
        with pytest.raises(DuplicateOrder, match="a-1"):
            await broker.place(OrderRequest("a-1", "buy", 1.0))
        with pytest.raises(OrderNotFound, match="zz"):
            await broker.cancel("zz")
        with pytest.raises(OrderRejected, match="reduce-only"):
            await broker.place(OrderRequest("a-2", "buy", 1.0, reduce_only=True))
        before = broker.state.equity
        with pytest.raises(OrderRejected, match="margin is insufficient"):
            await broker.place(OrderRequest("a-3", "buy", 10_000.0))
        assert broker.state.equity == before and broker.account().qty == pytest.approx(1.0)
        assert await broker.fetch_order("never") is None

    run(go())


@pytest.mark.parametrize("kwargs, field", [
    ({"side": "long"}, "side"), ({"qty": 0.0}, "qty"), ({"qty": float("nan")}, "qty"),
    ({"type": "stop"}, "type"), ({"type": "limit", "price": None}, "price"),
    ({"client_id": "has space"}, "client_id"),
])
def test_order_request_names_the_bad_field(kwargs, field):
    """A bad order field is a ValueError that starts with its name."""
    base = {"client_id": "c-1", "side": "buy", "qty": 1.0}
    with pytest.raises(ValueError, match=f"^{field}:"):
        OrderRequest(**{**base, **kwargs})


def test_bar_window_rejects_a_gap_and_needs_its_history():
    """A repeated bar is a no-op, a gap an error, and no features before the full history."""
    window = BarWindow(small_cfg(), 60_000)
    window.push(bar(0, 100.0))
    assert not window.push(bar(0, 100.0))  # the same bar twice: a no-op
    with pytest.raises(ValueError, match="does not follow"):
        window.push(bar(2, 100.0))
    with pytest.raises(ValueError, match="need 13"):
        window.market()
