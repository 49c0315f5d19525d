"""Statistics of the A/B rule (docs/guide/deployment.md, eqs. (1)-(4)): per-bar returns per
unit of capital, the Sharpe ratio, its standard error, and the probabilistic Sharpe ratio.

Pure functions of numpy arrays; no state, no I/O.
"""

from __future__ import annotations

import math

import numpy as np

from marketsim.metrics import sharpe_of_returns

__all__ = ["unit_returns", "sharpe", "sharpe_std_error", "probabilistic_sharpe", "drawdown"]


def unit_returns(equity: np.ndarray) -> np.ndarray:
    """Eq. (1): r_t = E_t / E_{t-1} - 1, the return per unit of capital of each bar (the same
    for 10% and 90% of the capital: what makes the two books comparable)."""
    e = np.asarray(equity, dtype=np.float64)
    if e.size < 2:
        return np.zeros(0)
    prev = e[:-1]
    return np.where(prev > 0, e[1:] / np.where(prev > 0, prev, 1.0) - 1.0, 0.0)


def sharpe(r: np.ndarray) -> float:
    """Eq. (2): SR = mean(r) / std(r) per bar (0 when r does not vary): the one Sharpe rule,
    :func:`marketsim.metrics.sharpe_of_returns`, not annualised."""
    return float(sharpe_of_returns(r, periods_per_year=1))


def _moments(r: np.ndarray) -> tuple[float, float]:
    """Skewness and (non-excess) kurtosis of r; (0, 3) for a constant series."""
    r = np.asarray(r, dtype=np.float64)
    sd = float(r.std())
    if sd <= 1e-15:
        return 0.0, 3.0
    z = (r - r.mean()) / sd
    return float(np.mean(z**3)), float(np.mean(z**4))


def sharpe_std_error(r: np.ndarray, sr: float | None = None, floor: bool = True) -> float:
    """Eq. (3): the standard error of the estimated Sharpe ratio with non-normal returns
    (Mertens 2002; Bailey and Lopez de Prado 2012):
    sqrt((1 - g3 SR + (g4 - 1)/4 SR^2) / (n - 1)); with ``floor``, never below the normal
    returns' sqrt((1 + SR^2 / 2) / (n - 1)) (eq. (3'): skewness of the same sign as SR would
    otherwise shrink it, and a rollback would trust a few fee spikes too much)."""
    r = np.asarray(r, dtype=np.float64)
    n = r.size
    if n < 2:
        return math.inf
    sr = sharpe(r) if sr is None else sr
    g3, g4 = _moments(r)
    var = 1.0 - g3 * sr + (g4 - 1.0) / 4.0 * sr * sr
    if floor:
        var = max(var, 1.0 + sr * sr / 2.0)
    return math.sqrt(max(var, 1e-12) / (n - 1))


# --8<-- [start:psr]
def probabilistic_sharpe(r: np.ndarray, benchmark: float, benchmark_se: float = 0.0) -> float:
    """Eq. (4), the probabilistic Sharpe ratio PSR(SR*) = Phi((SR - SR*) / sqrt(se(SR)^2 +
    se(SR*)^2)): the probability that the true Sharpe ratio of the returns ``r`` exceeds the
    benchmark SR*, given their estimate, sample size, skewness and kurtosis (Bailey and Lopez
    de Prado 2012). ``benchmark_se`` is the benchmark's own standard error when it is itself
    estimated (0: a known benchmark, the original PSR)."""
    sr = sharpe(r)
    se = math.hypot(sharpe_std_error(r, sr), benchmark_se)
    if not math.isfinite(se):
        return 0.5
    return 0.5 * math.erfc(-(sr - benchmark) / se / math.sqrt(2.0))
# --8<-- [end:psr]


def drawdown(equity: np.ndarray) -> float:
    """Current drawdown from the running peak, 1 - E_t / max_{s<=t} E_s (0 at a new peak)."""
    e = np.asarray(equity, dtype=np.float64)
    if e.size == 0:
        return 0.0
    peak = float(e.max())
    return 1.0 - float(e[-1]) / peak if peak > 0 else 0.0
