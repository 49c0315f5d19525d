"""Confidence interval of the Sharpe ratio by the stationary bootstrap (Politis and Romano 1994).

Daily returns are autocorrelated and heavy-tailed, so the textbook standard error of the Sharpe
ratio (which assumes i.i.d. normal returns) is too optimistic. The stationary bootstrap resamples
*blocks* of consecutive days of random length, which keeps short-range dependence, and wraps
around the end of the sample so every day is equally likely to be drawn
(docs/guide/evaluation.md, eq. (16)):

    a resampled series r*_1..r*_n: r*_1 = r_{I_1}; for t > 1, with probability p = 1 / L a new
    block starts at a uniform index I_t, otherwise I_t = I_{t-1} + 1 (mod n)

Block lengths are geometric with mean ``L`` (default ``ceil(n ** (1/3))``, the usual rate for
variance estimation). The interval is the percentile interval of the Sharpe ratio (eq. (5),
:func:`marketsim.metrics.sharpe_of_returns`) over ``n_boot`` resamples. Seeded: the same
returns and seed give the same interval.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from marketsim.metrics import daily_returns, sharpe_of_returns

__all__ = ["stationary_bootstrap_indices", "sharpe_ci", "sharpe_ci_of_equity"]


# --8<-- [start:stationary-bootstrap]
def stationary_bootstrap_indices(n: int, n_boot: int, block: float,
                                 rng: np.random.Generator) -> np.ndarray:
    """(n_boot, n) indices of stationary-bootstrap resamples of a series of length ``n``
    (eq. (16)): a new block at a uniform index with probability 1 / ``block``, else the next
    index, wrapping around."""
    if n < 1 or n_boot < 1:
        raise ValueError(f"n={n}, n_boot={n_boot}: expected both >= 1")
    if not block >= 1.0:
        raise ValueError(f"block {block}: expected a mean block length >= 1")
    new = rng.random((n_boot, n)) < 1.0 / block
    new[:, 0] = True
    starts = rng.integers(0, n, size=(n_boot, n))
    pos = np.arange(n)
    last_new = np.maximum.accumulate(np.where(new, pos, 0), axis=1)  # where each block began
    first = np.take_along_axis(starts, last_new, axis=1)
    return (first + (pos - last_new)) % n
# --8<-- [end:stationary-bootstrap]


def sharpe_ci(returns: Any, level: float = 0.95, n_boot: int = 2000,
              block: float | None = None, seed: int = 0) -> dict[str, float]:
    """Sharpe ratio of daily ``returns`` (eq. (5)) and its stationary-bootstrap percentile
    interval at ``level`` (eq. (16)). Returns ``sharpe``, ``sharpe_lo``, ``sharpe_hi``,
    ``ci_level``, ``ci_block`` (the mean block length used) and ``ci_n_boot``. With fewer than
    two returns the interval is [sharpe, sharpe] (= 0, nothing to resample)."""
    r = np.asarray(returns, dtype=np.float64).reshape(-1)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level {level}: expected a number in (0, 1)")
    if not np.all(np.isfinite(r)):
        raise ValueError("returns: expected finite numbers")
    n = len(r)
    point = float(sharpe_of_returns(r)) if n else 0.0
    b = float(block) if block is not None else float(max(1, math.ceil(n ** (1.0 / 3.0))))
    out = {"sharpe": point, "sharpe_lo": point, "sharpe_hi": point, "ci_level": level,
           "ci_block": b, "ci_n_boot": float(n_boot)}
    if n < 2:
        return out
    rng = np.random.default_rng(seed)
    draws = sharpe_of_returns(r[stationary_bootstrap_indices(n, n_boot, b, rng)])
    tail = (1.0 - level) / 2.0
    out["sharpe_lo"], out["sharpe_hi"] = (float(x) for x in np.quantile(draws, [tail, 1 - tail]))
    return out


def sharpe_ci_of_equity(equity: pd.Series, **kwargs: Any) -> dict[str, float]:
    """:func:`sharpe_ci` of an equity curve's UTC-daily returns (eq. (1))."""
    return sharpe_ci(daily_returns(equity).to_numpy(), **kwargs)
