"""Live execution: order-path latencies against a slow fake exchange, and a paper replay of a
trained agent against its backtest.

Usage: ``python benchmarks/bench_live.py [--quick] [--replay-bars N] [--out PATH]``. Prints one
JSON object, writes it to ``runs/bench/live-<timestamp>.json`` (or ``--out``) and prints that
path as the last line.

1. **Latencies** (milliseconds, p50/p99), the trader and ``CcxtBroker`` with the real ccxt client
   against the fake Binance USD-M exchange of ``tests/live/fake_exchange.py`` on 127.0.0.1,
   which adds 50-200 ms (uniform) to every response and every pushed event:
   *bar close to order sent* (the bar's arrival at the trader to the order's send: observation,
   policy, sizing, journal); *timeout to cancel sent* and *timeout to cancel resolved*
   (confirmed, or marked unknown at ``cancel_timeout``) for limit orders that never fill, over
   the WebSocket API and over REST; *decision latency* with the exchange answering and with it
   stalled (every request hangs). The budget: the cancel path, from the order's timeout to its
   cancel resolved, under 500 ms at p99.
2. **Paper replay vs backtest**: a PPO agent trained for ``--train-steps`` on the shared
   ETHUSDT 1m file (2023-03-16 to 2023-05-01) paper-trades the file's bars through the trader,
   as fast as it goes; its final equity and its equity at every decision against the backtest
   of the same run on the same bars.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from marketsim.live.exchange import CcxtBroker, make_live_exchange  # noqa: E402
from marketsim.live.feeds import QueueFeed  # noqa: E402
from marketsim.live.journal import Journal, percentiles, read_journal  # noqa: E402
from marketsim.live.trader import Trader, TraderConfig  # noqa: E402
from rlcore.io import atomic_write_json  # noqa: E402
from tests.live.fake_exchange import FakeExchange  # noqa: E402
from tests.live.live_helpers import bar, small_cfg  # noqa: E402

DATA = ROOT / ".." / "shared" / "data" / "binance-spot_ETHUSDT_1m_20230316_20230501.csv.gz"
LATENCY = (0.05, 0.20)
BUDGET_MS = 500.0


def _alternate():
    """A policy that flips between long and short every decision (an order every bar)."""
    n = {"k": 0}

    def decide(obs):
        n["k"] += 1
        return np.array([0.5 if n["k"] % 2 else -0.5], np.float32)

    return decide


async def _session(fx, folder, cfg, order_entry, bars, spacing, stall_after=None, **options):
    """Run a trader on the fake exchange over ``bars`` bars ``spacing`` s apart; its latencies."""
    ex = make_live_exchange("binanceusdm", {"apiKey": fx.api_key, "secret": fx.secret},
                            config={"timeout": 10_000})
    fx.point(ex)
    broker = CcxtBroker(ex, "ETH/USDT", order_entry=order_entry)
    path = Path(folder) / f"{order_entry}-{time.monotonic_ns()}.jsonl"
    journal = Journal(path, fsync=False)
    config = TraderConfig("ETH/USDT", 60_000, reconcile_every=30.0, **options)
    trader = Trader(_alternate(), cfg, broker, journal, config)
    feed = QueueFeed()
    task = asyncio.create_task(trader.run(feed))
    for i in range(12):
        feed.put(bar(i, 2000.0))
    for _ in range(3000):  # started (markets, account, leverage) and warm: at most 30 s
        if trader.stats["bars"] >= 12:
            break
        await asyncio.sleep(0.01)
    for i in range(12, 12 + bars):
        if stall_after is not None and i == 12 + stall_after:
            fx.stall(True)
        feed.put(bar(i, 2000.0))
        await asyncio.sleep(spacing)
    feed.close()
    if stall_after is not None:
        fx.stall(False)
    summary = await asyncio.wait_for(task, 120)
    return trader, summary, path


def latency_section(quick: bool) -> dict:
    """Order-path latencies against the fake exchange (section 1 of the docstring)."""
    n_market, n_cancel, n_stall = (8, 5, 30) if quick else (100, 40, 200)
    out: dict = {"exchange_latency_s": list(LATENCY)}
    cfg_market = small_cfg(max_leverage=2.0)
    cfg_limit = small_cfg(order_type="limit", limit_offset=0.05, max_leverage=2.0)
    with tempfile.TemporaryDirectory() as folder:
        with FakeExchange(latency=LATENCY, seed=1) as fx:
            trader, summary, _ = asyncio.run(_session(fx, folder, cfg_market, "ws", n_market,
                                                      0.45))
            out["market_orders"] = {
                "bars": n_market, "orders": summary["orders"], "busy": summary["skipped_busy"],
                "bar_close_to_order_sent_ms": percentiles(trader.latency["bar_to_send_ms"]),
                "send_to_ack_ms": percentiles(trader.latency["send_to_ack_ms"]),
                "decision_ms": percentiles(trader.latency["decision_ms"])}
        for entry in ("ws", "rest"):
            with FakeExchange(latency=LATENCY, seed=2) as fx:
                trader, summary, path = asyncio.run(_session(
                    fx, folder, cfg_limit, entry, n_cancel, 0.9, order_timeout=0.5,
                    cancel_timeout=0.4))
                rows = [r for r in read_journal(path) if r.get("event") == "cancel_sent"]
                send_to_cancel = [(r["t_cancel_sent"] - r["t_send"]) * 1000 for r in rows]
                resolved = trader.latency["timeout_to_cancel_done_ms"]
                out[f"cancel_path_{entry}"] = {
                    "orders": summary["orders"], "cancels": summary["cancels"],
                    "cancel_unknown": summary["cancel_unknown"],
                    "order_timeout_s": 0.5, "cancel_timeout_s": 0.4,
                    "timeout_to_cancel_sent_ms": percentiles(
                        trader.latency["timeout_to_cancel_sent_ms"]),
                    "timeout_to_cancel_resolved_ms": percentiles(resolved),
                    "send_to_cancel_sent_ms": percentiles(send_to_cancel),
                    "budget_ms": BUDGET_MS,
                    "meets_budget_p99": bool(resolved) and float(np.percentile(resolved, 99))
                    < BUDGET_MS}
        with FakeExchange(latency=LATENCY, seed=3) as fx:
            trader, summary, path = asyncio.run(_session(
                fx, folder, cfg_market, "ws", n_stall, 0.05, stall_after=2, place_timeout=1.0))
            decided = [r for r in read_journal(path) if r["kind"] == "decision"]
            stalled = [(r["t_decision"] - r["t_recv"]) * 1000 for r in decided[2:]]
            out["stalled_exchange"] = {
                "bars": n_stall, "decisions": len(decided),
                "decision_ms_while_stalled": percentiles(stalled),
                "orders_sent_while_stalled": fx.count("WS", "order.place") - 1,
                "busy_decisions": summary["skipped_busy"]}
    return out


def replay_section(train_steps: int, replay_bars: int | None) -> dict:
    """Train a PPO agent, paper-replay the ETHUSDT file, compare with the backtest."""
    from marketsim.data import load_candles
    from marketsim.evaluation.backtest import backtest_frames, load_run_policy
    from marketsim.live.session import paper_session, run_policy
    from rlcore.config import resolve_configs
    from rlcore.training import train

    if not DATA.exists():
        return {"skipped": f"{DATA} not found"}
    candles = load_candles(DATA)
    if replay_bars:
        candles = candles.iloc[:replay_bars]
    out: dict = {"data": DATA.name, "bars": len(candles), "train_steps": train_steps}
    with tempfile.TemporaryDirectory() as folder:
        run, algo = resolve_configs({
            "algo": "ppo", "env": "marketsim/CryptoFutures-v0", "steps": train_steps,
            "n_envs": 4, "seed": 0, "progress": False, "eval_episodes": 1, "eval_envs": 1,
            "frame_stack": 2, "normalize_obs": True,
            "env_kwargs": {"data": str(DATA), "episode_length": 512}})
        t0 = time.perf_counter()
        train(run, algo, Path(folder) / "run")
        out["train_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        bt = backtest_frames(candles, load_run_policy(Path(folder) / "run"))["agent"]
        out["backtest_s"] = time.perf_counter() - t0
        decide, cfg, _ = run_policy(Path(folder) / "run")
        journal = Path(folder) / "paper.jsonl"
        trader, feed = paper_session(decide, cfg, "ETH/USDT", "1m", journal, candles=candles)
        t0 = time.perf_counter()
        summary = asyncio.run(trader.run(feed))
        out["replay_s"] = time.perf_counter() - t0
        out["replay_bars_per_s"] = len(candles) / out["replay_s"]
        eq = np.array([r["equity"] for r in read_journal(journal) if r["kind"] == "decision"])
        ref = bt["equity"].to_numpy()[:-1]
        out.update(
            backtest_equity=float(bt["equity"].iloc[-1]), paper_equity=summary["equity_end"],
            relative_difference=abs(summary["equity_end"] / bt["equity"].iloc[-1] - 1.0),
            decisions=len(eq), max_relative_difference_per_decision=float(
                np.max(np.abs(eq / ref - 1.0))) if len(eq) == len(ref) else None,
            orders=summary["orders"], fills=summary["fills"],
            decision_ms=summary["latency_ms"]["decision_ms"])
    return out


def main() -> None:
    """Run both sections, print JSON, write it, print the file's path."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer samples (a smoke run)")
    parser.add_argument("--train-steps", type=int, default=4096, help="PPO steps of the agent")
    parser.add_argument("--replay-bars", type=int, default=None,
                        help="replay only the first N bars (default: the whole file)")
    parser.add_argument("--skip-replay", action="store_true", help="latencies only")
    parser.add_argument("--out", type=Path, default=None, help="JSON output file")
    args = parser.parse_args()
    result = {
        "benchmark": "live",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "processor": platform.processor() or platform.machine()},
        "load_average_before": os.getloadavg(),
        "latency": latency_section(args.quick),
    }
    if not args.skip_replay:
        result["paper_replay"] = replay_section(
            args.train_steps, args.replay_bars or (3000 if args.quick else None))
    result["load_average_after"] = os.getloadavg()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    out = args.out or ROOT / "runs" / "bench" / f"live-{stamp}.json"
    atomic_write_json(out, result)
    import json

    print(json.dumps(result, indent=2))
    print(out)


if __name__ == "__main__":
    main()
