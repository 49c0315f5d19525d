"""Closed-form AS and GLFT quotes checked against numbers worked by hand."""

import math

import numpy as np
import pytest

from marketsim.mm.formulas import (
    as_quotes,
    glft_coefficients,
    glft_quotes,
    optimal_spread,
    reservation_price,
)


def test_paper_spread_at_start_and_end():
    # gamma*sigma^2*tau + (2/gamma) ln(1 + gamma/k) = 0.1*4*1 + 20*ln(1 + 1/15)
    # ln(16/15) = 0.0645385 -> 1.29077 at tau = 0 and 1.69077 at tau = 1.
    assert optimal_spread(0.1, 2.0, 1.0, 1.5) == pytest.approx(1.691, abs=5e-4)
    assert optimal_spread(0.1, 2.0, 0.0, 1.5) == pytest.approx(1.291, abs=5e-4)
    assert optimal_spread(0.1, 2.0, 0.0, 1.5) == pytest.approx(20 * math.log(16 / 15), rel=1e-12)


def test_reservation_price_by_hand():
    # r = 100 - 3*0.1*4*0.5 = 99.4
    assert reservation_price(100.0, 3, 0.1, 2.0, 0.5) == pytest.approx(99.4)
    assert reservation_price(100.0, -2, 0.1, 2.0, 0.25) == pytest.approx(100.2)
    assert reservation_price(100.0, 5, 0.1, 2.0, 0.0) == pytest.approx(100.0)


def test_quotes_straddle_reservation_price_and_broadcast():
    q = np.array([-2.0, 0.0, 2.0])
    bid, ask = as_quotes(100.0, q, 0.1, 2.0, 0.5, 1.5)
    r = reservation_price(100.0, q, 0.1, 2.0, 0.5)
    np.testing.assert_allclose(0.5 * (bid + ask), r)
    np.testing.assert_allclose(ask - bid, optimal_spread(0.1, 2.0, 0.5, 1.5))
    # a long book quotes lower: both bid and ask fall with q
    assert np.all(np.diff(bid) < 0) and np.all(np.diff(ask) < 0)


def test_glft_constants_by_hand():
    # gamma=0.1, k=1.5, sigma=2, A=140: c1 = ln(16/15)/0.1 = 0.645385;
    # c2 = sqrt(4*0.1/(2*1.5*140) * (16/15)^16) = sqrt(0.000952381 * 2.8096) = 0.051728
    c1, c2 = glft_coefficients(0.1, 2.0, 140.0, 1.5)
    assert c1 == pytest.approx(0.645385, rel=1e-5)
    assert c2 == pytest.approx(math.sqrt(0.4 / 420 * (16 / 15) ** 16), rel=1e-12)
    assert c2 == pytest.approx(0.05173, rel=1e-3)


def test_glft_quotes_skew_and_spread():
    c1, c2 = glft_coefficients(0.1, 2.0, 140.0, 1.5)
    bid, ask = glft_quotes(100.0, np.array([-1.0, 0.0, 3.0]), 0.1, 2.0, 140.0, 1.5)
    np.testing.assert_allclose(ask - bid, 2 * c1 + c2)  # spread independent of q
    np.testing.assert_allclose(0.5 * (bid + ask), 100.0 - np.array([-1.0, 0.0, 3.0]) * c2)


@pytest.mark.parametrize("kwargs", [dict(k=0.0), dict(k=-1.0), dict(gamma=0.0),
                                    dict(gamma=-0.1), dict(gamma=float("nan"))])
def test_bad_parameters_raise(kwargs):
    args = dict(gamma=0.1, sigma=2.0, tau=1.0, k=1.5) | kwargs
    with pytest.raises(ValueError, match="gamma|k"):
        optimal_spread(**args)
    with pytest.raises(ValueError):
        glft_quotes(100.0, 0.0, args["gamma"], 2.0, 140.0, args["k"])
