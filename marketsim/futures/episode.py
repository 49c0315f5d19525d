"""An episode's account in money: what a trader asks of a finished episode.

The futures environments report, for every episode that ends, its final equity, return in %,
maximum drawdown in %, number of trades, fees, funding, turnover and liquidations, and whether
the account was ruined (equity at or below the floor). They go into ``info["episode_metrics"]``
at the episode's last step, with their units in the environment's
``metadata["episode_metric_units"]``: the engine logs them per episode (TensorBoard
``episode/<name>``), averages them over the evaluation episodes and prints them with units
(docs/marketsim/futures.md, "An episode in money").

The ledger runs on the kernel's operation set (``ops``), so the single environment (floats) and
the batched one (arrays of N) keep it with the same lines.
"""

from __future__ import annotations

from typing import Any

from marketsim.futures.kernel import State

__all__ = ["EPISODE_METRIC_UNITS", "EpisodeLedger"]

EPISODE_METRIC_UNITS = {
    "final_equity": "USDT", "return_pct": "%", "max_drawdown_pct": "%", "trades": "",
    "fees": "USDT", "funding": "USDT", "turnover": "x equity", "liquidations": "", "ruined": "",
}
"""Episode metrics and their units (prices and equity are in the quote currency, USDT for the
USDT-margined perpetuals this environment models)."""


class EpisodeLedger:
    """Running peak equity, maximum drawdown, trade and liquidation counts of the current
    episode of one environment (floats) or of N (arrays)."""

    def __init__(self, ops: Any, initial_equity: float, equity_floor: float, zeros: Any):
        self.ops, self.initial, self.floor = ops, float(initial_equity), float(equity_floor)
        self.peak = zeros + self.initial
        self.max_drawdown = zeros * 0.0
        self.trades = zeros * 0
        self.liquidations = zeros * 0
        self.turnover = zeros * 0.0

    def restart(self, rows: Any = None) -> None:
        """Fresh episodes for ``rows`` (all when None)."""
        if rows is None:
            self.peak, self.max_drawdown = self.peak * 0 + self.initial, self.max_drawdown * 0
            self.trades, self.liquidations = self.trades * 0, self.liquidations * 0
            self.turnover = self.turnover * 0
            return
        self.peak[rows], self.max_drawdown[rows] = self.initial, 0.0
        self.trades[rows], self.liquidations[rows], self.turnover[rows] = 0, 0, 0.0

    # --8<-- [start:ledger-record]
    def record(self, state: State) -> None:
        """Fold in one step: drawdown from the running peak (docs/marketsim/futures.md,
        eq. (20): ``dd_t = 1 - E_t / max_{s<=t} E_s``), trades, liquidations, turnover."""
        ops = self.ops
        self.peak = ops.maximum(self.peak, state.equity)
        self.max_drawdown = ops.maximum(self.max_drawdown, 1.0 - state.equity / self.peak)
        self.trades = self.trades + (state.trade_qty != 0)
        self.liquidations = self.liquidations + state.liquidated
        self.turnover = self.turnover + state.turnover
    # --8<-- [end:ledger-record]

    def metrics(self, state: State) -> dict[str, Any]:
        """The episode's figures (floats, or arrays of N) in the order of their units."""
        equity = state.equity
        return {
            "final_equity": equity,
            "return_pct": 100.0 * (equity / self.initial - 1.0),
            "max_drawdown_pct": 100.0 * self.max_drawdown,
            "trades": self.trades * 1.0,
            "fees": state.fees_long + state.fees_short,
            "funding": state.funding_long + state.funding_short,
            "turnover": self.turnover * 1.0,
            "liquidations": self.liquidations * 1.0,
            "ruined": (equity <= self.floor * self.initial) * 1.0,
        }
