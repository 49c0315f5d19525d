"""Estimators of sigma (price units) and of A, k in lambda(delta) = A exp(-k delta)."""

import math

import numpy as np
import pytest

from marketsim.mm.estimators import (
    fit_intensity,
    intensity_from_candles,
    intensity_from_trades,
    sigma_abs_from_relative,
    sigma_from_prices,
)


def test_sigma_recovered_from_brownian_path():
    rng = np.random.default_rng(3)
    sigma, dt, n = 3.0, 0.01, 20_000
    prices = 100.0 + np.cumsum(sigma * math.sqrt(dt) * rng.standard_normal(n))
    est = sigma_from_prices(prices, dt=dt)
    # standard error of a sample std is about sigma/sqrt(2n) = 0.015; allow 4 of them
    assert abs(est - sigma) < 0.06


def test_relative_to_absolute_by_hand():
    # 0.1% per step at price 2000 is 2 price units per step, not 0.001
    assert sigma_abs_from_relative(0.001, 2000.0) == pytest.approx(2.0)
    with pytest.raises(ValueError):
        sigma_abs_from_relative(0.001, 0.0)


def test_fit_intensity_exact_on_noiseless_rates():
    d = np.linspace(0.1, 3.0, 10)
    A, k = fit_intensity(d, 140.0 * np.exp(-1.5 * d))
    assert A == pytest.approx(140.0, rel=1e-10) and k == pytest.approx(1.5, rel=1e-10)


def test_intensity_from_simulated_trades():
    # trades on each side arrive at rate L and land exp(k)-distributed beyond the mid, so a quote
    # at depth delta fills at rate L exp(-k delta): A = L
    rng = np.random.default_rng(5)
    L, k, duration = 50.0, 2.0, 1000.0
    n = rng.poisson(2 * L * duration)
    side = rng.choice([-1.0, 1.0], n)
    mids = 100.0 + rng.normal(0.0, 1.0, n)
    prices = mids + side * rng.exponential(1.0 / k, n)
    d = np.linspace(0.0, 2.0, 9)
    rates = intensity_from_trades(prices, mids, d, duration)
    A_hat, k_hat = fit_intensity(d, rates)
    assert abs(A_hat / L - 1) < 0.05 and abs(k_hat / k - 1) < 0.05


def test_intensity_from_candles_by_hand():
    close = np.array([100.0, 101.0, 100.0])
    high = np.array([100.0, 103.0, 101.5])
    low = np.array([100.0, 100.5, 97.0])
    # delta 0.5: bar1 (ref 100) ask fills (103 > 100.5), bid not (100.5 < 99.5 false);
    #            bar2 (ref 101) ask not (101.5 > 101.5 false), bid fills (97 < 100.5) -> P = 0.5
    # delta 2.5: bar1 ask fills (103 > 102.5); bar2 bid fills (97 < 98.5) -> P = 0.5
    # delta 3.5: bar1 ask not (103 > 103.5 false); bar2 bid fills (97 < 97.5) -> P = 0.25
    rates = intensity_from_candles(close, high, low, np.array([0.5, 2.5, 3.5]), dt=0.5)
    np.testing.assert_allclose(rates, -np.log(1 - np.array([0.5, 0.5, 0.25])) / 0.5)


def test_bad_data_names_the_field():
    p = np.array([1.0, 2.0, np.nan, 3.0])
    with pytest.raises(ValueError, match="prices.*position"):
        sigma_from_prices(p)
    with pytest.raises(ValueError, match="close"):
        intensity_from_candles(p, p, p, np.array([0.1]))
    with pytest.raises(ValueError, match="k"):
        fit_intensity(np.array([0.0, 1.0]), np.array([1.0, 2.0]))  # rates rising with depth
