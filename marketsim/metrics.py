"""Performance metrics: pure functions over an equity curve and a trade list.

Conventions (docs/guide/evaluation.md, "Metrics"): the equity curve is a pandas Series with a
tz-aware UTC DatetimeIndex; returns are UTC-daily (the last equity of each UTC day against the
last equity of the previous day, the first day against the curve's first value); a year is 365
days. Every function returns a finite float for every valid input: the edge cases (flat equity,
one day, all losses, equity gone) have defined values listed in each docstring and in the docs.
Any real outcome is valid input: an account that was ruined (equity at 0, at an environment's
floor, or below 0 on a venue that lets an account owe) is measured, and :func:`ruin` says when.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "DAYS_PER_YEAR", "check_equity", "daily_equity", "daily_returns", "total_return",
    "annual_return", "annual_volatility", "sharpe_of_returns", "sharpe", "sortino", "drawdown",
    "max_drawdown",
    "max_drawdown_duration_days", "calmar", "profitable_days", "round_trips", "hit_rate",
    "long_short_split", "cost_totals", "compute_metrics", "ruin",
]

DAYS_PER_YEAR = 365
"""Crypto trades every day: annualise with 365 days (not 252)."""


def check_equity(equity: Any, what: str = "equity") -> pd.Series:
    """Validate an equity curve; TypeError/ValueError naming ``what`` and the problem.

    Returns the curve as float64 in UTC with values below 0 set to 0: an account that owes has
    lost everything, and a return below -100% means nothing (docs/guide/evaluation.md, eq.
    (15); :func:`ruin` reports the lowest raw value).
    """
    if not isinstance(equity, pd.Series):
        raise TypeError(f"{what}: expected a pandas Series, got {type(equity).__name__}")
    if len(equity) == 0:
        raise ValueError(f"{what}: expected at least one value, got an empty Series")
    idx = equity.index
    if not isinstance(idx, pd.DatetimeIndex) or idx.tz is None:
        raise ValueError(f"{what}: expected a tz-aware UTC DatetimeIndex, got {type(idx).__name__}"
                         f"{' (naive)' if isinstance(idx, pd.DatetimeIndex) else ''}")
    if not idx.is_monotonic_increasing:
        raise ValueError(f"{what}: index must be sorted in time")
    x = equity.to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(x))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"{what}: value at {idx[i]} is {x[i]}; expected a finite number")
    if x[0] <= 0:
        raise ValueError(f"{what}: first value is {x[0]}; expected > 0")
    return pd.Series(np.maximum(x, 0.0), index=idx.tz_convert("UTC"))


def daily_equity(equity: pd.Series) -> pd.Series:
    """Last equity of each UTC calendar day that has observations (days without bars are
    skipped, not filled). docs/guide/evaluation.md, eq. (1)."""
    e = check_equity(equity)
    day = e.index.floor("D")
    return e.groupby(day).last()


# --8<-- [start:daily-returns]
def daily_returns(equity: pd.Series) -> pd.Series:
    """UTC-daily simple returns r_d = E_d / E_{d-1} - 1, E_{-1} = the curve's first value.

    docs/guide/evaluation.md, eq. (1). A curve within one day gives one return. Once equity is 0
    later returns are 0 (nothing left to lose).
    """
    e = check_equity(equity)
    d = daily_equity(e)
    prev = np.concatenate([[e.iloc[0]], d.to_numpy()[:-1]])
    cur = d.to_numpy()
    r = np.where(prev > 0, cur / np.where(prev > 0, prev, 1.0) - 1.0, 0.0)
    return pd.Series(r, index=d.index)
# --8<-- [end:daily-returns]


def total_return(equity: pd.Series) -> float:
    """E_T / E_0 - 1 (eq. (2)); -1.0 when equity is gone."""
    e = check_equity(equity)
    return float(e.iloc[-1] / e.iloc[0] - 1.0)


def annual_return(equity: pd.Series) -> float:
    """Geometric annualised return (1 + R)^(365 / n_days) - 1 over n_days UTC days (eq. (3)).

    -1.0 when equity is gone. A short curve annualises wildly: report it with ``n_days``.
    """
    e = check_equity(equity)
    n = len(daily_equity(e))
    growth = e.iloc[-1] / e.iloc[0]
    if growth <= 0:
        return -1.0
    with np.errstate(over="ignore"):
        out = math.exp(min(math.log(growth) * DAYS_PER_YEAR / n, 700.0)) - 1.0
    return float(out)


def _std(r: np.ndarray) -> float:
    return float(np.std(r, ddof=1)) if len(r) >= 2 else 0.0


def annual_volatility(equity: pd.Series) -> float:
    """Sample standard deviation (ddof 1) of daily returns times sqrt(365) (eq. (4)); 0.0 with
    fewer than two days."""
    return _std(daily_returns(equity).to_numpy()) * math.sqrt(DAYS_PER_YEAR)


# --8<-- [start:sharpe]
def sharpe_of_returns(r: np.ndarray, periods_per_year: float = DAYS_PER_YEAR) -> np.ndarray:
    """sqrt(periods_per_year) * mean(r) / std(r) (ddof 1) along the last axis of returns
    (eq. (5); daily returns by default, ``periods_per_year=1`` for the per-bar ratio);
    0 where std is 0 or there are fewer than two returns. The one Sharpe rule: :func:`sharpe`
    and the bootstrap (:mod:`marketsim.evaluation.bootstrap`) both call it."""
    r = np.asarray(r, dtype=np.float64)
    if r.shape[-1] < 2:
        return np.zeros(r.shape[:-1])
    s = np.std(r, axis=-1, ddof=1)
    ok = np.isfinite(s) & (s > 0)
    m = r.mean(axis=-1)
    return np.where(ok, math.sqrt(periods_per_year) * m / np.where(ok, s, 1.0), 0.0)


def sharpe(equity: pd.Series, risk_free: float = 0.0) -> float:
    """sqrt(365) * mean(r - rf) / std(r) over UTC-daily returns (eq. (5)).

    ``risk_free`` is a daily rate. 0.0 when std is 0 (flat equity, a single day, identical
    daily returns): the ratio is undefined there and we report 0 rather than infinity.
    """
    return float(sharpe_of_returns(daily_returns(equity).to_numpy() - risk_free))


def sortino(equity: pd.Series) -> float:
    """sqrt(365) * mean(r) / sqrt(mean(min(r, 0)^2)), the downside RMS over all days (eq. (6)).

    0.0 when there is no losing day (the downside RMS is 0 and the ratio undefined).
    """
    r = daily_returns(equity).to_numpy()
    down = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2)))
    if down <= 0:
        return 0.0
    return float(math.sqrt(DAYS_PER_YEAR) * r.mean() / down)
# --8<-- [end:sharpe]


def drawdown(equity: pd.Series) -> pd.Series:
    """Drawdown curve E_t / max_{s<=t} E_s - 1 (<= 0) at the curve's own resolution (eq. (7))."""
    e = check_equity(equity)
    peak = e.cummax()
    return e / peak - 1.0


def max_drawdown(equity: pd.Series) -> float:
    """min_t (E_t / max_{s<=t} E_s - 1): a negative fraction, 0.0 for a never-falling curve,
    -1.0 when equity is gone (eq. (7))."""
    return float(min(drawdown(equity).min(), 0.0))


def max_drawdown_duration_days(equity: pd.Series) -> float:
    """Longest time, in days, from a peak until equity first regains it (or the curve ends)
    (eq. (8)); 0.0 if equity never falls below a previous peak."""
    e = check_equity(equity)
    x = e.to_numpy()
    t = e.index.as_unit("ns").asi8.astype(np.float64)
    peak = np.maximum.accumulate(x)
    under = x < peak
    best = 0.0
    start: float | None = None
    for i in range(len(x)):
        if under[i] and start is None:
            start = t[i - 1]  # the peak bar (under[0] is always False)
        elif not under[i] and start is not None:
            best = max(best, t[i] - start)
            start = None
    if start is not None:
        best = max(best, t[-1] - start)
    return float(best / 86_400e9)


def calmar(equity: pd.Series) -> float:
    """annual_return / |max_drawdown| (eq. (9)); 0.0 when the maximum drawdown is 0."""
    mdd = max_drawdown(equity)
    if mdd == 0.0:
        return 0.0
    return float(annual_return(equity) / abs(mdd))


def profitable_days(equity: pd.Series) -> float:
    """Share of UTC days with PnL > 0 after fees and funding (the equity includes both)
    (eq. (10)); a flat day is not profitable."""
    r = daily_returns(equity).to_numpy()
    return float(np.mean(r > 0))


def round_trips(equity: pd.Series, position: pd.Series) -> pd.DataFrame:
    """Trade list: one row per maximal run of rows holding a position of one sign.

    ``position[t]`` is the position held over the interval that ends at row t (the one that
    earned E_t - E_{t-1}). A trip held over rows i..j earns pnl = E_j - E_{i-1} (E_{i-1} = E_0
    when i = 0): the opening costs and funding are included; the closing trade's costs fall in
    the row after j (the next interval). Columns: entry_time (row i-1), exit_time (row j),
    side (+1 long, -1 short), pnl, return (pnl / E_{i-1}). docs/guide/evaluation.md, eq. (11).
    """
    e = check_equity(equity)
    if not isinstance(position, pd.Series) or len(position) != len(e):
        got = len(position) if hasattr(position, "__len__") else "?"
        raise ValueError(f"position: expected a Series as long as equity ({len(e)}), got "
                         f"{type(position).__name__} of length {got}")
    side = np.sign(position.to_numpy(dtype=np.float64))
    x = e.to_numpy()
    rows = []
    i, n = 0, len(side)
    while i < n:
        if side[i] == 0:
            i += 1
            continue
        j = i
        while j + 1 < n and side[j + 1] == side[i]:
            j += 1
        b = max(i - 1, 0)
        pnl = x[j] - x[b]
        rows.append((e.index[b], e.index[j], int(side[i]), float(pnl),
                     float(pnl / x[b]) if x[b] > 0 else 0.0))
        i = j + 1
    return pd.DataFrame(rows, columns=["entry_time", "exit_time", "side", "pnl", "return"])


def hit_rate(trades: pd.DataFrame) -> float:
    """Share of round trips with pnl > 0 (eq. (11)); 0.0 with no trips."""
    if len(trades) == 0:
        return 0.0
    return float(np.mean(trades["pnl"].to_numpy() > 0))


def long_short_split(trades: pd.DataFrame) -> dict[str, float]:
    """Trip counts, PnL and hit rates of long and short trips separately."""
    out: dict[str, float] = {}
    for name, sgn in (("long", 1), ("short", -1)):
        t = trades[trades["side"] == sgn] if len(trades) else trades
        out[f"{name}_trades"] = float(len(t))
        out[f"{name}_pnl"] = float(t["pnl"].sum()) if len(t) else 0.0
        out[f"{name}_hit_rate"] = hit_rate(t)
    return out


def cost_totals(bars: pd.DataFrame) -> dict[str, float]:
    """Sums of the per-bar columns fees, funding, slippage, turnover that ``bars`` has.

    ``turnover`` per bar is traded notional / equity before the trade; its sum counts how many
    times the account's equity was traded (eq. (12)). Funding is signed: > 0 means paid.
    """
    out: dict[str, float] = {}
    for col in ("fees", "funding", "slippage", "turnover"):
        if col in bars:
            v = bars[col].to_numpy(dtype=np.float64)
            out[col] = float(np.sum(v[np.isfinite(v)]))
    return out


def compute_metrics(equity: pd.Series, bars: pd.DataFrame | None = None) -> dict[str, float]:
    """Every metric of an equity curve; with ``bars`` (same index; optional columns position,
    fees, funding, slippage, turnover) also costs, turnover, hit rate and the long/short split.
    """
    e = check_equity(equity)
    out = {
        "total_return": total_return(e),
        "annual_return": annual_return(e),
        "annual_volatility": annual_volatility(e),
        "sharpe": sharpe(e),
        "sortino": sortino(e),
        "max_drawdown": max_drawdown(e),
        "max_drawdown_days": max_drawdown_duration_days(e),
        "calmar": calmar(e),
        "profitable_days": profitable_days(e),
        "n_days": float(len(daily_equity(e))),
        "n_bars": float(len(e)),
        "final_equity": float(e.iloc[-1]),
    }
    if bars is not None:
        out.update(cost_totals(bars))
        if "position" in bars:
            trades = round_trips(e, bars["position"])
            out["trades"] = float(len(trades))
            out["hit_rate"] = hit_rate(trades)
            out.update(long_short_split(trades))
    return out


# --8<-- [start:ruin]
def ruin(equity: pd.Series, floor: float = 0.0) -> dict[str, Any]:
    """Whether and when the account was ruined: the first bar with equity at or below ``floor``.

    ``floor`` is 0, or an environment's equity floor (the futures environment ends its episode
    at ``equity_floor * initial_equity``). Returns ``ruined`` (bool), ``ruined_at`` (ISO time
    of that bar, None if never) and ``lowest_equity`` (the lowest value as given, below 0 if
    the account owed). docs/guide/evaluation.md, eq. (15).
    """
    if not isinstance(equity, pd.Series):
        raise TypeError(f"equity: expected a pandas Series, got {type(equity).__name__}")
    check_equity(equity)
    x = equity.to_numpy(dtype=np.float64)
    hit = np.flatnonzero(x <= floor)
    when = equity.index[int(hit[0])].tz_convert("UTC").isoformat() if hit.size else None
    return {"ruined": bool(hit.size), "ruined_at": when, "lowest_equity": float(x.min())}
# --8<-- [end:ruin]
