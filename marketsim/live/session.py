"""Assembling a trading session: a run's policy, a broker, a feed, a journal, a trader.

The ``trade`` command calls these, and so can a script or a test: :func:`run_policy` rebuilds
a trained run's policy exactly as the backtest does (checkpoint, frame stack, frozen observation
normaliser); :func:`paper_session` and :func:`live_session` put a trader together around it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from marketsim.data.timeframe import timeframe_to_timedelta
from marketsim.futures.config import FuturesConfig
from marketsim.live.bars import BarWindow
from marketsim.live.exchange import CcxtBroker, exchange_secrets
from marketsim.live.feeds import CcxtBarFeed, ReplayFeed
from marketsim.live.journal import Journal
from marketsim.live.paper import PaperBroker
from marketsim.live.risk import RiskLimits
from marketsim.live.trader import Trader, TraderConfig, stacked_decider

__all__ = ["run_policy", "bar_ms_of", "paper_session", "live_session"]

Decide = Callable[[np.ndarray], Any]


def bar_ms_of(timeframe: str) -> int:
    """Bar length of a ccxt timeframe (``1m``, ``1h``) in milliseconds."""
    try:
        return int(timeframe_to_timedelta(timeframe) / pd.Timedelta(milliseconds=1))
    except ValueError as e:
        raise ValueError(f"--timeframe {timeframe!r}: {e}") from None


def run_policy(run_dir: str | Path) -> tuple[Decide, FuturesConfig, dict[str, Any]]:
    """A run's policy as ``decide(observation)``, the futures configuration it was trained
    with, and its provenance (algorithm, checkpoint step). Same rebuild as the backtest."""
    from marketsim.evaluation.backtest import load_run_policy

    policy = load_run_policy(run_dir)
    if policy.env != "marketsim/CryptoFutures-v0":
        raise ValueError(f"{run_dir}: trained on {policy.env!r}; only runs on "
                         "marketsim/CryptoFutures-v0 can trade futures")
    kwargs = {k: v for k, v in policy.env_kwargs.items()
              if k not in ("data", "data_seed", "render_mode")}
    cfg = FuturesConfig.from_kwargs(**kwargs)
    info = {"run_dir": str(run_dir), "algo": policy.algo, "checkpoint_step": policy.checkpoint_step,
            "frame_stack": policy.frame_stack, "normalised": policy.obs_fn is not None}
    return stacked_decider(policy.decider(), policy.frame_stack), cfg, info


def paper_session(decide: Decide, cfg: FuturesConfig, symbol: str, timeframe: str,
                  journal_path: str | Path, candles: pd.DataFrame | None = None,
                  exchange: Any = None, speed: float | None = None,
                  latency: float | tuple[float, float] = 0.0,
                  limits: RiskLimits | None = None, clear_halt: bool = False,
                  **trader_options: Any) -> tuple[Trader, Any]:
    """A paper trader: replayed ``candles`` (as fast as it goes, or ``speed`` x real time) or
    the live bars of a public ``exchange`` stream; the paper broker fills with the run's costs.
    ``trader_options`` are :class:`TraderConfig` fields."""
    bar_ms = bar_ms_of(timeframe)
    window = BarWindow(cfg, bar_ms)
    broker = PaperBroker(cfg, bar_ms, window=window, latency=latency)
    if candles is not None:
        feed: Any = ReplayFeed(candles, bar_ms, speed=speed)
        trader_options.setdefault("settle", True)
    elif exchange is not None:
        feed = CcxtBarFeed(exchange, symbol, timeframe, bar_ms, history=window.need)
    else:
        raise ValueError("paper trading needs candles to replay (--replay PATH) or an exchange "
                         "to read live bars from (--exchange)")
    config = TraderConfig(symbol=symbol, bar_ms=bar_ms, **trader_options)
    journal = Journal(journal_path, fsync=candles is None)
    trader = Trader(decide, cfg, broker, journal, config, limits, window, clear_halt=clear_halt)
    return trader, feed


def live_session(decide: Decide, cfg: FuturesConfig, exchange: Any, symbol: str,
                 timeframe: str, journal_path: str | Path, credentials: dict[str, str],
                 order_entry: str = "auto", limits: RiskLimits | None = None,
                 clear_halt: bool = False, **trader_options: Any) -> tuple[Trader, Any]:
    """A live trader on ``exchange`` (a ``ccxt.pro`` object with keys): the kline stream for
    bars, :class:`CcxtBroker` for orders; the journal scrubs ``credentials``."""
    bar_ms = bar_ms_of(timeframe)
    broker = CcxtBroker(exchange, symbol, order_entry=order_entry)
    window = BarWindow(cfg, bar_ms)
    trader_options = {"client_prefix": "rl", **trader_options}
    config = TraderConfig(symbol=symbol, bar_ms=bar_ms, **trader_options)
    journal = Journal(journal_path, secrets=exchange_secrets(credentials), fsync=True)
    trader = Trader(decide, cfg, broker, journal, config, limits, window, clear_halt=clear_halt)
    feed = CcxtBarFeed(exchange, symbol, timeframe, bar_ms, history=window.need)
    return trader, feed
