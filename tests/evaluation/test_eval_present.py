"""Reports a quant can decide on: percentages with one precision, no annualised figure for a
short window (n/a with the raw one), the settings and conventions on the page, a trade list,
the compare table on the terminal, walk-forward progress."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from click.testing import CliRunner

from marketsim.evaluation.cli import compare
from marketsim.evaluation.present import MIN_ANNUAL_DAYS, cell, fmt, text_table


def test_formats():
    assert fmt("total_return", -0.99151) == "-99.15%"
    assert fmt("total_return", 20.1917) == "2,019.17%"
    assert fmt("max_drawdown", -0.05) == "-5.00%"
    assert fmt("sharpe", 1.23456) == "1.23" and fmt("calmar", 153.5) == "153.50"
    assert fmt("fees", 12345.678) == "12,345.68" and fmt("trades", 12.0) == "12"
    assert fmt("ruined", True) == "yes" and fmt("ruined_at", None) == ""


def test_short_windows_show_no_annualised_figure():
    """The issue's case: 61 days of buy-and-hold, annual_return 34.71, calmar 153.5."""
    m = {"n_days": 61.0, "annual_return": 34.71, "calmar": 153.5, "total_return": 0.8}
    assert cell("annual_return", m) == "n/a (window < 90 days; raw 3,471.00%)"
    assert cell("calmar", m) == "n/a (window < 90 days; raw 153.50)"
    assert cell("total_return", m) == "80.00%"
    assert cell("annual_return", m, min_days=60) == "3,471.00%"
    assert cell("annual_return", {**m, "n_days": 90.0}) == "3,471.00%"
    assert MIN_ANNUAL_DAYS == 90


def test_text_table_aligns_columns():
    t = text_table({"a": {"total_return": 0.1, "n_days": 200.0},
                    "bb": {"total_return": -0.25, "n_days": 200.0}},
                   ("total_return", "sharpe", "n_days"))
    lines = t.splitlines()
    assert lines[0].split() == ["metric", "a", "bb"]
    assert "sharpe" not in t  # a metric no column has is left out
    assert lines[2].split() == ["total_return", "10.00%", "-25.00%"]
    assert len({len(line) for line in lines}) == 1


def test_backtest_page_has_settings_conventions_and_trades(ppo_backtest, ppo_run):
    folder = ppo_backtest.parent
    rep = json.loads(ppo_backtest.read_text())
    page = (folder / "report.html").read_text()
    assert rep["min_annual_days"] == MIN_ANNUAL_DAYS and rep["n_days"] < MIN_ANNUAL_DAYS
    assert "n/a (window &lt; 90 days; raw" in page  # 400 hourly bars: 17 days
    assert re.search(r"<td>-?[\d,]+\.\d\d%</td>", page)  # percentages, two decimals
    for heading in ("Settings", "Conventions", "Trades: the"):
        assert f"<h2>{heading}" in page, heading
    assert "taker_fee" in page and "training of ppo" in page and "n_steps" in page
    assert "sqrt(365)" in page  # the Sharpe convention
    trades = pd.read_csv(folder / "trades.csv")
    assert list(trades.columns[:5]) == ["entry_time", "exit_time", "side", "pnl", "return"]
    assert len(trades) == rep["trades"]
    assert rep["training"]["ppo"]["algo"] == "ppo"
    assert rep["env_settings"]["taker_fee"] > 0
    if len(trades):
        shown = page.split("id='trades'")[1].split("</table>")[0].count("<tr>") - 1
        assert shown == min(10, len(trades))
        biggest = trades["pnl"].abs().max()
        assert f"{biggest:,.2f}" in page


def test_backtest_min_annual_days_is_a_flag(ppo_run, test_candles, tmp_path):
    from marketsim.evaluation.backtest_report import run_backtest

    p = run_backtest([ppo_run], data=test_candles, out=tmp_path / "bt", min_annual_days=7)
    page = (p.parent / "report.html").read_text()
    assert "raw " not in page.split("<h2>Metrics")[1].split("<h2>")[0]
    assert json.loads(p.read_text())["min_annual_days"] == 7


def test_compare_prints_its_table(ppo_backtest, tmp_path):
    res = CliRunner().invoke(compare, [str(ppo_backtest.parent), "--out", str(tmp_path / "c")])
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    assert lines[-1].endswith("compare.json")
    assert lines[0].split()[0] == "metric"
    row = next(ln for ln in lines if ln.startswith("total_return"))
    rep = json.loads(ppo_backtest.read_text())
    assert f"{100 * rep['total_return']:,.2f}%" in row
    assert any(ln.startswith("annual_return") and "n/a (window < 90 days" in ln for ln in lines)


@pytest.mark.parametrize("ratio, log", [(3.0, False), (0.01, True)])
def test_compare_plot_is_log_scaled_when_curves_span_decades(ratio, log, tmp_path, monkeypatch):
    from marketsim.evaluation import report

    seen = {}
    real = report._save_png

    def spy(fig, path):
        seen["scale"] = fig.axes[0].get_yscale()
        return real(fig, path)

    monkeypatch.setattr(report, "_save_png", spy)
    idx = pd.date_range("2024-01-01", periods=3, freq="D", tz="UTC")
    curves = {"a": pd.Series([1.0, 1.0, 1.0], idx), "b": pd.Series([1.0, 0.8, ratio], idx)}
    report.plot_curves(curves, tmp_path / "c.png", "t")
    assert (seen["scale"] == "log") == log
