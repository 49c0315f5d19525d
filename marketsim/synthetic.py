"""Seeded synthetic markets in the candle schema.

Every generator takes a ``seed`` and returns the same frame for the same arguments. Parameters
are **per bar** (one bar = one ``timeframe``): ``sigma`` is the standard deviation of a bar's
log return, ``jump_rate`` the expected number of jumps per bar. Equations are in
docs/marketsim/data.md, section "Synthetic markets".

* :func:`gbm`: geometric Brownian motion, eq. (S1).
* :func:`merton`: Merton jump diffusion, eq. (S2); :func:`merton_log_returns` exposes the jumps.
* :func:`regime_switching`: Markov-switching volatility, eq. (S3).
* :func:`abm_poisson`: arithmetic Brownian mid with Poisson market-order arrivals for the
  Avellaneda-Stoikov benchmark, eq. (S4)-(S5).
* :func:`default_candles`: the embedded default dataset, calibrated to real 1-minute ETHUSDT,
  eq. (S6)-(S7).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from marketsim.data.timeframe import timeframe_to_timedelta

__all__ = [
    "gbm",
    "merton",
    "merton_log_returns",
    "regime_switching",
    "regime_path",
    "abm_poisson",
    "ABMPoissonPath",
    "default_candles",
    "candles_from_log_returns",
    "DEFAULT_CALIBRATION",
]

DEFAULT_START = "2021-01-01"


def _check_positive(name: str, value: float, allow_zero: bool = False) -> None:
    """Raise ValueError unless ``value`` is positive (or zero when ``allow_zero``)."""
    ok = value >= 0 if allow_zero else value > 0
    if not np.isfinite(value) or not ok:
        kind = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{name} must be a finite {kind} number, got {value!r}")


def _index(n_bars: int, timeframe: str, start: str | pd.Timestamp) -> pd.DatetimeIndex:
    """A UTC grid of ``n_bars`` candle-open times starting at ``start``."""
    step = timeframe_to_timedelta(timeframe)
    start_ts = pd.Timestamp(start)
    if start_ts.tzinfo is None:
        start_ts = start_ts.tz_localize("UTC")
    start_ts = start_ts.tz_convert("UTC")
    index = pd.date_range(start_ts, periods=n_bars, freq=step, name="timestamp").as_unit("ns")
    return pd.DatetimeIndex(index, freq=None)


def candles_from_log_returns(
    log_returns: np.ndarray,
    diffusion_sigma: np.ndarray | float,
    rng: np.random.Generator,
    s0: float = 100.0,
    volume: np.ndarray | float = 1.0,
    timeframe: str = "1m",
    start: str | pd.Timestamp = DEFAULT_START,
) -> pd.DataFrame:
    """Build OHLCV candles from per-bar log returns (open = previous close).

    High and low are the extremes of a Brownian bridge from 0 to the bar's log return ``x``
    with variance ``s**2`` (docs/marketsim/data.md, eq. (S8)): with ``U ~ Uniform(0, 1]``,
    ``log(high/open) = (x + sqrt(x**2 - 2 s**2 ln U1)) / 2`` and
    ``log(low/open) = (x - sqrt(x**2 - 2 s**2 ln U2)) / 2``, so ``low <= open, close <= high``.
    """
    r = np.asarray(log_returns, dtype=np.float64)
    n = r.size
    s = np.broadcast_to(np.asarray(diffusion_sigma, dtype=np.float64), (n,))
    _check_positive("s0", s0)
    log_close = np.log(s0) + np.cumsum(r)
    log_open = np.empty(n)
    log_open[0] = np.log(s0)
    log_open[1:] = log_close[:-1]
    u1 = 1.0 - rng.random(n)  # in (0, 1]
    u2 = 1.0 - rng.random(n)
    # --8<-- [start:bridge-extremes]
    # docs/marketsim/data.md, eq. (S8): Brownian-bridge maximum and minimum
    up = 0.5 * (r + np.sqrt(r * r - 2.0 * s * s * np.log(u1)))
    down = 0.5 * (r - np.sqrt(r * r - 2.0 * s * s * np.log(u2)))
    open_ = np.exp(log_open)
    close = np.exp(log_close)
    high = np.maximum(np.exp(log_open + up), np.maximum(open_, close))
    low = np.minimum(np.exp(log_open + down), np.minimum(open_, close))
    # --8<-- [end:bridge-extremes]
    vol = np.broadcast_to(np.asarray(volume, dtype=np.float64), (n,)).copy()
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": vol},
        index=_index(n, timeframe, start),
    )


def gbm(
    n_bars: int,
    sigma: float = 0.001,
    mu: float = 0.0,
    s0: float = 100.0,
    seed: int = 0,
    timeframe: str = "1m",
    start: str | pd.Timestamp = DEFAULT_START,
    volume: float = 1.0,
) -> pd.DataFrame:
    """Geometric Brownian motion candles, docs/marketsim/data.md eq. (S1).

    Log returns are i.i.d. ``N(mu - sigma**2 / 2, sigma**2)`` per bar, so ``E[S_t] = s0 e^{mu t}``.
    """
    _check_positive("sigma", sigma, allow_zero=True)
    rng = np.random.default_rng(seed)
    # docs/marketsim/data.md, eq. (S1)
    r = (mu - 0.5 * sigma**2) + sigma * rng.standard_normal(n_bars)
    return candles_from_log_returns(r, max(sigma, 1e-12), rng, s0, volume, timeframe, start)


def merton_log_returns(
    n_bars: int,
    sigma: float,
    jump_rate: float,
    jump_mean: float,
    jump_std: float,
    mu: float = 0.0,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-bar Merton log returns, docs/marketsim/data.md eq. (S2).

    Returns ``(log_returns, n_jumps, jump_sum)``: the number of jumps ``N ~ Poisson(jump_rate)``
    in each bar and the sum of their log sizes ``J ~ N(jump_mean, jump_std**2)``. The drift is
    compensated, ``mu - sigma**2/2 - jump_rate * kappa`` with ``kappa = E[e^J - 1]``, so that
    ``E[S_{t+1} / S_t] = e^{mu}``.
    """
    _check_positive("sigma", sigma, allow_zero=True)
    _check_positive("jump_rate", jump_rate, allow_zero=True)
    _check_positive("jump_std", jump_std, allow_zero=True)
    rng = np.random.default_rng() if rng is None else rng
    # --8<-- [start:kappa]
    kappa = np.exp(jump_mean + 0.5 * jump_std**2) - 1.0
    n_jumps = rng.poisson(jump_rate, n_bars)
    # sum of N normal jumps is N(N * mean, N * std^2)
    jump_sum = n_jumps * jump_mean + np.sqrt(n_jumps) * jump_std * rng.standard_normal(n_bars)
    drift = mu - 0.5 * sigma**2 - jump_rate * kappa
    r = drift + sigma * rng.standard_normal(n_bars) + jump_sum
    return r, n_jumps, jump_sum
    # --8<-- [end:kappa]


def merton(
    n_bars: int,
    sigma: float = 0.001,
    jump_rate: float = 0.001,
    jump_mean: float = 0.0,
    jump_std: float = 0.01,
    mu: float = 0.0,
    s0: float = 100.0,
    seed: int = 0,
    timeframe: str = "1m",
    start: str | pd.Timestamp = DEFAULT_START,
    volume: float = 1.0,
) -> pd.DataFrame:
    """Merton jump-diffusion candles, docs/marketsim/data.md eq. (S2).

    ``seed`` drives :func:`merton_log_returns` first, so
    ``merton_log_returns(..., rng=np.random.default_rng(seed))`` gives the same jumps.
    """
    rng = np.random.default_rng(seed)
    r, _, _ = merton_log_returns(n_bars, sigma, jump_rate, jump_mean, jump_std, mu, rng)
    return candles_from_log_returns(r, max(sigma, 1e-12), rng, s0, volume, timeframe, start)


def regime_path(
    n_bars: int, transition: np.ndarray, rng: np.random.Generator, initial: int | None = None
) -> np.ndarray:
    """Sample a Markov chain of regimes (ints) with row-stochastic ``transition`` matrix.

    Holding times in regime ``i`` are geometric with success probability ``1 - P[i, i]``;
    the next regime is drawn from row ``i`` without its diagonal. ``initial=None`` draws the
    first regime from the stationary distribution.
    """
    p = np.asarray(transition, dtype=np.float64)
    k = p.shape[0]
    if p.ndim != 2 or p.shape != (k, k) or np.any(p < 0) or not np.allclose(p.sum(1), 1.0):
        raise ValueError(f"transition must be a square row-stochastic matrix, got {p.tolist()}")
    if initial is None:
        w, v = np.linalg.eig(p.T)
        pi = np.real(v[:, np.argmin(np.abs(w - 1.0))])
        pi = np.abs(pi) / np.abs(pi).sum()
        state = int(rng.choice(k, p=pi))
    else:
        state = int(initial)
    out = np.empty(n_bars, dtype=np.int64)
    pos = 0
    while pos < n_bars:
        stay = p[state, state]
        length = n_bars - pos if stay >= 1.0 else int(rng.geometric(1.0 - stay))
        out[pos : pos + length] = state
        pos += length
        if pos >= n_bars:
            break
        row = p[state].copy()
        row[state] = 0.0
        state = int(rng.choice(k, p=row / row.sum()))
    return out


def regime_switching(
    n_bars: int,
    sigmas: tuple[float, ...] = (0.0005, 0.002),
    transition: np.ndarray | None = None,
    mus: tuple[float, ...] | None = None,
    s0: float = 100.0,
    seed: int = 0,
    timeframe: str = "1m",
    start: str | pd.Timestamp = DEFAULT_START,
    volume: float = 1.0,
    return_regimes: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, np.ndarray]:
    """Markov regime-switching volatility candles, docs/marketsim/data.md eq. (S3).

    The regime ``z_t`` follows :func:`regime_path`; the bar's log return is
    ``N(mu_z - sigma_z**2/2, sigma_z**2)``. Default transition: stay with probability 0.999
    (calm) and 0.995 (volatile). With ``return_regimes`` returns ``(candles, z)``.
    """
    sig = np.asarray(sigmas, dtype=np.float64)
    for i, s in enumerate(sig):
        _check_positive(f"sigmas[{i}]", float(s))
    if transition is None:
        if sig.size != 2:
            raise ValueError("transition is required when there are not exactly two regimes")
        transition = np.array([[0.999, 0.001], [0.005, 0.995]])
    mu = np.zeros_like(sig) if mus is None else np.asarray(mus, dtype=np.float64)
    if mu.shape != sig.shape:
        raise ValueError(f"mus has {mu.size} entries but sigmas has {sig.size}")
    rng = np.random.default_rng(seed)
    z = regime_path(n_bars, np.asarray(transition), rng)
    s = sig[z]
    # docs/marketsim/data.md, eq. (S3)
    r = (mu[z] - 0.5 * s**2) + s * rng.standard_normal(n_bars)
    df = candles_from_log_returns(r, s, rng, s0, volume, timeframe, start)
    return (df, z) if return_regimes else df


@dataclass(frozen=True)
class ABMPoissonPath:
    """Arithmetic Brownian mid price with Poisson market-order arrivals (docs eq. (S4)-(S5)).

    Attributes:
        times: step start times ``t_i = i * dt``, shape ``(n_steps,)``.
        mid: mid price at the start of each step, shape ``(n_steps + 1,)`` (last = at ``T``).
        n_buys: number of market buy orders arriving in each step (they lift asks).
        n_sells: number of market sell orders in each step (they hit bids).
        buy_reach: the deepest distance above the mid that any buy order in the step reaches;
            ``-inf`` when none arrived. An ask quoted at distance ``delta_a`` is filled in the
            step iff ``buy_reach >= delta_a``, which happens with probability
            ``1 - exp(-A e^{-k delta_a} dt)``, eq. (S5).
        sell_reach: the same for sell orders and bids at distance ``delta_b`` below the mid.
        dt, sigma, A, k: the parameters used.
    """

    times: np.ndarray
    mid: np.ndarray
    n_buys: np.ndarray
    n_sells: np.ndarray
    buy_reach: np.ndarray
    sell_reach: np.ndarray
    dt: float
    sigma: float
    A: float
    k: float

    def ask_filled(self, delta_a: np.ndarray | float) -> np.ndarray:
        """Boolean per step: would an ask at distance ``delta_a`` above the mid be filled."""
        return self.buy_reach >= np.asarray(delta_a)

    def bid_filled(self, delta_b: np.ndarray | float) -> np.ndarray:
        """Boolean per step: would a bid at distance ``delta_b`` below the mid be filled."""
        return self.sell_reach >= np.asarray(delta_b)

    def to_candles(self, start: str | pd.Timestamp = DEFAULT_START) -> pd.DataFrame:
        """The mid path as candles (one bar per step, 1-second grid, volume = arrivals)."""
        mid = self.mid
        o, c = mid[:-1], mid[1:]
        n = o.size
        df = pd.DataFrame(
            {
                "open": o,
                "high": np.maximum(o, c),
                "low": np.minimum(o, c),
                "close": c,
                "volume": (self.n_buys + self.n_sells).astype(np.float64),
            },
            index=_index(n, "1s", start),
        )
        return df


def _max_reach(counts: np.ndarray, k: float, rng: np.random.Generator) -> np.ndarray:
    """Maximum of ``counts[i]`` i.i.d. Exp(k) depths per step (``-inf`` where ``counts == 0``).

    Uses the inverse CDF of the maximum, ``F(x)^n = (1 - e^{-k x})^n``.
    """
    u = 1.0 - rng.random(counts.size)
    out = np.full(counts.size, -np.inf)
    pos = counts > 0
    out[pos] = -np.log1p(-np.power(u[pos], 1.0 / counts[pos])) / k
    return out


def abm_poisson(
    n_steps: int = 200,
    T: float = 1.0,
    sigma: float = 2.0,
    s0: float = 100.0,
    A: float = 140.0,
    k: float = 1.5,
    seed: int = 0,
) -> ABMPoissonPath:
    """Avellaneda-Stoikov test market: ``dS = sigma dW`` and Poisson order arrivals.

    Defaults are the AS paper's simulation (s0=100, T=1, sigma=2, 200 steps, A=140, k=1.5).
    Market buy (sell) orders arrive as a Poisson process of rate ``A``; each reaches a depth
    ``D ~ Exp(k)`` beyond the mid, so a quote at distance ``delta`` is hit with intensity
    ``lambda(delta) = A e^{-k delta}`` (docs/marketsim/data.md, eq. (S4)-(S5)).
    """
    for name, value in (("T", T), ("A", A), ("k", k)):
        _check_positive(name, value)
    _check_positive("sigma", sigma, allow_zero=True)
    if n_steps <= 0:
        raise ValueError(f"n_steps must be positive, got {n_steps}")
    rng = np.random.default_rng(seed)
    dt = T / n_steps
    # --8<-- [start:abm-step]
    # docs/marketsim/data.md, eq. (S4): S_{i+1} = S_i + sigma sqrt(dt) Z_i
    steps = sigma * np.sqrt(dt) * rng.standard_normal(n_steps)
    mid = s0 + np.concatenate([[0.0], np.cumsum(steps)])
    n_buys = rng.poisson(A * dt, n_steps)
    n_sells = rng.poisson(A * dt, n_steps)
    buy_reach = _max_reach(n_buys, k, rng)
    sell_reach = _max_reach(n_sells, k, rng)
    # --8<-- [end:abm-step]
    return ABMPoissonPath(
        times=np.arange(n_steps) * dt,
        mid=mid,
        n_buys=n_buys,
        n_sells=n_sells,
        buy_reach=buy_reach,
        sell_reach=sell_reach,
        dt=dt,
        sigma=sigma,
        A=A,
        k=k,
    )


# Calibration of default_candles to Binance spot ETHUSDT 1m, 2021-04-02..2021-06-15
# (compare with `python -m marketsim.data.calibrate`; table in docs/marketsim/data.md).
DEFAULT_CALIBRATION: dict[str, float] = {
    "s0": 2000.0,  # first open, USDT
    "sigma_median": 0.0016,  # median per-bar diffusive vol, e^{m} in eq. (S6)
    "slow_phi": 0.9995,  # AR(1) coefficient of the slow log-vol factor (half-life ~23 h)
    "slow_sd": 0.55,  # stationary std of the slow factor
    "fast_phi": 0.97,  # AR(1) coefficient of the fast log-vol factor (half-life ~23 min)
    "fast_sd": 0.40,  # stationary std of the fast factor
    "jump_rate": 0.0015,  # Merton jumps per bar
    "jump_std": 0.012,  # std of the log jump size (mean 0)
    "volume_median": 560.0,  # e^{a} in eq. (S7), base currency
    "volume_beta_vol": 0.7,  # d log volume / d log vol, eq. (S7)
    "volume_beta_abs": 0.3,  # loading of log volume on |return| / sigma_t, eq. (S7)
    "volume_noise": 0.6,  # residual std of log volume
    "volume_abs_cap": 6.0,  # |return| / sigma_t is capped here in eq. (S7) (jump bars)
}


def _ar1(n: int, phi: float, sd: float, rng: np.random.Generator) -> np.ndarray:
    """A stationary AR(1) path with coefficient ``phi`` and stationary std ``sd``."""
    shocks = sd * np.sqrt(1.0 - phi**2) * rng.standard_normal(n)
    shocks[0] = sd * rng.standard_normal()
    return lfilter([1.0], [1.0, -phi], shocks)


def default_candles(n_bars: int = 20_000, seed: int = 0, timeframe: str = "1m") -> pd.DataFrame:
    """The embedded default dataset: stochastic-volatility jump diffusion like ETHUSDT 1m.

    Log vol is the sum of a slow and a fast AR(1) factor (eq. (S6)), returns add Merton jumps,
    volume is log-normal and rises with volatility and with the bar's absolute return
    (eq. (S7)). Parameters are :data:`DEFAULT_CALIBRATION`; real and synthetic statistics are
    compared in docs/marketsim/data.md. The calibration is per 1-minute bar; other timeframes
    reuse the per-bar numbers unchanged.
    """
    if n_bars <= 0:
        raise ValueError(f"n_bars must be positive, got {n_bars}")
    c = DEFAULT_CALIBRATION
    rng = np.random.default_rng(seed)
    # --8<-- [start:vol-regime]
    # docs/marketsim/data.md, eq. (S6): sigma_t = sigma_med * exp(h_slow + h_fast)
    h = _ar1(n_bars, c["slow_phi"], c["slow_sd"], rng) + _ar1(
        n_bars, c["fast_phi"], c["fast_sd"], rng
    )
    sigma_t = c["sigma_median"] * np.exp(h)
    z = rng.standard_normal(n_bars)
    n_jumps = rng.poisson(c["jump_rate"], n_bars)
    jumps = np.sqrt(n_jumps) * c["jump_std"] * rng.standard_normal(n_bars)
    kappa = np.exp(0.5 * c["jump_std"] ** 2) - 1.0
    r = -0.5 * sigma_t**2 - c["jump_rate"] * kappa + sigma_t * z + jumps
    # docs/marketsim/data.md, eq. (S7): log-normal volume tied to vol and |return|;
    # 0.8 ~ E|Z| = sqrt(2/pi) centres the |return| term
    log_v = (
        np.log(c["volume_median"])
        + c["volume_beta_vol"] * h
        + c["volume_beta_abs"] * (np.minimum(np.abs(r) / sigma_t, c["volume_abs_cap"]) - 0.8)
        + c["volume_noise"] * rng.standard_normal(n_bars)
    )
    return candles_from_log_returns(r, sigma_t, rng, c["s0"], np.exp(log_v), timeframe)
    # --8<-- [end:vol-regime]
