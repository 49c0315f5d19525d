"""Closed-form Avellaneda-Stoikov and Gueant-Lehalle-Fernandez-Tapia quotes.

Pure functions over floats or numpy arrays (they broadcast; not lists). Units: ``s`` and every quote in
price units, ``sigma`` in price units per square root of the time unit, ``tau`` in time units,
``k`` in 1/price units, ``A`` in fills per time unit. The market-making kernel quotes with these
same functions; it passes ``check=False`` because its ``gamma`` and ``k`` are valid by
construction and a check costs more than the formula on small arrays.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def check_positive(name: str, value: ArrayLike) -> None:
    """Raise ValueError unless every element of ``value`` is finite and > 0."""
    arr = np.asarray(value, dtype=float)
    if not ((arr > 0.0) & (arr < np.inf)).all():  # NaN fails both comparisons
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")


# --8<-- [start:reservation-price]
def reservation_price(s: ArrayLike, q: ArrayLike, gamma: ArrayLike, sigma: ArrayLike,
                      tau: ArrayLike, *, check: bool = True) -> np.ndarray:
    """Avellaneda-Stoikov reservation (indifference) price ``r = s - q*gamma*sigma^2*tau``.

    ``check=False`` skips the ValueError for a ``gamma`` that is not finite and > 0.
    """
    if check:
        check_positive("gamma", gamma)
    # docs/marketsim/market-making.md, eq. (4)
    return s - q * gamma * (sigma * sigma) * tau


def optimal_spread(gamma: ArrayLike, sigma: ArrayLike, tau: ArrayLike, k: ArrayLike, *,
                   check: bool = True) -> np.ndarray:
    """Avellaneda-Stoikov total spread ``gamma*sigma^2*tau + (2/gamma)*ln(1 + gamma/k)``.

    ``check=False`` skips the ValueError for a ``gamma`` or ``k`` that is not finite and > 0.
    """
    if check:
        check_positive("gamma", gamma)
        check_positive("k", k)
    # docs/marketsim/market-making.md, eq. (5)
    return gamma * (sigma * sigma) * tau + (2.0 / gamma) * np.log1p(gamma / k)
# --8<-- [end:reservation-price]


def as_quotes(s: ArrayLike, q: ArrayLike, gamma: ArrayLike, sigma: ArrayLike, tau: ArrayLike,
              k: ArrayLike, *, check: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Avellaneda-Stoikov bid and ask: ``r -/+ spread/2`` (returns ``(bid, ask)``)."""
    r = reservation_price(s, q, gamma, sigma, tau, check=check)
    half = 0.5 * optimal_spread(gamma, sigma, tau, k, check=check)
    # docs/marketsim/market-making.md, eq. (6)
    return r - half, r + half


def glft_coefficients(gamma: ArrayLike, sigma: ArrayLike, A: ArrayLike,
                      k: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """GLFT asymptotic constants ``(c1, c2)``: half-spread base and inventory skew per unit.

    ``c1 = ln(1 + gamma/k)/gamma`` and
    ``c2 = sqrt(sigma^2*gamma/(2*k*A) * (1 + gamma/k)^(1 + k/gamma))``.
    """
    check_positive("gamma", gamma)
    check_positive("k", k)
    check_positive("A", A)
    g, kk = np.asarray(gamma, dtype=float), np.asarray(k, dtype=float)
    # docs/marketsim/market-making.md, eq. (7)
    c1 = np.log1p(g / kk) / g
    ratio = np.square(sigma) * g / (2.0 * kk * np.asarray(A))
    c2 = np.sqrt(ratio * (1.0 + g / kk) ** (1.0 + kk / g))
    return c1, c2


# --8<-- [start:glft-quotes]
def glft_quotes(s: ArrayLike, q: ArrayLike, gamma: ArrayLike, sigma: ArrayLike, A: ArrayLike,
                k: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """GLFT endless-horizon quotes ``(bid, ask)``, unit order size.

    ``delta_b = c1 + (2q+1)/2*c2`` below the mid, ``delta_a = c1 - (2q-1)/2*c2`` above it.
    """
    c1, c2 = glft_coefficients(gamma, sigma, A, k)
    q = np.asarray(q, dtype=float)
    # docs/marketsim/market-making.md, eq. (7)
    delta_b = c1 + 0.5 * (2.0 * q + 1.0) * c2
    delta_a = c1 - 0.5 * (2.0 * q - 1.0) * c2
    return np.asarray(s) - delta_b, np.asarray(s) + delta_a
# --8<-- [end:glft-quotes]
