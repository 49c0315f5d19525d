"""Candles and funding turned into the arrays the step kernel reads (validated, computed once)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from marketsim.futures import costs
from marketsim.futures import features as F
from marketsim.futures.config import FuturesConfig

COLUMNS = ("open", "high", "low", "close", "volume")


class MarketDataError(ValueError):
    """Candles or funding rates that the environment cannot use (message names what and where)."""


def resolve_candles(data: Any, data_seed: int = 0) -> pd.DataFrame:
    """A DataFrame as is, a path via ``marketsim.data.load_candles``, None: embedded default."""
    if data is None:
        from marketsim.synthetic import default_candles  # lazy: optional sibling module

        return default_candles(seed=data_seed)
    if isinstance(data, (str, os.PathLike)):
        from marketsim.data import load_candles  # lazy: optional sibling module

        return load_candles(os.fspath(data))
    if isinstance(data, pd.DataFrame):
        return data
    raise TypeError(
        f"data: expected a pandas DataFrame, a path string or None, got {type(data).__name__}"
    )


def _utc_ns(index: Any, what: str) -> np.ndarray:
    if not isinstance(index, pd.DatetimeIndex):
        raise MarketDataError(f"{what}: expected a DatetimeIndex, got {type(index).__name__}")
    if index.tz is None:
        raise MarketDataError(f"{what}: expected a tz-aware UTC index, got a naive one")
    ns = index.tz_convert("UTC").as_unit("ns").asi8
    bad = np.flatnonzero(np.diff(ns) <= 0)
    if bad.size:
        i = int(bad[0]) + 1
        raise MarketDataError(
            f"{what}: index must be strictly increasing; row {i} ({index[i]}) is not after "
            f"row {i - 1} ({index[i - 1]})"
        )
    return ns


def validate_candles(df: pd.DataFrame, min_rows: int) -> dict[str, np.ndarray]:
    """Check the candle schema and return float64 columns plus ``ts_ns`` (bar open times)."""
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise MarketDataError(f"data: missing column(s) {missing}; expected {list(COLUMNS)}")
    if len(df) < min_rows:
        raise MarketDataError(
            f"data: {len(df)} rows, need at least {min_rows} (window + vol_window + 2)"
        )
    out = {"ts_ns": _utc_ns(df.index, "data index")}
    for col in COLUMNS:
        try:
            x = df[col].to_numpy(dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise MarketDataError(f"data column {col!r}: expected numbers ({exc})") from exc
        lowest = 0.0 if col == "volume" else np.nextafter(0.0, 1.0)
        bad = np.flatnonzero(~np.isfinite(x) | (x < lowest))
        if bad.size:
            i = int(bad[0])
            need = ">= 0" if col == "volume" else "> 0"
            raise MarketDataError(
                f"data column {col!r}: row {i} ({df.index[i]}) is {x[i]}, expected finite {need}"
            )
        out[col] = x
    bad = np.flatnonzero(out["high"] < out["low"])
    if bad.size:
        i = int(bad[0])
        raise MarketDataError(f"data columns 'high'/'low': row {i} ({df.index[i]}) has high < low")
    return out


def funding_arrays(close_ns: np.ndarray, funding: Any) -> tuple[np.ndarray, np.ndarray]:
    """Per-bar sum of funding rates of events in (close_{t-1}, close_t], and the rate known at t.

    ``funding`` is ``FuturesConfig.funding``: a constant rate per 8 h or a pandas Series of
    rates indexed by UTC time (the rate of an event is the latest one at or before it; 0 before
    the series starts). The schedule and the sums are :mod:`marketsim.futures.costs`'s;
    docs/marketsim/futures.md, eq. (3).
    """
    events = costs.funding_event_times(close_ns[0], close_ns[-1])
    if isinstance(funding, pd.Series):
        rate_ns = _utc_ns(funding.index, "funding index")
        try:
            rates = funding.to_numpy(dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise MarketDataError(f"funding: expected numeric rates ({exc})") from exc
        bad = np.flatnonzero(~np.isfinite(rates))
        if bad.size:
            i = int(bad[0])
            raise MarketDataError(f"funding: row {i} ({funding.index[i]}) is not finite")

        def asof(times: np.ndarray) -> np.ndarray:
            j = np.searchsorted(rate_ns, times, side="right") - 1
            return np.where(j >= 0, rates[np.maximum(j, 0)], 0.0)

        event_rates = asof(events)
        now = asof(close_ns)
    else:  # a number, checked by FuturesConfig
        event_rates = np.full(events.shape, float(funding))
        now = np.full(close_ns.shape, float(funding))
    return costs.funding_per_bar(close_ns, events, event_rates), now


@dataclass
class Market:
    """Arrays over T bars that the kernel and the observation read (never pandas per step)."""

    n_bars: int
    ts_ns: np.ndarray
    close_ns: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    sigma: np.ndarray
    mean_volume: np.ndarray
    funding: np.ndarray
    feat: np.ndarray
    static_obs: np.ndarray
    bars_t: np.ndarray
    t_min: int

    @classmethod
    def build(cls, df: pd.DataFrame, cfg: FuturesConfig) -> Market:
        """Validate candles and ``cfg.funding`` and precompute every per-bar array."""
        cols = validate_candles(df, cfg.window + cfg.vol_window + 2)
        ts = cols["ts_ns"]
        bar_ns = int(np.median(np.diff(ts)))
        close_ns = ts + bar_ns
        funding_bar, funding_now = funding_arrays(close_ns, cfg.funding)
        ret, rng, z, sigma, mean_volume = F.bar_statistics(
            cols["close"], cols["high"], cols["low"], cols["volume"], cfg.vol_window
        )
        feat = F.bar_features(ret, rng, z, sigma, funding_now)
        mean_volume = np.maximum(mean_volume, 1e-12)
        return cls(
            n_bars=len(ts),
            ts_ns=ts,
            close_ns=close_ns,
            open=cols["open"],
            high=cols["high"],
            low=cols["low"],
            close=cols["close"],
            volume=cols["volume"],
            sigma=sigma,
            mean_volume=mean_volume,
            funding=funding_bar,
            feat=feat,
            static_obs=F.static_observations(feat, F.time_features(close_ns), cfg.window),
            bars_t=np.stack([cols["close"], cols["high"], cols["low"], sigma, mean_volume,
                             funding_bar]),
            t_min=cfg.window + cfg.vol_window,
        )

    def scalar_view(self) -> Any:
        """The kernel's per-bar inputs as a list of tuples (fast scalar indexing for one env)."""

        class _Rows:
            rows = list(map(tuple, self.bars_t.T.tolist()))

        return _Rows()
