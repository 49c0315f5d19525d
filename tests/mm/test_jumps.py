"""Merton-jump reservation price: exact CARA indifference price checked by Monte Carlo."""

import numpy as np
import pytest

from marketsim.mm.formulas import reservation_price
from marketsim.mm.jumps import (
    gaussian_jump_mgf,
    merton_jump_correction,
    merton_reservation_price,
)


def _mc_reservation(s, q, gamma, sigma, tau, lam, mu, sd, n, seed):
    """Reservation price from simulated S_T: r = s + ln(E_{q-1}/E_{q+1})/(2 gamma), with SE.

    E_j = E[exp(-gamma j (S_T - s))]; SE by the delta method on the two sample means.
    """
    rng = np.random.default_rng(seed)
    jumps = rng.poisson(lam * tau, n)
    ds = sigma * np.sqrt(tau) * rng.standard_normal(n) + jumps * mu
    ds += np.sqrt(jumps) * sd * rng.standard_normal(n)
    x = np.exp(-gamma * (q - 1) * ds)
    y = np.exp(-gamma * (q + 1) * ds)
    mx, my = x.mean(), y.mean()
    r = s + (np.log(mx) - np.log(my)) / (2 * gamma)
    cov = np.cov(np.vstack([x, y]))
    grad = np.array([1 / mx, -1 / my]) / (2 * gamma)
    se = float(np.sqrt(grad @ cov @ grad / n))
    return r, se


@pytest.mark.parametrize("q,mu,sd", [(2.0, -0.5, 1.5), (-3.0, 0.3, 1.0), (0.0, -0.8, 0.5)])
def test_merton_reservation_price_matches_monte_carlo(q, mu, sd):
    s, gamma, sigma, tau, lam = 100.0, 0.1, 2.0, 1.0, 5.0
    mgf = gaussian_jump_mgf(mu, sd)
    r = merton_reservation_price(s, q, gamma, sigma, tau, lam, mgf)
    r_mc, se = _mc_reservation(s, q, gamma, sigma, tau, lam, mu, sd, 400_000, seed=11)
    assert abs(r - r_mc) < 4 * se, (r, r_mc, se)
    # the correction is material (several SE away from plain AS) ...
    correction = r - reservation_price(s, q, gamma, sigma, tau)
    assert abs(correction) > 10 * se
    # ... and the source document's term -lam*E[exp(-gamma J) - 1]*tau is not it
    doc_term = -lam * (mgf(np.array(-gamma)) - 1.0) * tau
    assert abs(reservation_price(s, q, gamma, sigma, tau) + doc_term - r_mc) > 10 * se


def test_correction_by_hand_and_special_cases():
    # q=2, gamma=0.1, J ~ N(-0.5, 1.5^2): M(t) = exp(-0.5 t + 1.125 t^2)
    # M(-0.3) = exp(0.25125), M(-0.1) = exp(0.06125); correction = -(5/0.2)(M(-0.3) - M(-0.1))
    mgf = gaussian_jump_mgf(-0.5, 1.5)
    expected = -25.0 * (np.exp(0.25125) - np.exp(0.06125))
    assert merton_jump_correction(2.0, 0.1, 1.0, 5.0, mgf) == pytest.approx(expected, rel=1e-12)
    # no jumps: plain AS; flat book with symmetric jumps: the mid
    assert merton_reservation_price(100.0, 3.0, 0.1, 2.0, 0.5, 0.0, mgf) == pytest.approx(
        reservation_price(100.0, 3.0, 0.1, 2.0, 0.5))
    sym = gaussian_jump_mgf(0.0, 2.0)
    assert merton_reservation_price(100.0, 0.0, 0.1, 2.0, 0.5, 3.0, sym) == pytest.approx(100.0)
    # tau = 0: no correction
    assert merton_jump_correction(4.0, 0.1, 0.0, 5.0, mgf) == 0.0


def test_bad_parameters():
    mgf = gaussian_jump_mgf(0.0, 1.0)
    with pytest.raises(ValueError, match="gamma"):
        merton_jump_correction(1.0, 0.0, 1.0, 1.0, mgf)
    with pytest.raises(ValueError, match="lam"):
        merton_jump_correction(1.0, 0.1, 1.0, -1.0, mgf)
    with pytest.raises(ValueError, match="std"):
        gaussian_jump_mgf(0.0, -1.0)
