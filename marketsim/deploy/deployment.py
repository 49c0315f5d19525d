"""A/B deployment: champion and challenger trade side by side, each with its own book.

Composition around the live trader, which is not changed: each variant is an ordinary
:class:`~marketsim.live.trader.Trader` with its own broker (a paper book holding its share of
the capital), journal and client-order prefix, reading a :class:`LockstepFeed`. The deployment
takes each bar from the source feed, hands it to both traders, waits until both are done with
it, marks both books, and asks :func:`marketsim.deploy.ab.judge` what to do. A rollback puts the
challenger in reduce-only mode, cancels its orders and flattens it (``Trader.retire``), rolls
the registry's ``challenger`` alias back, and journals the decision with its numbers; the
champion trades on. A proposal is journaled (and carried out only with ``auto_promote``).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from marketsim.deploy.ab import ABMonitor, ABRule, Verdict
from marketsim.deploy.lockstep import LockstepFeed
from marketsim.futures.config import FuturesConfig
from marketsim.live.bars import BarWindow
from marketsim.live.journal import Journal
from marketsim.live.orders import Bar
from marketsim.live.paper import PaperBroker
from marketsim.live.risk import RiskLimits
from marketsim.live.trader import Trader, TraderConfig

__all__ = ["Variant", "ABDeployment", "paper_variant", "same_features"]

Decide = Callable[[np.ndarray], Any]


@dataclass
class Variant:
    """One book of the deployment: its name, share of capital, trader and feed."""

    name: str
    share: float
    trader: Trader
    feed: LockstepFeed
    task: asyncio.Task | None = None
    stopped_at: int | None = None
    """The bar count at which this variant stopped trading (None: still trading)."""


def same_features(a: FuturesConfig, b: FuturesConfig) -> bool:
    """Whether two runs' configurations give the same bar features (all fields equal but the
    initial equity), so that their books can share one :class:`BarWindow`."""
    try:
        return bool(dataclasses.replace(a, initial_equity=1.0)
                    == dataclasses.replace(b, initial_equity=1.0))
    except (ValueError, TypeError):  # a funding series: no cheap comparison, do not share
        return False


def paper_variant(name: str, decide: Decide, cfg: FuturesConfig, share: float, bar_ms: int,
                  symbol: str, journal_path: str | Path, limits: RiskLimits | None = None,
                  window: BarWindow | None = None, **trader_options: Any) -> Variant:
    """A paper book with ``share`` of the run's initial equity (the observation's account
    features are relative to it, so the policy sees the same numbers at any size). ``window``:
    another book's window to share (one feature computation per bar for both; only for runs
    with :func:`same_features`)."""
    cfg = dataclasses.replace(cfg, initial_equity=cfg.initial_equity * share)
    window = window if window is not None else BarWindow(cfg, bar_ms)
    broker = PaperBroker(cfg, bar_ms, window=window)
    options = {"settle": True, "client_prefix": f"ab-{name}"[:16], **trader_options}
    config = TraderConfig(symbol=symbol, bar_ms=bar_ms, **options)
    trader = Trader(decide, cfg, broker, Journal(journal_path, fsync=False), config, limits,
                    window)
    return Variant(name, share, trader, LockstepFeed())


class ABDeployment:
    """Drive a champion and a challenger from one bar feed and judge them after every bar.

    Args:
        champion, challenger: the two books (:func:`paper_variant`).
        rule: the A/B settings (:class:`ABRule`).
        journal: where decisions and their numbers go (``ab_start``, ``ab_check`` every
            ``log_every`` bars, ``ab_rollback``, ``ab_proposal``, ``ab_stop``).
        registry: a :class:`~marketsim.deploy.registry.Registry` whose ``challenger`` alias is
            rolled back on a rollback (and ``champion`` promoted with ``auto_promote``); None:
            no registry.
        metrics: a :class:`~marketsim.deploy.exporter.TradingMetrics` to update after each bar.
        log_every: bars between ``ab_check`` journal lines.
    """

    def __init__(self, champion: Variant, challenger: Variant, rule: ABRule, journal: Journal,
                 registry: Any = None, metrics: Any = None, log_every: int = 60) -> None:
        self.champion, self.challenger, self.rule = champion, challenger, rule
        self.journal, self.registry, self.metrics = journal, registry, metrics
        self.monitor = ABMonitor(rule)
        self.log_every = log_every
        self.decision: Verdict | None = None
        self.proposal: Verdict | None = None
        self.bars = 0
        self.psr_min = 1.0
        """The lowest PSR of the challenger once past the warm-up (how close it came)."""
        if metrics is not None:
            for v in self.variants:
                metrics.declare(v.name, v.share)

    @property
    def variants(self) -> tuple[Variant, Variant]:
        """(champion, challenger)."""
        return self.champion, self.challenger

    async def run(self, feed: AsyncIterable[tuple[Bar, bool]],
                  max_bars: int | None = None) -> dict[str, Any]:
        """Trade every bar of ``feed`` with both books; returns the summary."""
        self.journal.write("ab_start", rule=self.rule.to_dict(),
                           shares={v.name: v.share for v in self.variants},
                           journals={v.name: str(v.trader.journal.path) for v in self.variants})
        for v in self.variants:
            v.task = asyncio.ensure_future(v.trader.run(v.feed))
        try:
            async for bar, live in feed:
                if self.champion.task.done():  # its kill switch or an error: nothing to judge by
                    self.journal.write("ab_champion_stopped", bars=self.bars,
                                       halted=self.champion.trader.halted)
                    break
                active = [v for v in self.variants if v.stopped_at is None and not v.task.done()]
                for v in active:
                    v.feed.put(bar, live)
                for v in active:
                    await v.feed.wait_idle(v.task)
                if live:
                    self._after_bar(bar)
                    if max_bars is not None and self.bars >= max_bars:
                        break
        finally:
            for v in self.variants:
                v.feed.close()
            results = await asyncio.gather(*(v.task for v in self.variants),
                                           return_exceptions=True)
        for v in self.variants:
            self._observe(v)
        summary = {"bars": self.bars, "psr_min": self.psr_min, "rule": self.rule.to_dict(),
                   "decision": self.decision.to_dict() if self.decision else None,
                   "proposal": self.proposal.to_dict() if self.proposal else None,
                   "variants": {}}
        for v, res in zip(self.variants, results):
            if isinstance(res, BaseException):
                raise res
            summary["variants"][v.name] = {"share": v.share, "stopped_at": v.stopped_at, **res}
        self.journal.write("ab_stop", summary=summary)
        return summary

    def _observe(self, v: Variant) -> None:
        if self.metrics is not None:
            self.metrics.observe(v.name, v.trader)

    # --8<-- [start:after-bar]
    def _after_bar(self, bar: Bar) -> None:
        """Mark both books, judge, and act on the verdict."""
        self.bars += 1
        for v in self.variants:
            self._observe(v)
        if self.challenger.stopped_at is not None or not self.champion.trader.window.warm:
            return
        eq_b = self.champion.trader.broker.account().equity
        eq_c = self.challenger.trader.broker.account().equity
        verdict = self.monitor.update(eq_b, eq_c)
        if verdict.action != "warmup":
            self.psr_min = min(self.psr_min, verdict.psr)
        if self.metrics is not None:
            self.metrics.observe_ab(verdict)
        numbers = {**verdict.to_dict(), "equity_champion": eq_b, "equity_challenger": eq_c,
                   "bar_open_ms": bar.open_ms}
        if verdict.action == "rollback":
            self.decision = verdict
            self.challenger.stopped_at = self.bars
            self.challenger.trader.retire(f"A/B rollback: {verdict.reason}", bar)
            self.challenger.feed.close()  # it flattens, then its loop ends
            alias = self._registry_rollback(verdict)
            self.journal.write("ab_rollback", **numbers, alias=alias)
        elif verdict.action == "propose":
            self.proposal = verdict
            promoted = self._registry_promote(verdict) if self.rule.auto_promote else None
            self.journal.write("ab_proposal", **numbers, promoted=promoted,
                               command=None if promoted else "python cli.py models promote "
                                                              "challenger")
        elif self.monitor.bars % self.log_every == 0:
            self.journal.write("ab_check", **numbers)
    # --8<-- [end:after-bar]

    def _registry_rollback(self, verdict: Verdict) -> dict[str, Any] | None:
        if self.registry is None:
            return None
        try:
            old, new = self.registry.rollback("challenger", f"A/B: {verdict.reason}")
        except ValueError as e:
            return {"error": str(e)}
        return {"alias": "challenger", "old": old, "new": new}

    def _registry_promote(self, verdict: Verdict) -> dict[str, Any] | None:
        if self.registry is None:
            return None
        try:
            old, new = self.registry.promote("challenger", "champion", f"A/B: {verdict.reason}")
        except ValueError as e:
            return {"error": str(e)}
        return {"alias": "champion", "old": old, "new": new}
