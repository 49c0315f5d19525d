"""Writing evaluation reports: rounded JSON, CSV, PNG plots (matplotlib Agg) and an HTML page.

Every file is written atomically. ``report.json`` is byte-identical for identical inputs: keys
sorted, floats rounded to 10 significant digits, no wall-clock time inside.
"""

from __future__ import annotations

import html
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rlcore.io import atomic_write_bytes, atomic_write_text

__all__ = ["SIG_DIGITS", "round_floats", "write_json", "write_csv", "plot_backtest",
           "plot_curves", "write_html", "METRIC_ROWS"]

SIG_DIGITS = 10
"""Significant digits kept in report.json (identical runs give identical bytes)."""

METRIC_ROWS = ("total_return", "annual_return", "annual_volatility", "sharpe", "sharpe_lo",
               "sharpe_hi", "sortino", "calmar", "max_drawdown", "max_drawdown_days",
               "profitable_days", "hit_rate", "trades", "turnover", "fees", "funding",
               "slippage", "final_equity", "n_days", "ruined", "ruined_at", "ruined_folds")
"""Metrics shown in HTML tables, in this order."""


def round_floats(obj: Any, digits: int = SIG_DIGITS) -> Any:
    """Recursively round floats to ``digits`` significant digits; non-finite -> None."""
    if isinstance(obj, dict):
        return {str(k): round_floats(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [round_floats(v, digits) for v in obj]
    if isinstance(obj, (np.floating, float)) and not isinstance(obj, bool):
        x = float(obj)
        if not math.isfinite(x):
            return None
        return float(f"{x:.{digits}g}") + 0.0  # + 0.0 turns -0.0 into 0.0
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def write_json(path: str | Path, obj: Any) -> Path:
    """Atomically write rounded, key-sorted, indented JSON; returns the path."""
    path = Path(path)
    text = json.dumps(round_floats(obj), indent=2, sort_keys=True, allow_nan=False) + "\n"
    atomic_write_text(path, text)
    return path


def write_csv(path: str | Path, df: pd.DataFrame) -> Path:
    """Atomically write a frame as CSV (index written; floats with 10 significant digits)."""
    path = Path(path)
    atomic_write_text(path, df.to_csv(float_format="%.10g", lineterminator="\n"))
    return path


def _save_png(fig: Any, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    import matplotlib.pyplot as plt

    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path


def _mpl():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_backtest(frames: dict[str, pd.DataFrame], path: str | Path, title: str,
                  markers: list[pd.Timestamp] | None = None) -> Path:
    """Three panels sharing the time axis: equity of every frame, drawdown, position.

    ``frames`` maps a name (agent first) to a per-bar frame with ``equity`` and ``position``;
    ``markers`` draws vertical lines (walk-forward fold boundaries).
    """
    plt = _mpl()
    fig, ax = plt.subplots(3, 1, figsize=(10, 7.5), sharex=True,
                           gridspec_kw={"height_ratios": [3, 1.5, 1.5]})
    for name, f in frames.items():
        e = f["equity"]
        ax[0].plot(e.index, e.to_numpy(), label=name, lw=1.2 if name == "agent" else 0.9)
        dd = e / e.cummax() - 1.0  # docs/guide/evaluation.md, eq. (7)
        ax[1].plot(dd.index, 100 * dd.to_numpy(), label=name, lw=0.9)
    main = next(iter(frames.values()))
    price = main["price"] if "price" in main else None
    notional = main["position"] * (price if price is not None else 1.0) / main["equity"].clip(
        lower=1e-12)
    ax[2].plot(notional.index, notional.to_numpy(), color="tab:purple", lw=0.8, drawstyle="steps")
    lo = min(float(f["equity"].min()) for f in frames.values())
    hi = max(float(f["equity"].max()) for f in frames.values())
    if lo > 0 and hi / lo > 5:  # a collapse or a boom: ratios read better on a log axis
        ax[0].set_yscale("log")
    ax[0].set_ylabel("equity")
    ax[0].legend(loc="best", fontsize=8)
    ax[0].set_title(title, fontsize=10)
    ax[1].set_ylabel("drawdown %")
    ax[2].set_ylabel(f"{next(iter(frames))}\nnotional/equity")
    for m in markers or []:
        for a in ax:
            a.axvline(m, color="grey", lw=0.6, ls=":")
    for a in ax:
        a.grid(alpha=0.3)
    fig.tight_layout()
    return _save_png(fig, Path(path))


def plot_curves(curves: dict[str, pd.Series], path: str | Path, title: str,
                ylabel: str = "equity / initial") -> Path:
    """One panel of several (normalised) equity curves (run comparison)."""
    plt = _mpl()
    fig, ax = plt.subplots(figsize=(10, 4.5))
    for name, s in curves.items():
        ax.plot(s.index, s.to_numpy(), label=name, lw=1.0)
    lo = min(float(s.min()) for s in curves.values())
    hi = max(float(s.max()) for s in curves.values())
    if lo > 0 and hi / lo > 5:  # curves that fell (or rose) by decades: a log axis shows them
        ax.set_yscale("log")
        ylabel += " (log scale)"
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save_png(fig, Path(path))


def metrics_table(columns: dict[str, dict[str, Any]], rows: tuple[str, ...] = METRIC_ROWS,
                  table_id: str = "metrics", min_days: float | None = None) -> str:
    """An HTML table: one row per metric, one column per strategy/run, each number in its
    display format (:mod:`marketsim.evaluation.present`: percentages with two decimals,
    annualised figures of windows shorter than ``min_days`` shown as n/a with the raw one)."""
    from marketsim.evaluation.present import MIN_ANNUAL_DAYS, cell

    min_days = MIN_ANNUAL_DAYS if min_days is None else min_days
    names = list(columns)
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    body = []
    for r in rows:
        if not any(r in columns[n] for n in names):
            continue
        cells = "".join(f"<td>{html.escape(cell(r, columns[n], min_days))}</td>"
                        for n in names)
        body.append(f"<tr><th scope='row'>{html.escape(r)}</th>{cells}</tr>")
    return (f"<table id='{table_id}' class='metrics'><thead><tr><th>metric</th>{head}</tr>"
            f"</thead><tbody>{''.join(body)}</tbody></table>")


def write_html(path: str | Path, title: str, sections: list[tuple[str, str]],
               images: list[str]) -> Path:
    """A self-contained page (inline CSS, no scripts, no network) referencing PNGs by relative
    path. ``sections`` are (heading, HTML) pairs placed after the images."""
    imgs = "".join(f"<figure><img src='{html.escape(p)}' alt='{html.escape(p)}'></figure>"
                   for p in images)
    secs = "".join(f"<h2>{html.escape(h)}</h2>{body}" for h, body in sections)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:1.5em;max-width:1100px}}
table{{border-collapse:collapse;font-size:0.9em}}td,th{{border:1px solid #ccc;padding:3px 8px;
text-align:right}}img{{max-width:100%}}code{{background:#f4f4f4}}
dl.conventions{{font-size:0.85em}}dl.conventions dt{{font-weight:bold;margin-top:0.4em}}
dl.conventions dd{{margin-left:1.5em}}table.settings th{{text-align:left}}
pre{{background:#f4f4f4;padding:0.5em;font-size:0.85em}}</style></head>
<body><h1>{html.escape(title)}</h1>{imgs}{secs}</body></html>
"""
    atomic_write_text(Path(path), page)
    return Path(path)
