"""How reports show numbers to a person: one format per kind of metric, everywhere.

report.json keeps the raw figures (fractions, full precision: machine-readable, conventions in
its ``conventions``); the HTML pages and the terminal tables of ``backtest``, ``walkforward``
and ``compare`` show them through :func:`cell`:

* returns, drawdowns, volatility and shares as percentages with two decimals (``-12.34%``);
* ratios (Sharpe, Sortino, Calmar) and turnover with two decimals;
* money (fees, funding, slippage, equity, PnL) with two decimals and thousands separators;
* counts as integers, durations in days with one decimal.

An annualised figure of a short window is an extrapolation, not evidence: ``(1 + R)^(365/n)``
turns +10% over 30 days into +219% a year. Below ``min_days`` UTC days (default
:data:`MIN_ANNUAL_DAYS`) the annualised metrics show ``n/a (window < 90 days)`` with the raw
figure beside it. docs/guide/evaluation.md, "How to read a report".
"""

from __future__ import annotations

import html
import math
from typing import Any

import pandas as pd

__all__ = ["MIN_ANNUAL_DAYS", "ANNUALISED", "fmt", "cell", "annualised_shown",
           "text_table", "conventions_html", "settings_html", "trades_html",
           "DISPLAY_CONVENTIONS"]

MIN_ANNUAL_DAYS = 90
"""Shortest window (UTC days with bars) whose annualised metrics are shown."""

ANNUALISED = ("annual_return", "annual_volatility", "sharpe", "sharpe_lo", "sharpe_hi",
              "sortino", "calmar")
"""Metrics that extrapolate to a year (by 365 days, or sqrt(365))."""

PERCENT = {"total_return", "annual_return", "annual_volatility", "max_drawdown",
           "profitable_days", "hit_rate", "long_hit_rate", "short_hit_rate", "return"}
RATIO = {"sharpe", "sharpe_lo", "sharpe_hi", "sortino", "calmar", "turnover"}
MONEY = {"fees", "funding", "slippage", "final_equity", "lowest_equity", "long_pnl",
         "short_pnl", "pnl", "initial_equity"}
COUNT = {"trades", "ruined_folds", "n_days", "n_bars", "long_trades", "short_trades", "bars"}
DAYS = {"max_drawdown_days", "days"}

DISPLAY_CONVENTIONS = {
    "percentages": "returns, drawdowns, volatility, profitable days and hit rates are shown "
                   "as percentages with two decimals; report.json holds them as fractions",
    "ratios": "Sharpe, Sortino, Calmar and turnover with two decimals",
    "money": "fees, funding, slippage, equity and PnL in the quote currency, two decimals",
}


def fmt(name: str, value: Any) -> str:
    """``value`` of metric ``name`` in its display format ('' for None)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if not isinstance(value, (int, float)):
        return str(value)
    v = float(value)
    if not math.isfinite(v):
        return "n/a"
    if name in PERCENT:
        return f"{100 * v:,.2f}%"
    if name in RATIO:
        return f"{v:,.2f}"
    if name in MONEY:
        return f"{v:,.2f}"
    if name in COUNT:
        return f"{v:,.0f}"
    if name in DAYS:
        return f"{v:,.1f}"
    return f"{v:,.4g}"


def annualised_shown(metrics: dict[str, Any], min_days: float = MIN_ANNUAL_DAYS) -> bool:
    """Whether the window is long enough to show annualised figures."""
    n = metrics.get("n_days")
    return n is None or float(n) >= min_days


def cell(name: str, metrics: dict[str, Any], min_days: float = MIN_ANNUAL_DAYS) -> str:
    """The display text of metric ``name`` of one column of metrics."""
    text = fmt(name, metrics.get(name))
    if name in ANNUALISED and text and not annualised_shown(metrics, min_days):
        return f"n/a (window < {min_days:g} days; raw {text})"
    return text


def text_table(columns: dict[str, dict[str, Any]], rows: tuple[str, ...],
               min_days: float = MIN_ANNUAL_DAYS) -> str:
    """A plain-text table for the terminal: one row per metric, one column per strategy/run."""
    names = list(columns)
    rows = tuple(r for r in rows if any(r in columns[n] for n in names))
    cells = [[cell(r, columns[n], min_days) for n in names] for r in rows]
    w0 = max([len("metric"), *map(len, rows)])
    widths = [max(len(n), *(len(c[j]) for c in cells)) for j, n in enumerate(names)]
    lines = ["  ".join([f"{'metric':<{w0}}", *(f"{n:>{w}}" for n, w in zip(names, widths))])]
    lines.append("  ".join(["-" * w0, *("-" * w for w in widths)]))
    for r, c in zip(rows, cells):
        lines.append("  ".join([f"{r:<{w0}}", *(f"{x:>{w}}" for x, w in zip(c, widths))]))
    return "\n".join(lines)


def _dl(items: dict[str, Any]) -> str:
    return "<dl class='conventions'>" + "".join(
        f"<dt>{html.escape(str(k))}</dt><dd>{html.escape(str(v))}</dd>"
        for k, v in items.items()) + "</dl>"


def conventions_html(conventions: dict[str, Any], min_days: float = MIN_ANNUAL_DAYS) -> str:
    """The metric conventions of a report, and how the page shows them."""
    rule = (f"annual_return, annual_volatility, Sharpe, Sortino and Calmar are shown only for "
            f"windows of at least {min_days:g} UTC days; a shorter window shows "
            f"'n/a (window < {min_days:g} days)' and the raw figure, which extrapolates the "
            "window to a year and is not evidence")
    return _dl({**conventions, "annualised": rule, **DISPLAY_CONVENTIONS})


def _kv_table(items: dict[str, Any], table_id: str) -> str:
    body = "".join(f"<tr><th scope='row'>{html.escape(str(k))}</th>"
                   f"<td>{html.escape(str(v))}</td></tr>" for k, v in items.items())
    return f"<table id='{table_id}' class='settings'><tbody>{body}</tbody></table>"


def settings_html(settings: dict[str, dict[str, Any]]) -> str:
    """Groups of settings (name -> {key: value}), one small table each."""
    out = []
    for i, (group, items) in enumerate(settings.items()):
        if items:
            out.append(f"<h3>{html.escape(group)}</h3>{_kv_table(items, f'settings-{i}')}")
    return "".join(out)


def trades_html(trades: pd.DataFrame, n: int = 10) -> str:
    """The ``n`` largest round trips by |PnL| as an HTML table (``id='trades'``)."""
    if len(trades) == 0:
        return "<p>No round trip: the agent never held a position.</p>"
    top = trades.reindex(trades["pnl"].abs().sort_values(ascending=False).index).head(n)
    cols = [("entry_time", "entry (UTC)"), ("exit_time", "exit (UTC)"), ("side", "side"),
            ("days", "days held"), ("entry_price", "entry price"), ("exit_price", "exit price"),
            ("pnl", "PnL"), ("return", "return")]
    cols = [(k, label) for k, label in cols if k in top]
    head = "".join(f"<th>{label}</th>" for _, label in cols)
    rows = []
    for _, t in top.iterrows():
        cells = []
        for k, _ in cols:
            v = t[k]
            if k == "side":
                text = "long" if v > 0 else "short"
            elif k.endswith("_time"):
                text = pd.Timestamp(v).strftime("%Y-%m-%d %H:%M")
            elif k.endswith("_price"):
                text = f"{float(v):,.2f}"
            else:
                text = fmt(k, v)
            cells.append(f"<td>{html.escape(text)}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return (f"<table id='trades' class='metrics'><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")
