"""The trader loop with the paper broker: replay equals backtest, kill switch, risk limits,
restarts, order timeouts."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from marketsim.evaluation.backtest import simulate
from marketsim.live.bars import BarWindow
from marketsim.live.feeds import QueueFeed, ReplayFeed
from marketsim.live.journal import Journal, order_timeline, read_journal
from marketsim.live.orders import OrderRequest
from marketsim.live.paper import PaperBroker
from marketsim.live.risk import RiskLimits
from marketsim.live.trader import Trader, TraderConfig
from tests.live.live_helpers import (
    bar,
    constant_policy,
    obs_policy,
    run,
    small_cfg,
    synthetic_candles,
)


def _paper_trader(cfg, journal_path, policy, limits=None, clear_halt=False, latency=0.0,
                  **options):
    window = BarWindow(cfg, 60_000)
    broker = PaperBroker(cfg, 60_000, window=window, latency=latency)
    config = TraderConfig("ETH/USDT", 60_000, **options)
    journal = Journal(journal_path, fsync=False)
    return Trader(policy, cfg, broker, journal, config, limits, window, clear_halt=clear_halt)


@pytest.mark.parametrize("env_kwargs, timeout", [
    ({}, 0.5), ({"order_type": "limit", "limit_offset": 0.0003}, None),
], ids=["market", "limit-till-next-bar"])
def test_paper_replay_equals_the_backtest(eth_1m, tmp_path, env_kwargs, timeout):
    """A replay through trader and paper broker ends with the backtest's equity, and the
    equity at every decision is the backtest's at that bar."""
    candles = eth_1m.iloc[:600]
    cfg = small_cfg(**env_kwargs)
    kw = {"window": 4, "vol_window": 8, "sizing": "leverage", **env_kwargs}
    bt = simulate(candles, kw, obs_policy)
    trader = _paper_trader(cfg, tmp_path / "j.jsonl", obs_policy, order_timeout=timeout,
                           settle=True)
    summary = run(trader.run(ReplayFeed(candles, 60_000)))
    assert summary["equity_end"] == pytest.approx(bt["equity"].iloc[-1], rel=1e-10)
    decisions = [r for r in read_journal(tmp_path / "j.jsonl") if r["kind"] == "decision"]
    assert len(decisions) == len(bt) - 1
    np.testing.assert_allclose([d["equity"] for d in decisions], bt["equity"].iloc[:-1],
                               rtol=1e-10)
    assert summary["orders"] > 50 and summary["lost"] == 0


def test_kill_switch_cancels_flattens_and_halts_and_a_restart_stays_halted(tmp_path):
    """Fully long at 10x; a 3% drop is a 30% drawdown > 20%: every open order is cancelled
    (a resting one included), the position is closed by a reduce-only market order, no more
    decisions; a restart on the journal stays halted until the halt is cleared."""
    cfg = small_cfg()
    path = tmp_path / "j.jsonl"
    trader = _paper_trader(cfg, path, constant_policy(1.0), RiskLimits(max_drawdown=0.2))
    feed = QueueFeed()

    async def go():
        task = asyncio.create_task(trader.run(feed))
        for i in range(15):
            feed.put(bar(i, 100.0))
            await asyncio.sleep(0.01)
        assert trader.broker.account().qty > 0
        await trader.broker.place(OrderRequest("manual-1", "buy", 1.0, "limit", 50.0))
        feed.put(bar(15, 97.0))
        for i in range(16, 20):
            feed.put(bar(i, 97.0))
        feed.close()
        return await task

    summary = run(go())
    assert summary["halted"] and "drawdown" in summary["halted"]
    assert trader.broker.account().qty == 0.0
    assert run(trader.broker.open_orders()) == []
    records = read_journal(path)
    kinds = [r["kind"] for r in records]
    assert "halt" in kinds and kinds.index("flattened") > kinds.index("halt")
    halt_at = next(r["bar_open_ms"] for r in records if r["kind"] == "halt")
    assert all(r["bar_open_ms"] < halt_at for r in records if r["kind"] == "decision")
    flatten = [r for r in records if r["kind"] == "order" and r.get("reduce_only")]
    assert flatten and flatten[0]["side"] == "sell"
    cancelled = run(trader.broker.fetch_order("manual-1"))
    assert cancelled.status == "cancelled"

    again = _paper_trader(cfg, path, constant_policy(1.0), RiskLimits(max_drawdown=0.2))
    assert again.halted
    feed2 = QueueFeed()
    for i in range(20, 40):
        feed2.put(bar(i, 97.0))
    feed2.close()
    assert run(again.run(feed2))["decisions"] == 0
    cleared = _paper_trader(cfg, path, constant_policy(1.0), RiskLimits(max_drawdown=0.2),
                            clear_halt=True)
    assert cleared.halted is None


def test_risk_limits_cap_the_position_and_reduce_only_adds_nothing(tmp_path):
    """max_position caps a full long at 2.5 units; reduce-only from flat sends nothing."""
    cfg = small_cfg()
    trader = _paper_trader(cfg, tmp_path / "a.jsonl", constant_policy(1.0),
                           RiskLimits(max_position=2.5))
    candles = synthetic_candles(60, seed=2, price=100.0)
    run(trader.run(ReplayFeed(candles, 60_000)))
    assert trader.broker.account().qty == pytest.approx(2.5)
    notes = [r["risk_note"] for r in read_journal(tmp_path / "a.jsonl")
             if r["kind"] == "decision"]
    assert "max_position 2.5" in notes[0]

    flat = _paper_trader(cfg, tmp_path / "b.jsonl", constant_policy(-1.0),
                         RiskLimits(reduce_only=True))
    summary = run(flat.run(ReplayFeed(candles, 60_000)))
    assert summary["orders"] == 0 and flat.broker.account().qty == 0.0


def test_a_restart_does_not_decide_a_bar_twice(tmp_path):
    """Two sessions on one journal over overlapping bars: each bar is decided once, and no
    client order id appears twice."""
    cfg = small_cfg()
    path = tmp_path / "j.jsonl"
    candles = synthetic_candles(80, seed=5)
    run(_paper_trader(cfg, path, obs_policy, settle=True).run(
        ReplayFeed(candles.iloc[:50], 60_000, decide_last=True)))
    run(_paper_trader(cfg, path, obs_policy, settle=True).run(
        ReplayFeed(candles, 60_000, decide_last=True)))
    records = read_journal(path)
    bars = [r["bar_open_ms"] for r in records if r["kind"] == "decision"]
    assert len(bars) == len(set(bars)) == 80 - 12
    intents = [r["client_id"] for r in records if r["kind"] == "order" and r["event"] == "intent"]
    assert len(intents) == len(set(intents)) > 10


def test_unfilled_order_is_cancelled_after_the_timeout(tmp_path):
    """A limit order far from the market, 20 ms of paper latency, order_timeout 0.1 s: the
    order is cancelled, journaled with its timestamps, and gone from the broker."""
    cfg = small_cfg(order_type="limit", limit_offset=0.05)
    trader = _paper_trader(cfg, tmp_path / "j.jsonl", constant_policy(0.5), latency=0.02,
                           order_timeout=0.1)
    feed = QueueFeed()

    async def go():
        task = asyncio.create_task(trader.run(feed))
        for i in range(14):
            feed.put(bar(i, 100.0))
        for _ in range(200):  # bounded: at most 2 s
            if trader.stats["cancels"]:
                break
            await asyncio.sleep(0.01)
        feed.close()
        return await task

    summary = run(go())
    assert summary["order_status"] == {"cancelled": 1}
    assert run(trader.broker.open_orders()) == []
    row = order_timeline(read_journal(tmp_path / "j.jsonl"))[0]
    for key in ("t_bar_close", "t_recv", "t_decision", "t_send", "t_ack", "t_deadline",
                "t_cancel_sent", "t_cancel_done"):
        assert key in row, key
    assert row["t_send"] <= row["t_ack"] <= row["t_cancel_sent"] <= row["t_cancel_done"]
    assert row["t_deadline"] == pytest.approx(row["t_send"] + 0.1)


@pytest.mark.parametrize("kwargs, field", [
    ({"order_timeout": 0.0}, "order_timeout"), ({"cancel_timeout": -1}, "cancel_timeout"),
    ({"bar_ms": 0}, "bar_ms"), ({"client_prefix": "x" * 40}, "client order id"),
    ({"reconcile_tries": 0}, "reconcile_tries"),
])
def test_trader_config_names_the_bad_field(kwargs, field):
    """A bad trader setting is a ValueError naming it."""
    with pytest.raises(ValueError, match=field):
        TraderConfig(**{"symbol": "ETH/USDT", "bar_ms": 60_000, **kwargs})


@pytest.mark.parametrize("kwargs, field", [
    ({"max_drawdown": 1.5}, "max_drawdown"), ({"max_position": -1}, "max_position"),
    ({"max_daily_loss": float("nan")}, "max_daily_loss"),
])
def test_risk_limits_name_the_bad_field(kwargs, field):
    """A bad risk limit is a ValueError naming it."""
    with pytest.raises(ValueError, match=f"^{field}:"):
        RiskLimits(**kwargs)
