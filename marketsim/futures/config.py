"""Configuration of the futures environment: every keyword argument, validated once."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import pandas as pd

from marketsim.futures.margin import BINANCE_BTCUSDT_BRACKETS


@dataclass(frozen=True)
class FuturesConfig:
    """Keyword arguments of ``CryptoFuturesEnv`` other than ``data``, ``data_seed``, ``render_mode``.

    Rates are fractions (0.0005 = 0.05%). Prices and equity are in the quote currency. Every
    cost rate (fees, spread, impact, liquidation fee, funding) is set here and nowhere else; the
    rules that charge them are :mod:`marketsim.futures.costs`.
    """

    action_type: str = "continuous"
    """"continuous": Box(-1, 1, (1,)), target position as a fraction of ``max_leverage``
    times equity; "discrete": Discrete(2 * len(discrete_sizes) + 1), short sizes, flat, long."""
    discrete_sizes: tuple[float, ...] = (1.0,)
    """Position fractions in (0, 1] offered on each side by the discrete action space."""
    sizing: str = "risk"
    """"leverage": notional = a * max_leverage * equity, isolated leverage = max_leverage;
    "risk": margin = |a| * risk_fraction * equity and leverage set so that the liquidation
    price sits ``stop_distance`` from entry (docs/marketsim/futures.md, eq. (9))."""
    risk_fraction: float = 0.01
    """Fraction of equity risked per trade when ``sizing="risk"`` (the source document: 1-2%).
    Risk sizing is the default: a full position risks 1% of equity, with the liquidation price at
    the stop, so no single trade can ruin the account (docs/marketsim/futures.md, "Defaults")."""
    stop_distance: float = 0.02
    """Distance of the intended stop from entry, as a price fraction, when ``sizing="risk"``."""
    max_leverage: float = 10.0
    """Largest position notional as a multiple of equity; the isolated leverage in "leverage"."""
    initial_equity: float = 10_000.0
    """Account equity at reset (quote currency)."""
    order_type: str = "market"
    """"market": fill at the close with taker fee and slippage; "limit": a limit order at
    close * (1 -/+ limit_offset) that fills, with maker fee, only if the next bar trades through."""
    limit_offset: float = 0.0
    """Limit price distance from the close (fraction), in the favourable direction."""
    maker_fee: float = 0.0002
    """Maker fee rate (Binance USDT-M tier 0: 0.02%)."""
    taker_fee: float = 0.0005
    """Taker fee rate (Binance USDT-M tier 0: 0.05%)."""
    half_spread: float = 0.00005
    """Half the bid-ask spread as a price fraction, paid by every market order."""
    impact_coef: float = 0.7
    """Y of the square-root impact ``Y * sigma * sqrt(Q / V)`` (literature: 0.5 to 1)."""
    liquidation_fee: float = 0.005
    """Liquidation clearance fee as a fraction of the liquidated notional, capped so that an
    isolated position never loses more than its margin."""
    funding: float | pd.Series = 0.0001
    """Funding rate per 8 h event (longs pay when > 0), or a pandas Series of rates indexed by
    UTC time (each event pays the latest rate at or before it; 0 before the series starts)."""
    brackets: tuple[tuple[float, float, float], ...] = BINANCE_BTCUSDT_BRACKETS
    """Maintenance-margin brackets: rows (notional floor, mmr, max leverage)."""
    window: int = 16
    """Number of past bars (current bar included) in the observation's feature window."""
    vol_window: int = 32
    """Bars in the rolling realised volatility, mean volume and volume z-score."""
    episode_length: int | None = 2048
    """Steps after which an episode is truncated; None: only at the end of the data."""
    min_trade_fraction: float = 0.01
    """The no-trade band: trades smaller than this fraction of a full position (|action| = 1 in
    the sizing mode) are skipped, so a held target is not rebalanced every bar; closing to flat
    always trades."""
    equity_floor: float = 0.01
    """The episode terminates when equity <= equity_floor * initial_equity (equity is gone)."""
    drawdown_coef: float = 1.0
    """k of the drawdown penalty ``-k * max(0, equity_threshold - min_equity / initial)``."""
    equity_threshold: float = 0.9
    """Threshold of the drawdown penalty, as a fraction of initial equity."""
    turnover_coef: float = 0.0005
    """Turnover penalty per unit of traded notional / equity."""

    def __post_init__(self) -> None:
        """Check every field and raise ValueError naming the field and what was expected."""
        if self.action_type not in ("continuous", "discrete"):
            raise ValueError(
                f"action_type: expected 'continuous' or 'discrete', got {self.action_type!r}"
            )
        if self.sizing not in ("leverage", "risk"):
            raise ValueError(f"sizing: expected 'leverage' or 'risk', got {self.sizing!r}")
        if self.order_type not in ("market", "limit"):
            raise ValueError(f"order_type: expected 'market' or 'limit', got {self.order_type!r}")
        funding = self.funding
        if not isinstance(funding, pd.Series):  # a Series' rows are checked with the data
            if isinstance(funding, bool) or not isinstance(funding, (int, float)):
                raise TypeError("funding: expected a number (rate per 8 h) or a pandas Series, "
                                f"got {type(funding).__name__}")
            if not math.isfinite(funding):
                raise ValueError(f"funding: expected a finite rate, got {funding}")
            object.__setattr__(self, "funding", float(funding))
        sizes = tuple(float(s) for s in self.discrete_sizes)
        if not sizes or any(not (0.0 < s <= 1.0) for s in sizes):
            raise ValueError(f"discrete_sizes: expected values in (0, 1], got {sizes}")
        object.__setattr__(self, "discrete_sizes", tuple(sorted(sizes)))
        positive = ("max_leverage", "initial_equity", "stop_distance", "risk_fraction")
        non_negative = (
            "limit_offset", "maker_fee", "taker_fee", "half_spread", "impact_coef",
            "liquidation_fee", "min_trade_fraction", "equity_floor", "drawdown_coef",
            "equity_threshold", "turnover_coef",
        )
        for name in positive + non_negative:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name}: expected a number, got {type(value).__name__}")
            if not math.isfinite(value) or value < 0 or (name in positive and value == 0):
                need = "> 0" if name in positive else ">= 0"
                raise ValueError(f"{name}: expected a finite number {need}, got {value}")
            object.__setattr__(self, name, float(value))
        if self.stop_distance >= 1.0:
            raise ValueError(f"stop_distance: expected < 1, got {self.stop_distance}")
        if self.equity_floor >= 1.0:
            raise ValueError(f"equity_floor: expected < 1, got {self.equity_floor}")
        for name in ("window", "vol_window"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 2:
                raise ValueError(f"{name}: expected an integer >= 2, got {value!r}")
        ep = self.episode_length
        if ep is not None and (isinstance(ep, bool) or not isinstance(ep, int) or ep < 1):
            raise ValueError(f"episode_length: expected None or an integer >= 1, got {ep!r}")
        rows = tuple(tuple(float(v) for v in r) for r in self.brackets)
        object.__setattr__(self, "brackets", rows)

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> FuturesConfig:
        """Build from keyword arguments, rejecting unknown names with the list of known ones."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise TypeError(
                f"CryptoFuturesEnv: unknown keyword(s) {unknown}; known: {sorted(known)}"
            )
        return cls(**kwargs)
