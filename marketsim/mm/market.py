"""Resolve the market of a config: model parameters, or replay candles plus fitted sigma, A, k."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from marketsim.mm.config import MMConfig
from marketsim.mm.estimators import fit_intensity, intensity_from_candles, sigma_from_prices


@dataclass(frozen=True, eq=False)
class Market:
    """Resolved market: ``sigma``, ``A``, ``k`` in the environment's time unit, and replay bars."""

    sigma: float
    A: float
    k: float
    close: np.ndarray | None = None
    high: np.ndarray | None = None
    low: np.ndarray | None = None
    features: np.ndarray | None = None
    """Book mode: per-bar observation block (imbalances, spread), shape (bars, levels + 1)."""


def _replay_arrays(config: MMConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read close/high/low as float64 arrays; raise ValueError naming a NaN column and row."""
    frame = config.candles
    source = "candles"
    if frame is None:
        from marketsim.data import load_candles  # lazy: written by another engineer

        frame = load_candles(config.data_path)
        source = str(config.data_path)
    out = []
    for column in ("close", "high", "low"):
        if column not in frame.columns:
            raise ValueError(f"{source}: missing column {column!r}")
        values = np.asarray(frame[column], dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(values) | (values <= 0))
        if bad.size:
            raise ValueError(f"{source}: column {column!r} has NaN/inf/non-positive values at "
                             f"rows {bad[:5].tolist()} (expected finite prices > 0)")
        out.append(values)
    close, high, low = out
    need = config.calib_bars + config.n_steps + 2
    if close.size < need:
        raise ValueError(f"{source}: {close.size} rows, need at least calib_bars + n_steps + 2 = "
                         f"{need}")
    return close, high, low


def resolve_market(config: MMConfig) -> Market:
    """Return the market a config describes (replay mode fits sigma, A, k on the first bars)."""
    if config.mode == "model":
        return Market(sigma=config.sigma, A=140.0 if config.A is None else config.A,
                      k=1.5 if config.k is None else config.k)
    features = None
    if config.mode == "book":
        close, high, low, bars = _book_arrays(config)
    else:
        close, high, low = _replay_arrays(config)
    n = config.calib_bars
    dt = config.dt
    sigma_bar = sigma_from_prices(close[:n])
    # docs/marketsim/market-making.md, eq. (14): per-bar sigma to per time unit
    sigma = sigma_bar / np.sqrt(dt)
    A, k = config.A, config.k
    if A is None or k is None:
        deltas = sigma_bar * np.linspace(0.25, 3.0, 12)
        # bars without trades (book mode: high = -inf, low = inf) had no excursion
        high_c = np.where(np.isfinite(high[:n]), high[:n], close[:n])
        low_c = np.where(np.isfinite(low[:n]), low[:n], close[:n])
        rates = intensity_from_candles(close[:n], high_c, low_c, deltas, dt=dt)
        ok = np.isfinite(rates)
        A_fit, k_fit = fit_intensity(deltas[ok], rates[ok])
        A = A_fit if A is None else A
        k = k_fit if k is None else k
    if config.mode == "book":
        from marketsim.mm.book import book_features

        features = book_features(bars.bid_sz, bars.ask_sz, bars.ask_px[:, 0] - bars.bid_px[:, 0],
                                 sigma_bar)
    return Market(sigma=float(sigma), A=float(A), k=float(k), close=close, high=high, low=low,
                  features=features)


def _book_arrays(config: MMConfig):
    """Bars of a rebuilt L2 book: mid as close, trade extremes as high/low, and the bars."""
    from marketsim.mm.book import load_l2_bars

    bars = load_l2_bars(list(config.l2_paths), config.book_interval, config.levels)
    need = config.calib_bars + config.n_steps + 2
    if bars.mid.size < need:
        raise ValueError(f"l2_paths give {bars.mid.size} bars of {config.book_interval} s, need at "
                         f"least calib_bars + n_steps + 2 = {need}")
    return bars.mid, bars.high, bars.low, bars
