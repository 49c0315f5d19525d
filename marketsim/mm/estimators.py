"""Estimating sigma (price units) and the fill intensity ``lambda(delta) = A*exp(-k*delta)``.

Method and limits: docs/marketsim/market-making.md, section "Estimating sigma, A and k".
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def _finite_1d(name: str, values: ArrayLike, min_len: int) -> np.ndarray:
    """Return ``values`` as a float64 1-D array or raise ValueError naming ``name``."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.size < min_len:
        raise ValueError(f"{name} must be 1-D with at least {min_len} values, "
                         f"got shape {arr.shape}")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise ValueError(f"{name} has non-finite values (NaN/inf) at positions {bad[:5].tolist()}")
    return arr


def sigma_from_prices(prices: ArrayLike, dt: float = 1.0) -> float:
    """Volatility of absolute price changes in price units per sqrt(time unit).

    ``prices`` are sampled every ``dt`` time units; the result is ``std(diff(prices))/sqrt(dt)``.
    """
    p = _finite_1d("prices", prices, 3)
    if not np.isfinite(dt) or dt <= 0:
        raise ValueError(f"dt must be finite and > 0, got {dt}")
    # docs/marketsim/market-making.md, eq. (14)
    return float(np.std(np.diff(p), ddof=1) / np.sqrt(dt))


def sigma_abs_from_relative(sigma_rel: float, price: float) -> float:
    """Convert a relative-return volatility to price units: ``sigma_abs = price * sigma_rel``."""
    if not (np.isfinite(sigma_rel) and np.isfinite(price)) or sigma_rel < 0 or price <= 0:
        raise ValueError(f"need sigma_rel >= 0 and price > 0, got {sigma_rel}, {price}")
    # docs/marketsim/market-making.md, eq. (14)
    return float(price * sigma_rel)


# --8<-- [start:fit-intensity]
def fit_intensity(deltas: ArrayLike, rates: ArrayLike) -> tuple[float, float]:
    """Least-squares fit of ``ln(rate) = ln(A) - k*delta`` over positive rates; returns (A, k)."""
    d = _finite_1d("deltas", deltas, 2)
    lam = _finite_1d("rates", rates, 2)
    if d.shape != lam.shape:
        raise ValueError(f"deltas and rates must have the same shape, got {d.shape}, {lam.shape}")
    keep = lam > 0
    if keep.sum() < 2:
        raise ValueError("need at least two deltas with a positive fill rate to fit A and k")
    # docs/marketsim/market-making.md, eq. (15)
    slope, intercept = np.polyfit(d[keep], np.log(lam[keep]), 1)
    k = -float(slope)
    if k <= 0:
        raise ValueError(f"fitted k = {k:.4g} is not > 0: fill rates do not decay with depth")
    return float(np.exp(intercept)), k
# --8<-- [end:fit-intensity]


def intensity_from_trades(trade_prices: ArrayLike, mids: ArrayLike, deltas: ArrayLike,
                          duration: float) -> np.ndarray:
    """Fill rate per side per time unit at each depth: trades at least ``delta`` from the mid.

    ``mids[i]`` is the mid just before trade ``i``; ``duration`` is the sample length in time
    units. A trade ``delta`` or more above (below) the mid would have filled an ask (bid) there.
    """
    p = _finite_1d("trade_prices", trade_prices, 1)
    m = _finite_1d("mids", mids, 1)
    d = _finite_1d("deltas", deltas, 1)
    if p.shape != m.shape:
        raise ValueError(f"trade_prices and mids must match, got {p.shape}, {m.shape}")
    if not np.isfinite(duration) or duration <= 0:
        raise ValueError(f"duration must be finite and > 0, got {duration}")
    dist = np.abs(p - m)
    counts = (dist[None, :] >= d[:, None]).sum(axis=1)
    return counts / (2.0 * duration)


def intensity_from_candles(close: ArrayLike, high: ArrayLike, low: ArrayLike, deltas: ArrayLike,
                           dt: float = 1.0) -> np.ndarray:
    """Fill rate per side per time unit at each depth from bars (trade-through of the last close).

    A bid at ``close[i-1] - delta`` fills in bar ``i`` when ``low[i] < close[i-1] - delta``; an ask
    when ``high[i] > close[i-1] + delta``. With fill frequency ``P`` per bar of length ``dt``,
    the Poisson rate is ``-ln(1 - P)/dt`` (NaN where every bar filled).
    """
    c = _finite_1d("close", close, 2)
    h = _finite_1d("high", high, 2)
    lo = _finite_1d("low", low, 2)
    d = _finite_1d("deltas", deltas, 1)
    if not (c.shape == h.shape == lo.shape):
        raise ValueError(f"close, high, low must match, got {c.shape}, {h.shape}, {lo.shape}")
    ref = c[:-1]
    bid_fill = lo[None, 1:] < ref[None, :] - d[:, None]
    ask_fill = h[None, 1:] > ref[None, :] + d[:, None]
    p = 0.5 * (bid_fill.mean(axis=1) + ask_fill.mean(axis=1))
    with np.errstate(divide="ignore"):
        rate = -np.log1p(-p) / dt
    return np.where(p < 1.0, rate, np.nan)
