"""Prometheus metrics of trading sessions: per variant (``champion``, ``challenger``, or the one
book of a plain session), equity, PnL, drawdown, position, exposure, orders, latencies and the
spread between actual and theoretical execution; and the A/B comparison's numbers.

The metrics live in their own ``CollectorRegistry`` (not the process-wide default), served by
:func:`serve` on 127.0.0.1 unless told otherwise. :meth:`TradingMetrics.observe` reads a
:class:`~marketsim.live.trader.Trader`'s public state (its broker's account, ``stats``,
``latency``, ``orders``) after each bar: the trader itself is not changed. Every name, type and
label is listed in :data:`METRICS` (docs/guide/deployment.md prints the same table, and a test
checks that each appears on the exporter).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

__all__ = ["METRICS", "LATENCY_BUCKETS", "SPREAD_BUCKETS", "TradingMetrics", "observing", "serve"]

LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.4, 0.45, 0.5, 0.55, 0.6,
                   0.75, 1.0, 2.0, 5.0)
"""Seconds; dense around the 500 ms order budget (an order timeout plus its cancel)."""
SPREAD_BUCKETS = (-50.0, -20.0, -10.0, -5.0, -2.0, -1.0, 0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0)
"""Basis points; positive: the fill was worse than the decision's price."""

# --8<-- [start:metrics]
METRICS: dict[str, tuple[str, tuple[str, ...], str]] = {
    # name: (type, labels, meaning)
    "marketsim_equity": ("gauge", ("variant",), "account equity, quote currency"),
    "marketsim_pnl": ("gauge", ("variant",), "equity minus the session's first equity"),
    "marketsim_drawdown": ("gauge", ("variant",), "1 - equity / peak equity (fraction)"),
    "marketsim_position": ("gauge", ("variant",), "signed position, base units"),
    "marketsim_exposure": ("gauge", ("variant",), "abs(position) x price / equity"),
    "marketsim_capital_share": ("gauge", ("variant",), "fraction of the capital the book has"),
    "marketsim_bars_total": ("counter", ("variant",), "closed bars processed"),
    "marketsim_decisions_total": ("counter", ("variant",), "decisions taken"),
    "marketsim_orders_placed_total": ("counter", ("variant",), "orders sent"),
    "marketsim_orders_filled_total": ("counter", ("variant",), "fill events"),
    "marketsim_orders_cancelled_total": ("counter", ("variant",), "orders cancelled"),
    "marketsim_cancel_timeouts_total": ("counter", ("variant",),
                                        "cancels not confirmed in cancel_timeout (unknown)"),
    "marketsim_decision_latency_seconds": ("histogram", ("variant",),
                                           "bar arrival to action and target"),
    "marketsim_cancel_latency_seconds": ("histogram", ("variant",),
                                         "order timeout to cancel resolved"),
    "marketsim_execution_spread_bps": ("histogram", ("variant",),
                                       "fill price vs the decision's close, signed so that "
                                       "positive is worse (basis points)"),
    "marketsim_halted": ("gauge", ("variant",), "1 once the book stopped (kill switch, rollback)"),
    "marketsim_ab_sharpe": ("gauge", ("variant",), "Sharpe ratio per bar over the window, eq. (2)"),
    "marketsim_ab_benchmark_sharpe": ("gauge", (), "SR* of eq. (5)"),
    "marketsim_ab_psr": ("gauge", (), "PSR of the challenger against SR*, eq. (4)"),
    "marketsim_ab_window_bars": ("gauge", (), "returns in the comparison window"),
    "marketsim_ab_rollbacks_total": ("counter", (), "challengers rolled back"),
    "marketsim_ab_promotion_proposals_total": ("counter", (), "challengers proposed for promotion"),
}
# --8<-- [end:metrics]


class TradingMetrics:
    """The trading metrics in a registry of their own; ``observe(variant, trader)`` after a bar.

    Args:
        registry: where the metrics live (a new ``CollectorRegistry`` by default).
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.m: dict[str, Any] = {}
        for name, (kind, labels, doc) in METRICS.items():
            base = name[:-len("_total")] if kind == "counter" else name
            if kind == "gauge":
                self.m[name] = Gauge(name, doc, labels, registry=self.registry)
            elif kind == "counter":
                self.m[name] = Counter(base, doc, labels, registry=self.registry)
            else:
                buckets = SPREAD_BUCKETS if "spread" in name else LATENCY_BUCKETS
                self.m[name] = Histogram(name, doc, labels, registry=self.registry,
                                         buckets=buckets)
        self._seen: dict[str, dict[str, Any]] = {}

    def _inc(self, name: str, variant: str, now: float) -> None:
        seen = self._seen[variant]
        delta = now - seen.get(name, 0)
        if delta > 0:
            self.m[name].labels(variant).inc(delta)
        seen[name] = now

    def _new(self, key: str, variant: str, values: list[float]) -> list[float]:
        seen = self._seen[variant]
        start = seen.get(key, 0)
        seen[key] = len(values)
        return values[start:]

    def declare(self, variant: str, share: float) -> None:
        """Make every per-variant series exist (at zero) before the first bar."""
        self._seen.setdefault(variant, {})
        for name, (_, labels, _) in METRICS.items():
            if labels == ("variant",):
                self.m[name].labels(variant)
        self.m["marketsim_capital_share"].labels(variant).set(share)

    # --8<-- [start:observe]
    def observe(self, variant: str, trader: Any) -> None:
        """Read a trader's account, counters, new latencies and new fills into the metrics."""
        self._seen.setdefault(variant, {})
        seen = self._seen[variant]
        acc = trader.broker.account()
        first = trader.first_equity if trader.first_equity is not None else acc.equity
        peak = seen["peak"] = max(seen.get("peak", acc.equity), acc.equity)
        g = self.m
        g["marketsim_equity"].labels(variant).set(acc.equity)
        g["marketsim_pnl"].labels(variant).set(acc.equity - first)
        g["marketsim_drawdown"].labels(variant).set(1.0 - acc.equity / peak if peak > 0 else 0.0)
        g["marketsim_position"].labels(variant).set(acc.qty)
        price = trader.window.last.close if getattr(trader.window, "last", None) else 0.0
        g["marketsim_exposure"].labels(variant).set(
            abs(acc.qty) * price / acc.equity if acc.equity > 0 else 0.0)
        g["marketsim_halted"].labels(variant).set(1.0 if trader.halted else 0.0)
        for stat, name in (("bars", "marketsim_bars_total"),
                           ("decisions", "marketsim_decisions_total"),
                           ("orders", "marketsim_orders_placed_total"),
                           ("fills", "marketsim_orders_filled_total"),
                           ("cancels", "marketsim_orders_cancelled_total"),
                           ("cancel_unknown", "marketsim_cancel_timeouts_total")):
            self._inc(name, variant, trader.stats.get(stat, 0))
        for key, name in (("decision_ms", "marketsim_decision_latency_seconds"),
                          ("timeout_to_cancel_done_ms", "marketsim_cancel_latency_seconds")):
            for ms in self._new(key, variant, trader.latency.get(key, [])):
                g[name].labels(variant).observe(ms / 1000.0)
        done = seen.setdefault("spread_done", set())
        for cid, rec in trader.orders.items():
            if cid in done or not rec.terminal:
                continue
            done.add(cid)
            if rec.filled > 0 and rec.avg_price > 0 and rec.decision_close > 0:
                sign = 1.0 if rec.request.side == "buy" else -1.0
                bps = sign * (rec.avg_price / rec.decision_close - 1.0) * 1e4
                g["marketsim_execution_spread_bps"].labels(variant).observe(bps)
    # --8<-- [end:observe]

    def observe_ab(self, verdict: Any) -> None:
        """The A/B comparison's numbers (a :class:`~marketsim.deploy.ab.Verdict`)."""
        g = self.m
        g["marketsim_ab_sharpe"].labels("champion").set(verdict.sr_champion)
        g["marketsim_ab_sharpe"].labels("challenger").set(verdict.sr_challenger)
        g["marketsim_ab_benchmark_sharpe"].set(verdict.benchmark)
        g["marketsim_ab_psr"].set(verdict.psr)
        g["marketsim_ab_window_bars"].set(verdict.n)
        if verdict.action == "rollback":
            g["marketsim_ab_rollbacks_total"].inc()
        elif verdict.action == "propose":
            g["marketsim_ab_promotion_proposals_total"].inc()


async def observing(feed: Any, trader: Any, metrics: TradingMetrics,
                    variant: str = "main") -> Any:
    """``feed`` passed through unchanged, with ``metrics.observe(variant, trader)`` each time
    the trader comes back for the next bar (it has finished the last one) and at the end: a
    plain ``trade`` session is monitored without changing the trader."""
    metrics.declare(variant, 1.0)
    try:
        async for item in feed:
            yield item
            metrics.observe(variant, trader)
    finally:
        metrics.observe(variant, trader)
        closer = getattr(feed, "aclose", None)
        if closer is not None:  # the trader closes the feed it was given: close the real one
            await closer()


def serve(registry: CollectorRegistry, port: int = 9108, addr: str = "127.0.0.1") -> Any:
    """Serve ``registry`` at ``http://addr:port/metrics`` from a daemon thread; returns the
    server (``.shutdown()`` stops it). ``port`` 0 picks a free port (``server.server_port``)."""
    server, thread = start_http_server(port, addr=addr, registry=registry)
    server.thread = thread  # type: ignore[attr-defined]
    return server

