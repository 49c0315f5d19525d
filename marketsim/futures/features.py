"""Observation features, computed once per data set from bars up to and including each bar.

Every value at bar t uses only bars <= t (no look-ahead; ``tests/futures/test_no_lookahead.py``).
Definitions are in docs/marketsim/futures.md, section "Observation".
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

N_BAR_FEATURES = 5
"""Per-bar features: log return, log range, volume z-score, realised volatility, funding."""
N_TIME_FEATURES = 4
"""sin/cos of the hour of day and of the day of week of the bar's close time."""
N_ACCOUNT_FEATURES = 3
"""Position fraction, unrealised PnL / equity, margin ratio."""

_NS_PER_DAY = 86_400 * 10**9


def _rolling(x: np.ndarray, w: int) -> np.ndarray:
    """Trailing windows of length ``w`` ending at each bar; bars < w-1 get a zero window."""
    padded = np.concatenate([np.zeros(w - 1), x])
    return sliding_window_view(padded, w)


# --8<-- [start:bar-statistics]
def bar_statistics(
    close: np.ndarray, high: np.ndarray, low: np.ndarray, volume: np.ndarray, w: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Log return, log range, volume z-score, realised volatility and mean volume per bar.

    docs/marketsim/futures.md, eqs. (14)-(17): ``r_t = ln(C_t / C_{t-1})``,
    ``sigma_t = sqrt(mean(r^2 over the last w bars))``, ``z_t`` of ``ln(1 + V_t)`` over the
    last w bars, ``Vbar_t`` = mean volume of the last w bars.
    """
    ret = np.zeros_like(close)
    ret[1:] = np.log(close[1:] / close[:-1])
    rng = np.log(high / low)
    sigma = np.sqrt(_rolling(ret * ret, w).mean(axis=1))
    mean_volume = _rolling(volume, w).mean(axis=1)
    lv = np.log1p(volume)
    win = _rolling(lv, w)
    std = win.std(axis=1)
    z = np.where(std > 1e-12, (lv - win.mean(axis=1)) / np.where(std > 1e-12, std, 1.0), 0.0)
    return ret, rng, np.clip(z, -10.0, 10.0), sigma, mean_volume
# --8<-- [end:bar-statistics]


def time_features(close_ns: np.ndarray) -> np.ndarray:
    """(T, 4) float32: sin/cos of hour-of-day and day-of-week (Monday = 0) at the close time."""
    day_frac = (close_ns % _NS_PER_DAY) / _NS_PER_DAY
    days = close_ns // _NS_PER_DAY
    week_frac = ((days + 3) % 7 + day_frac) / 7.0  # 1970-01-01 was a Thursday (weekday 3)
    ang_d = 2.0 * np.pi * day_frac
    ang_w = 2.0 * np.pi * week_frac
    return np.stack([np.sin(ang_d), np.cos(ang_d), np.sin(ang_w), np.cos(ang_w)], 1).astype(
        np.float32
    )


def bar_features(
    ret: np.ndarray, rng: np.ndarray, z: np.ndarray, sigma: np.ndarray, funding_now: np.ndarray
) -> np.ndarray:
    """(T, 5) float32 matrix: returns, range and volatility in percent, z-score, funding in bp."""
    cols = [100.0 * ret, 100.0 * rng, z, 100.0 * sigma, 1e4 * funding_now]
    return np.ascontiguousarray(np.stack(cols, axis=1).astype(np.float32))


def static_observations(feat: np.ndarray, time: np.ndarray, window: int) -> np.ndarray:
    """(T, D) float32: row t = [bars t-window+1 .. t flattened, 3 zeros, time features of t].

    The 3 zero columns are where each view writes the account features; rows t < window - 1
    are zero (never observed). Built once so an observation is one row gather.
    """
    n_bars, n_feat = feat.shape
    wf = window * n_feat
    out = np.zeros((n_bars, wf + N_ACCOUNT_FEATURES + N_TIME_FEATURES), dtype=np.float32)
    flat = np.ascontiguousarray(feat).ravel()
    out[window - 1 :, :wf] = sliding_window_view(flat, wf)[::n_feat]
    out[:, wf + N_ACCOUNT_FEATURES :] = time
    return out
