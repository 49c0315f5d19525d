"""Matrix-exponential optimal quotes against an independent finite-difference ODE solution."""

import math

import numpy as np
import pytest

from marketsim.mm.cartea import cara_inventory_table, cartea_jaimungal_table
from marketsim.mm.formulas import glft_coefficients


def _fd_solution(A, k, phi, alpha, q_max, n_steps, dt, substeps=40):
    """Solve the CJ HJB ODE system for h(t, q) backwards with RK4; return depth tables.

    dh/dt = phi q^2 - (A e^-1 / k) [exp(k(h_{q-1} - h_q)) 1{q>-Q} + exp(k(h_{q+1} - h_q)) 1{q<Q}],
    h(T, q) = -alpha q^2; the feedback depths are 1/k - (h_{q-/+1} - h_q).
    """
    q = np.arange(-q_max, q_max + 1, dtype=float)
    c = A * math.exp(-1.0) / k

    def rhs(h):
        out = phi * q * q
        up = np.zeros_like(h)
        up[1:] = np.exp(k * (h[:-1] - h[1:]))      # ask side: q -> q-1, not at -Q
        down = np.zeros_like(h)
        down[:-1] = np.exp(k * (h[1:] - h[:-1]))   # bid side: q -> q+1, not at +Q
        return out - c * (up + down)

    h = -alpha * q * q
    hs = np.empty((n_steps + 1, q.size))
    hs[n_steps] = h
    step = dt / substeps
    for n in range(n_steps - 1, -1, -1):
        for _ in range(substeps):  # integrate backwards in time: t -> t - step
            k1 = rhs(h)
            k2 = rhs(h - 0.5 * step * k1)
            k3 = rhs(h - 0.5 * step * k2)
            k4 = rhs(h - step * k3)
            h = h - step / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
        hs[n] = h
    bid = 1.0 / k - (hs[:, 1:] - hs[:, :-1])
    ask = 1.0 / k - (hs[:, :-1] - hs[:, 1:])
    return bid, ask


@pytest.mark.parametrize("phi,alpha", [(0.2, 0.0), (0.05, 0.15), (1.0, 0.1)])
def test_cartea_jaimungal_matches_finite_differences(phi, alpha):
    A, k, q_max, n_steps, dt = 140.0, 1.5, 6, 40, 0.025
    table = cartea_jaimungal_table(A, k, phi, alpha, q_max, n_steps, dt)
    fd_bid, fd_ask = _fd_solution(A, k, phi, alpha, q_max, n_steps, dt)
    np.testing.assert_allclose(table.bid_depth[:, :-1], fd_bid, atol=1e-7)
    np.testing.assert_allclose(table.ask_depth[:, 1:], fd_ask, atol=1e-7)


def test_terminal_depths_by_hand():
    # at tau = 0, omega = exp(-alpha k q^2): delta_b(q) = 1/k + alpha (2q + 1)
    k, alpha = 1.5, 0.3
    table = cartea_jaimungal_table(140.0, k, 0.1, alpha, 3, 5, 0.01)
    q = np.arange(-3, 3)
    np.testing.assert_allclose(table.bid_depth[-1, :-1], 1 / k + alpha * (2 * q + 1))


def test_symmetry_and_depths_lookup():
    table = cartea_jaimungal_table(140.0, 1.5, 0.2, 0.0, 10, 50, 0.02)
    # bid at q equals ask at -q by symmetry of the problem
    np.testing.assert_allclose(table.bid_depth[:, :-1], table.ask_depth[:, :0:-1], atol=1e-10)
    bid, ask = table.depths(np.array([0, 0, 50]), np.array([-3.0, 4.0, 99.0]))
    assert bid[0] == table.bid_depth[0, 7] and ask[1] == table.ask_depth[0, 14]
    assert bid[2] == table.bid_depth[50, 20]  # q clipped to the grid
    # long inventory: bid deeper than ask
    b, a = table.depths(np.array([0]), np.array([3.0]))
    assert b[0] > a[0]


def test_cara_table_approaches_glft_asymptote():
    # long horizon, inventory far from the bound: GLFT's asymptotic quotes are the limit
    gamma, sigma, A, k = 0.1, 2.0, 140.0, 1.5
    table = cara_inventory_table(A, k, gamma, sigma, 30, 400, 0.05)
    c1, c2 = glft_coefficients(gamma, sigma, A, k)
    q = np.arange(-2.0, 3.0)
    bid, ask = table.depths(np.zeros(q.size, dtype=int), q)
    np.testing.assert_allclose(bid, c1 + 0.5 * (2 * q + 1) * c2, atol=0.01)
    np.testing.assert_allclose(ask, c1 - 0.5 * (2 * q - 1) * c2, atol=0.01)


def test_bad_parameters():
    with pytest.raises(ValueError, match="k"):
        cartea_jaimungal_table(140.0, 0.0, 0.1, 0.0, 5, 10, 0.1)
    with pytest.raises(ValueError, match="gamma"):
        cara_inventory_table(140.0, 1.5, -1.0, 2.0, 5, 10, 0.1)
    with pytest.raises(ValueError, match="q_max"):
        cartea_jaimungal_table(140.0, 1.5, 0.1, 0.0, 0, 10, 0.1)
    with pytest.raises(ValueError, match="phi"):
        cartea_jaimungal_table(140.0, 1.5, float("nan"), 0.0, 5, 10, 0.1)
