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
    close, high, low = _replay_arrays(config)
    n = config.calib_bars
    dt = config.dt
    sigma_bar = sigma_from_prices(close[:n])
    # docs/marketsim/market-making.md, eq. (14): per-bar sigma to per time unit
    sigma = sigma_bar / np.sqrt(dt)
    A, k = config.A, config.k
    if A is None or k is None:
        deltas = sigma_bar * np.linspace(0.25, 3.0, 12)
        rates = intensity_from_candles(close[:n], high[:n], low[:n], deltas, dt=dt)
        ok = np.isfinite(rates)
        A_fit, k_fit = fit_intensity(deltas[ok], rates[ok])
        A = A_fit if A is None else A
        k = k_fit if k is None else k
    return Market(sigma=float(sigma), A=float(A), k=float(k), close=close, high=high, low=low)
