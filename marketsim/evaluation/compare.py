"""Compare runs: several backtest reports' metrics in one table and one plot.

Each argument is a backtest output folder (holding ``report.json`` and ``equity.csv``) or a run
folder, in which case its backtest reports (``RUN_DIR/backtest/*/report.json``) are all taken.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from marketsim.evaluation.backtest_report import CONVENTIONS
from marketsim.evaluation.present import MIN_ANNUAL_DAYS, conventions_html, text_table
from marketsim.evaluation.report import (
    METRIC_ROWS,
    metrics_table,
    plot_curves,
    write_csv,
    write_html,
    write_json,
)

__all__ = ["find_reports", "run_compare", "compare_text"]


def find_reports(paths: list[str | Path]) -> list[Path]:
    """``report.json`` files named by ``paths`` (folders); ValueError if a folder has none."""
    found: list[Path] = []
    for p in map(Path, paths):
        if (p / "report.json").is_file():
            found.append(p / "report.json")
            continue
        sub = sorted((p / "backtest").glob("*/report.json"))
        if not sub:
            raise ValueError(f"{p}: no report.json here nor under {p / 'backtest'}; run "
                             f"`python cli.py backtest {p} --data ...` first")
        found.extend(sub)
    return found


def _label(report_path: Path, report: dict[str, Any]) -> str:
    runs = "+".join(r["run"] for r in report.get("runs", [])) or report_path.parent.name
    return f"{runs} [{report_path.parent.name}]"


def run_compare(paths: list[str | Path], out: str | Path,
                min_days: float = MIN_ANNUAL_DAYS) -> Path:
    """Write ``compare.json``, ``compare.csv``, ``compare.png`` and ``compare.html`` to ``out``;
    returns the path of ``compare.json``. Curves are equity / initial equity (a log axis where
    they span more than a factor of 5); annualised metrics of windows shorter than
    ``min_days`` are shown as n/a with the raw figure."""
    reports = find_reports(paths)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    columns: dict[str, dict[str, Any]] = {}
    curves: dict[str, pd.Series] = {}
    for rp in reports:
        rep = json.loads(rp.read_text(encoding="utf-8"))
        name = _label(rp, rep)
        if name in columns:
            name = f"{name} ({rp.parent})"
        columns[name] = {k: rep[k] for k in METRIC_ROWS if k in rep}
        eq_path = rp.parent / "equity.csv"
        if eq_path.is_file():
            eq = pd.read_csv(eq_path, index_col="timestamp")
            idx = pd.to_datetime(eq.index, utc=True)
            curves[name] = pd.Series(eq["equity"].to_numpy() / eq["equity"].iloc[0], index=idx)
    table = pd.DataFrame(columns)
    table.index.name = "metric"
    write_csv(out / "compare.csv", table)
    images = []
    if curves:
        plot_curves(curves, out / "compare.png", "equity / initial equity")
        images.append("compare.png")
    write_html(out / "compare.html", "run comparison",
               [("Metrics", metrics_table(columns, min_days=min_days)),
                ("Reports", "<ul>" + "".join(f"<li><code>{p}</code></li>" for p in reports)
                 + "</ul>"),
                ("Conventions", conventions_html(CONVENTIONS, min_days))], images)
    return write_json(out / "compare.json", {"runs": columns, "min_annual_days": min_days,
                                             "reports": [str(p) for p in reports]})


def compare_text(compare_json: str | Path) -> str:
    """The terminal table of a ``compare.json`` (what ``python cli.py compare`` prints)."""
    rep = json.loads(Path(compare_json).read_text(encoding="utf-8"))
    columns = rep["runs"]
    if all(len(n) <= 24 for n in columns):
        short = {n: n for n in columns}
    else:  # long run names: numbered columns, named below the table
        short = {n: f"[{i}]" for i, n in enumerate(columns, 1)}
    table = text_table({short[n]: m for n, m in columns.items()}, METRIC_ROWS,
                       rep.get("min_annual_days", MIN_ANNUAL_DAYS))
    legend = [f"{short[n]} {n}" for n in columns if short[n] != n]
    return "\n".join([table, *legend])
