"""Synthetic markets: moments match parameters (fixed seeds, stated bounds), schema holds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from marketsim import synthetic
from marketsim.data import read_candles, validate_candles
from marketsim.data.stats import candle_stats


def _log_returns(df: pd.DataFrame) -> np.ndarray:
    return np.log(df["close"].to_numpy() / df["open"].to_numpy())


def _check_schema(df: pd.DataFrame) -> None:
    validate_candles(df)
    assert df.index.is_monotonic_increasing and df.index.is_unique
    o, h, l, c = (df[k].to_numpy() for k in ("open", "high", "low", "close"))
    assert np.all(l <= np.minimum(o, c)) and np.all(h >= np.maximum(o, c)) and np.all(l > 0)
    np.testing.assert_array_equal(o[1:], c[:-1])  # open = previous close


def test_gbm_moments():
    n, sigma, mu = 200_000, 0.001, 1e-4
    df = synthetic.gbm(n, sigma=sigma, mu=mu, seed=11)
    _check_schema(df)
    r = _log_returns(df)
    se_mean = sigma / np.sqrt(n)
    assert abs(r.mean() - (mu - sigma**2 / 2)) < 5 * se_mean
    assert abs(r.var() / sigma**2 - 1) < 5 * np.sqrt(2 / n)  # 5 standard errors = 1.6%
    assert abs(stats.skew(r)) < 5 * np.sqrt(6 / n) and abs(stats.kurtosis(r)) < 5 * np.sqrt(24 / n)


def test_gbm_high_low_follow_brownian_bridge_extremes():
    """Reference: fine-grid Brownian bridges simulated here, with the discrete-max correction."""
    sigma, n = 0.001, 4000
    df = synthetic.gbm(n, sigma=sigma, seed=5)
    up = np.log(df["high"] / df["open"]).to_numpy()
    down = np.log(df["low"] / df["open"]).to_numpy()
    rng = np.random.default_rng(99)
    steps = 2000
    paths = np.cumsum(rng.standard_normal((n, steps)) * sigma / np.sqrt(steps), axis=1)
    shift = 0.5826 * sigma / np.sqrt(steps)  # Broadie-Glasserman continuity correction
    ref_up = np.maximum(paths.max(axis=1), 0) + shift
    ref_down = np.minimum(paths.min(axis=1), 0) - shift
    assert stats.ks_2samp(up, ref_up).pvalue > 1e-3
    assert stats.ks_2samp(down, ref_down).pvalue > 1e-3
    # and the exact mean of the range of Brownian motion, sqrt(8/pi) sigma, within 3%
    assert abs(np.mean(up - down) / (np.sqrt(8 / np.pi) * sigma) - 1) < 0.03


def test_merton_jump_frequency_size_and_cumulants():
    n, sigma, lam, mj, sj = 1_000_000, 0.001, 0.01, -0.004, 0.01
    rng = np.random.default_rng(21)
    r, n_jumps, jump_sum = synthetic.merton_log_returns(n, sigma, lam, mj, sj, rng=rng)
    # frequency: Poisson(lam) per bar; SE of the mean is sqrt(lam / n) = 1e-4
    assert abs(n_jumps.mean() - lam) < 5 * np.sqrt(lam / n)
    single = jump_sum[n_jumps == 1]
    assert abs(single.mean() - mj) < 5 * sj / np.sqrt(single.size)
    assert abs(single.std() / sj - 1) < 5 * np.sqrt(1 / (2 * single.size))
    # cumulants of the returns alone (docs eq. S2): k2, k3, k4
    k2 = sigma**2 + lam * (mj**2 + sj**2)
    k3 = lam * (mj**3 + 3 * mj * sj**2)
    k4 = lam * (mj**4 + 6 * mj**2 * sj**2 + 3 * sj**4)
    c = r - r.mean()
    assert abs(np.mean(c**2) / k2 - 1) < 0.03
    assert abs(np.mean(c**3) / k3 - 1) < 0.25
    assert abs((np.mean(c**4) - 3 * np.mean(c**2) ** 2) / k4 - 1) < 0.15
    # compensated drift: E[S_{t+1}/S_t] = e^mu = 1
    assert abs(np.mean(np.exp(r)) - 1) < 5 * np.std(np.exp(r)) / np.sqrt(n)


def test_merton_frame_uses_the_same_jumps():
    df = synthetic.merton(5000, sigma=0.001, jump_rate=0.02, jump_std=0.02, seed=4)
    _check_schema(df)
    r, _, _ = synthetic.merton_log_returns(
        5000, 0.001, 0.02, 0.0, 0.02, rng=np.random.default_rng(4)
    )
    np.testing.assert_allclose(np.diff(np.log(df["close"].to_numpy())), r[1:], atol=1e-12)


def test_regime_switching_occupancy_and_per_regime_vol():
    sig = (0.0005, 0.002)
    df, z = synthetic.regime_switching(600_000, sigmas=sig, seed=8, return_regimes=True)
    _check_schema(df)
    r = _log_returns(df)
    for k in (0, 1):
        rk = r[z == k]
        assert abs(rk.std() / sig[k] - 1) < 5 * np.sqrt(1 / (2 * rk.size))
    # stationary distribution of [[.999, .001], [.005, .995]] is (5/6, 1/6)
    assert abs((z == 1).mean() - 1 / 6) < 0.04
    runs = np.diff(np.flatnonzero(np.diff(np.concatenate([[-1], z, [-1]])) != 0))
    first = z[0]
    calm = runs[0 if first == 0 else 1 :: 2]
    assert abs(calm.mean() / 1000 - 1) < 0.2  # mean holding time 1 / (1 - 0.999)


def test_regime_transition_validation():
    with pytest.raises(ValueError, match="row-stochastic"):
        synthetic.regime_switching(10, sigmas=(0.1, 0.2), transition=np.array([[0.5, 0.2], [0, 1]]))


def test_abm_poisson_increments_arrivals_and_fill_probability():
    path = synthetic.abm_poisson(n_steps=200_000, T=1000.0, sigma=2.0, A=140.0, k=1.5, seed=3)
    dt = path.dt
    assert dt == pytest.approx(0.005)
    inc = np.diff(path.mid)
    assert abs(inc.var() / (4.0 * dt) - 1) < 5 * np.sqrt(2 / inc.size)
    assert abs(path.n_buys.mean() - 140 * dt) < 5 * np.sqrt(140 * dt / inc.size)
    for delta in (0.2, 1.0, 2.0):
        p = 1 - np.exp(-140 * np.exp(-1.5 * delta) * dt)  # eq. (S5)
        for filled in (path.ask_filled(delta), path.bid_filled(delta)):
            assert abs(filled.mean() - p) < 5 * np.sqrt(p * (1 - p) / filled.size)
    _check_schema(path.to_candles())


def test_abm_defaults_are_the_paper_setup():
    path = synthetic.abm_poisson()
    assert path.mid.size == 201 and path.mid[0] == 100.0 and path.dt == pytest.approx(1 / 200)
    assert (path.A, path.k, path.sigma) == (140.0, 1.5, 2.0)


def test_default_candles_schema_and_determinism():
    a = synthetic.default_candles()
    assert len(a) == 20_000 and a.index[1] - a.index[0] == pd.Timedelta("1min")
    _check_schema(a)
    pd.testing.assert_frame_equal(a, synthetic.default_candles())
    assert not a["close"].equals(synthetic.default_candles(seed=1)["close"])
    assert synthetic.default_candles(100, timeframe="5m").index.freqstr is None


def test_default_candles_match_real_ethusdt_statistics(shared_data):
    real = read_candles(shared_data / "binance-spot_ETHUSDT_1m_20210402_20210615.csv.gz")
    target = candle_stats(real)
    got = [candle_stats(synthetic.default_candles(len(real), seed=s)) for s in (1, 2)]
    mean = {k: np.mean([g[k] for g in got]) for k in target}
    # bounds: relative for scales, absolute for correlations
    for key, tol in (
        ("vol_robust", 0.25),
        ("vol_std", 0.25),
        ("range_mean", 0.3),
        ("volume_median", 0.25),
        ("volume_mean", 0.3),
    ):
        assert abs(mean[key] / target[key] - 1) < tol, (key, mean[key], target[key])
    for key, tol in (
        ("acf_abs_1", 0.12),
        ("acf_abs_60", 0.12),
        ("corr_logvol_absret", 0.12),
        ("log_volume_std", 0.2),
    ):
        assert abs(mean[key] - target[key]) < tol, (key, mean[key], target[key])
    assert mean["tail_rate_8"] > 0.5 * target["tail_rate_8"]  # fat tails present
