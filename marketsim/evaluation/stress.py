"""Named stress windows: real candles where the shared data covers them, else a synthetic replica.

docs/guide/evaluation.md, "Stress windows", lists every scenario's window and replica shape.
A replica is hourly candles: calm geometric noise, a drop of ``drop`` (fraction of the price)
spread evenly over ``drop_hours``, volatility ``vol_after`` afterwards, and a recovery of
``recovery`` of the lost price over ``recovery_hours``. ``wick`` (flash crashes) puts the drop
inside one candle's low instead of its close.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["Scenario", "SCENARIOS", "default_data_dir", "scenario_candles", "replica_candles"]


@dataclass(frozen=True)
class Scenario:
    """A stress window and the shape of its synthetic replica."""

    name: str
    file: str
    """Shared-data file that covers the window (``../shared/data/<file>``)."""
    start: str
    end: str
    """Evaluation window [start, end) in UTC; ``warmup_days`` before start are features only."""
    event: str
    """What happened (shown in reports)."""
    s0: float
    drop: float
    drop_hours: int
    vol_before: float
    """Hourly log-return standard deviation before the drop."""
    vol_after: float
    recovery: float
    recovery_hours: int
    crash_at_hours: int
    """Hours from the window start to the start of the drop."""
    wick: bool = False
    warmup_days: int = 4


SCENARIOS: dict[str, Scenario] = {
    s.name: s for s in (
        Scenario("flash-crash-2017", "coinbase-spot_ETH-USD_1h_20170430_20221024.csv.gz",
                 "2017-06-14", "2017-06-28",
                 "GDAX ETH-USD flash crash 2017-06-21 19:00: low 0.10 from ~318 within the hour",
                 s0=330.0, drop=0.9997, drop_hours=1, vol_before=0.012, vol_after=0.02,
                 recovery=0.97, recovery_hours=1, crash_at_hours=7 * 24 + 19, wick=True),
        Scenario("covid-2020", "binance-spot_ETHUSDT_1h_20170817_20230303.csv.gz",
                 "2020-03-01", "2020-03-31",
                 "COVID crash 2020-03-12/13: ETH ~-60% in two days",
                 s0=230.0, drop=0.55, drop_hours=36, vol_before=0.01, vol_after=0.035,
                 recovery=0.35, recovery_hours=10 * 24, crash_at_hours=11 * 24),
        Scenario("luna-2022", "binance-spot_ETHUSDT_1h_20170817_20230303.csv.gz",
                 "2022-05-01", "2022-05-21",
                 "LUNA/UST collapse 2022-05-07..12: ETH ~-30% in five days",
                 s0=2900.0, drop=0.33, drop_hours=5 * 24, vol_before=0.008, vol_after=0.02,
                 recovery=0.15, recovery_hours=7 * 24, crash_at_hours=6 * 24),
        Scenario("ftx-2022", "binance-spot_ETHUSDT_1h_20170817_20230303.csv.gz",
                 "2022-11-01", "2022-11-21",
                 "FTX collapse 2022-11-07..11: ETH ~-30% (1,600 to 1,080)",
                 s0=1550.0, drop=0.32, drop_hours=3 * 24, vol_before=0.006, vol_after=0.02,
                 recovery=0.25, recovery_hours=6 * 24, crash_at_hours=6 * 24),
    )
}


def default_data_dir() -> Path:
    """``../shared/data`` resolved from the repository root."""
    return Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def replica_candles(sc: Scenario, seed: int = 0) -> pd.DataFrame:
    """Hourly synthetic candles with the scenario's documented shape (warm-up included)."""
    from marketsim.synthetic import candles_from_log_returns

    rng = np.random.default_rng(seed)
    start = pd.Timestamp(sc.start, tz="UTC") - pd.Timedelta(days=sc.warmup_days)
    n = int((pd.Timestamp(sc.end, tz="UTC") - start) / pd.Timedelta(hours=1))
    k0 = sc.warmup_days * 24 + sc.crash_at_hours
    vol = np.where(np.arange(n) < k0, sc.vol_before, sc.vol_after)
    r = vol * rng.standard_normal(n) - 0.5 * vol**2
    drift = np.zeros(n)
    k1 = min(k0 + sc.drop_hours, n)
    low_level = 1.0 - sc.drop
    rec_level = low_level + sc.recovery * sc.drop  # price / pre-crash price after recovery
    if not sc.wick:
        drift[k0:k1] = np.log(low_level) / sc.drop_hours
        k2 = min(k1 + sc.recovery_hours, n)
        drift[k1:k2] = np.log(rec_level / low_level) / sc.recovery_hours
    else:  # a close-to-close move of rec_level - 1 with the drop in the wick
        drift[k0] = np.log(rec_level)
    df = candles_from_log_returns(r + drift, vol, rng, s0=sc.s0, volume=1000.0,
                                  timeframe="1h", start=start)
    if sc.wick:
        df.iloc[k0, df.columns.get_loc("low")] = df["open"].iloc[k0] * low_level
    return df


def scenario_candles(name: str, data_dir: str | Path | None = None,
                     seed: int = 0) -> tuple[pd.DataFrame, dict[str, str]]:
    """Candles of scenario ``name`` and a provenance dict (``source``: "real" or "synthetic").

    Real data: the shared file's rows in [start - warmup_days, end); synthetic otherwise.
    """
    if name not in SCENARIOS:
        raise ValueError(f"stress scenario {name!r}: expected one of {', '.join(SCENARIOS)}")
    sc = SCENARIOS[name]
    path = Path(data_dir) if data_dir is not None else default_data_dir()
    f = path / sc.file
    info = {"scenario": name, "event": sc.event, "window_start": sc.start,
            "window_end": sc.end, "warmup_days": str(sc.warmup_days)}
    if f.exists():
        from marketsim.data import load_candles

        df = load_candles(f)
        lo = pd.Timestamp(sc.start, tz="UTC") - pd.Timedelta(days=sc.warmup_days)
        df = df[(df.index >= lo) & (df.index < pd.Timestamp(sc.end, tz="UTC"))]
        return df, {**info, "source": "real", "file": sc.file}
    return replica_candles(sc, seed), {**info, "source": "synthetic",
                                       "file": f"(absent: {sc.file})", "seed": str(seed)}
