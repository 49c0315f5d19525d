"""``run_backtest``: a trained run (or an ensemble of runs) over a candle range, with baselines,
written as ``report.json``, ``equity.csv``, ``backtest.png`` and ``report.html``.

docs/guide/evaluation.md, "Backtest" and "Reading a report".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from marketsim.evaluation.backtest import (
    FUTURES_ENV,
    Policy,
    backtest_frames,
    baseline_kwargs,
    ensemble_policy,
    load_run_policy,
    slice_candles,
)
from marketsim.evaluation.present import (
    MIN_ANNUAL_DAYS,
    conventions_html,
    settings_html,
    trades_html,
)
from marketsim.evaluation.report import metrics_table, plot_backtest, write_csv, write_html, write_json
from marketsim.futures.config import FuturesConfig
from marketsim.metrics import DAYS_PER_YEAR, compute_metrics, round_trips, ruin

__all__ = ["CONVENTIONS", "run_backtest", "frames_report", "equity_table", "default_out",
           "equity_floor", "write_frames_report", "trade_list", "TOP_TRADES"]

TOP_TRADES = 10
"""Round trips shown on the page (the largest by |PnL|); trades.csv has them all."""

CONVENTIONS = {
    "returns": "UTC-daily simple returns of equity (last equity of each UTC day)",
    "days_per_year": DAYS_PER_YEAR,
    "sharpe": "sqrt(365) * mean / std (ddof 1) of daily returns; 0 when std is 0",
    "sortino": "sqrt(365) * mean / downside RMS over all days; 0 with no losing day",
    "max_drawdown": "min(E_t / max_{s<=t} E_s - 1) over bars, a negative fraction",
    "calmar": "annual_return / |max_drawdown|; 0 when max_drawdown is 0",
    "profitable_days": "share of UTC days with equity change > 0 (after fees and funding)",
    "turnover": "sum over bars of traded notional / equity",
    "ruined": "equity at or below the environment's floor (equity_floor * initial_equity; 0 "
              "for market making) at some bar; ruined_at is the first such bar's close time",
    "baselines": "flat (no position) and buy_and_hold (1x long from the first bar) through the "
                 "same environment, costs and funding; market making: fixed-gamma AS and "
                 "GLFT quoters on the same replayed candles, equity = max_inventory * mid_0 + "
                 "PnL",
}


def equity_floor(env_kwargs: dict[str, Any]) -> float:
    """Equity at which the futures environment ends an episode: ``equity_floor * initial_equity``
    of these keyword arguments (the config's defaults where absent)."""
    floor = env_kwargs.get("equity_floor", FuturesConfig.equity_floor)
    return float(floor) * float(env_kwargs.get("initial_equity", FuturesConfig.initial_equity))


def frames_report(frames: dict[str, pd.DataFrame], floors: dict[str, float] | None = None
                  ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(agent metrics, {baseline: metrics}) from the per-bar frames of :func:`backtest_frames`.

    Each also holds :func:`marketsim.metrics.ruin`'s ``ruined``, ``ruined_at`` and
    ``lowest_equity`` against its floor in ``floors`` (0 where absent).
    """
    floors = floors or {}
    metrics = {k: {**compute_metrics(f["equity"], f), **ruin(f["equity"], floors.get(k, 0.0))}
               for k, f in frames.items()}
    agent = metrics.pop("agent", {})
    return agent, metrics


def equity_table(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The agent's per-bar frame plus an ``equity_<baseline>`` column per baseline."""
    main = frames.get("agent", next(iter(frames.values()))).copy()
    for k, f in frames.items():
        if k != "agent":
            main[f"equity_{k}"] = f["equity"].to_numpy()
    main.index = main.index.strftime("%Y-%m-%dT%H:%M:%SZ")
    main.index.name = "timestamp"
    return main


def trade_list(frame: pd.DataFrame) -> pd.DataFrame:
    """The round trips of a per-bar frame (:func:`marketsim.metrics.round_trips`, eq. (11)),
    with the days held and the mark prices at entry and exit."""
    trades = round_trips(frame["equity"], frame["position"])
    for col in ("entry_time", "exit_time"):  # datetime even when there is no trip
        trades[col] = pd.to_datetime(trades[col], utc=True)
    trades["days"] = (trades["exit_time"] - trades["entry_time"]).dt.total_seconds() / 86400.0
    if "price" in frame:
        trades["entry_price"] = frame["price"].reindex(trades["entry_time"]).to_numpy()
        trades["exit_price"] = frame["price"].reindex(trades["exit_time"]).to_numpy()
    return trades


def _futures_settings(env_kwargs: dict[str, Any], funding: Any) -> dict[str, Any]:
    """Every setting of the futures environment the backtest ran with (defaults included)."""
    import dataclasses

    kw = {k: v for k, v in env_kwargs.items()
          if k not in ("data", "data_seed", "render_mode", "funding")}
    try:
        cfg = dataclasses.asdict(FuturesConfig.from_kwargs(**{**kw, "episode_length": None}))
    except (TypeError, ValueError):
        cfg = dict(kw)
    cfg["funding"] = funding if isinstance(funding, (int, float)) else "a series of rates"
    return {k: v for k, v in cfg.items() if isinstance(v, (int, float, str, bool, type(None)))}


def _training_settings(run_dir: str | Path) -> dict[str, Any]:
    """A run's training settings as its config.yaml has them (flat, plain values)."""
    from rlcore.io import read_yaml

    cfg = read_yaml(Path(run_dir) / "config.yaml") or {}
    flat = {**(cfg.get("run") or {}), **(cfg.get("algo_config") or {})}
    flat.pop("env_kwargs", None)
    return {k: v for k, v in flat.items() if isinstance(v, (int, float, str, bool, type(None)))}


def default_out(run_dir: str | Path, label: str) -> Path:
    """``RUN_DIR/backtest/<label>``."""
    return Path(run_dir) / "backtest" / label


def _data_info(df: pd.DataFrame, label: str) -> dict[str, Any]:
    from marketsim.data import content_hash

    cols = [c for c in ("open", "high", "low", "close", "volume") if c in df]
    return {"source": label, "bars": len(df), "first_bar": df.index[0].isoformat(),
            "last_bar": df.index[-1].isoformat(), "content_hash": content_hash(df[cols])}


def run_backtest(run_dirs: list[str | Path], data: str | Path | pd.DataFrame | None = None,
                 start: str | None = None, end: str | None = None,
                 out: str | Path | None = None, weights: list[float] | None = None,
                 stress: str | None = None, data_dir: str | Path | None = None,
                 funding: Any = 0.0001, mm_gamma: float = 0.1,
                 min_annual_days: float = MIN_ANNUAL_DAYS, progress: bool = False) -> Path:
    """Backtest one run (or blend several with ``weights``) and write the report folder.

    ``data``: a candle file ``marketsim.data.load_candles`` reads, or a DataFrame; ``stress``:
    a scenario name of :mod:`marketsim.evaluation.stress` instead of ``data``. Market-making
    runs are replayed on the candles against fixed-gamma (``mm_gamma``) AS and GLFT quoters
    (:mod:`marketsim.evaluation.mm_backtest`); futures runs against flat and buy-and-hold.
    Annualised metrics of a window shorter than ``min_annual_days`` UTC days are shown on the
    page as n/a with the raw figure (:mod:`marketsim.evaluation.present`). Returns the path of
    ``report.json``.
    """
    if not run_dirs:
        raise ValueError("run_dirs: expected at least one run folder")
    if (data is None) == (stress is None):
        raise ValueError("give exactly one of --data and --stress")
    from marketsim.evaluation.mm_backtest import MM_ENV, mm_frames

    policies = [load_run_policy(r) for r in run_dirs]
    for p in policies:
        if p.env not in (FUTURES_ENV, MM_ENV) or p.env != policies[0].env:
            raise ValueError(f"{p.run_dir}: backtest supports {FUTURES_ENV} and {MM_ENV} runs "
                             f"(all of one kind); this run's env is {p.env!r}")
    market_making = policies[0].env == MM_ENV
    policy: Policy = policies[0] if len(policies) == 1 else ensemble_policy(policies, weights)
    stress_info: dict[str, str] | None = None
    if stress is not None:
        from marketsim.evaluation.stress import scenario_candles

        candles, stress_info = scenario_candles(stress, data_dir)
        label, source = f"stress-{stress}", stress_info["file"]
    elif isinstance(data, pd.DataFrame):
        candles, label, source = data, "frame", "<DataFrame>"
    else:
        from marketsim.data import load_candles

        candles = load_candles(data)
        label, source = Path(str(data)).name.split(".")[0], str(data)
    candles = slice_candles(candles, start, end)
    if start or end:
        label += f"_{start or 'begin'}_{end or 'end'}".replace(":", "")
    if market_making:
        frames = mm_frames(candles, policy, mm_gamma)
        floors: dict[str, float] = {}
    else:
        frames = backtest_frames(candles, policy, funding, progress)
        base_floor = equity_floor(baseline_kwargs(policy.env_kwargs))
        floors = {"agent": equity_floor(policy.env_kwargs), "flat": base_floor,
                  "buy_and_hold": base_floor}
    out_dir = Path(out) if out is not None else default_out(run_dirs[0], label)
    names = [Path(r).name for r in run_dirs]
    title = f"backtest {' + '.join(names)} on {label}"
    report: dict[str, Any] = {
        "runs": [{"run": Path(p.run_dir).name, "algo": p.algo,
                  "checkpoint_step": p.checkpoint_step} for p in policies],
        "weights": list(policy.agent.weights()) if len(policies) > 1 else [1.0],
        "data": _data_info(candles, source),
        "trading_start": next(iter(frames.values())).index[0].isoformat(),
        "conventions": CONVENTIONS,
        "env_kwargs": {k: v for k, v in policy.env_kwargs.items()
                       if isinstance(v, (int, float, str, bool, type(None)))},
        "env_settings": ({} if market_making else
                         _futures_settings(policy.env_kwargs, funding)),
        "training": {Path(p.run_dir).name: _training_settings(p.run_dir) for p in policies},
        "min_annual_days": min_annual_days,
    }
    if stress_info is not None:
        report["stress"] = stress_info
    notes = f"<p>data: <code>{source}</code>, {len(candles)} bars; trading from " \
            f"{report['trading_start']}.</p>"
    if stress_info is not None:
        notes += (f"<p>stress scenario <b>{stress}</b> ({stress_info['event']}): "
                  f"<b>{stress_info['source']}</b> data.</p>")
    return write_frames_report(out_dir, frames, title, floors, report, notes, min_annual_days)


def _settings_groups(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """What the page's Settings section lists, from report.json's keys."""
    groups: dict[str, dict[str, Any]] = {}
    runs = report.get("runs") or []
    if runs:
        groups["runs"] = {r["run"]: f"{r['algo']}, checkpoint at step {r['checkpoint_step']:,}"
                          for r in runs}
        if len(runs) > 1:
            groups["runs"]["weights"] = ", ".join(f"{w:g}" for w in report.get("weights", []))
    if report.get("data"):
        groups["data"] = dict(report["data"])
        if report.get("trading_start"):
            groups["data"]["trading_start"] = report["trading_start"]
    if report.get("stress"):
        groups["stress scenario"] = dict(report["stress"])
    env = report.get("env_settings") or report.get("env_kwargs")
    if env:
        groups["environment (costs, sizing, leverage)"] = dict(env)
    for name, cfg in (report.get("training") or {}).items():
        groups[f"training of {name}"] = dict(cfg)
    return groups


def write_frames_report(out_dir: str | Path, frames: dict[str, pd.DataFrame], title: str,
                        floors: dict[str, float] | None = None,
                        extra: dict[str, Any] | None = None, notes: str = "",
                        min_days: float = MIN_ANNUAL_DAYS) -> Path:
    """Write ``equity.csv``, ``trades.csv``, ``backtest.png``, ``report.html`` and
    ``report.json`` of per-bar frames (the agent's first, then baselines) into ``out_dir``;
    returns report.json's path.

    The page shows the metrics (percentages; annualised figures only for windows of at least
    ``min_days`` days), the agent's largest round trips, the settings (``extra``'s runs, data,
    environment and training settings) and the metric conventions.

    Any outcome is reported, a ruined account too: ``ruined`` and ``ruined_at`` (against
    ``floors``, see :func:`frames_report`) are in report.json and, for the agent, stated at
    the top of the HTML page. ``extra`` adds keys to report.json; ``notes`` is HTML for the
    page's "Data" section.
    """
    out_dir = Path(out_dir)
    agent, baselines = frames_report(frames, floors)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(out_dir / "equity.csv", equity_table(frames))
    main = frames.get("agent", next(iter(frames.values())))
    trades = trade_list(main)
    write_csv(out_dir / "trades.csv", trades.assign(
        entry_time=trades["entry_time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
        exit_time=trades["exit_time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")).set_index("entry_time"))
    plot_backtest(frames, out_dir / "backtest.png", title)
    report: dict[str, Any] = {**agent, "baselines": baselines, **(extra or {})}
    report.setdefault("conventions", CONVENTIONS)
    report.setdefault("min_annual_days", min_days)
    sections = [("Metrics", metrics_table({"agent": agent, **baselines}, min_days=min_days)),
                (f"Trades: the {min(TOP_TRADES, len(trades))} largest of {len(trades)} round "
                 "trips by |PnL| (all in trades.csv)", trades_html(trades, TOP_TRADES)),
                ("Data", notes),
                ("Settings", settings_html(_settings_groups(report))),
                ("Conventions", conventions_html(report["conventions"], min_days))]
    if agent.get("ruined"):
        floor = (floors or {}).get("agent", 0.0)
        sections.insert(0, ("Ruined", (
            f"<p class='ruined'><b>The account was ruined</b> on {agent['ruined_at']}: equity "
            f"fell to {agent['lowest_equity']:.6g} (floor {floor:.6g}), where the episode "
            f"ends; the curve holds what was left from then on.</p>")))
    write_html(out_dir / "report.html", title, sections, ["backtest.png"])
    return write_json(out_dir / "report.json", report)
