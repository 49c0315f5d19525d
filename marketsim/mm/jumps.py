"""Reservation price when the mid follows an arithmetic Merton jump diffusion.

Mid: ``dS = sigma dW + J dN`` with ``N`` Poisson of intensity ``lam`` and i.i.d. jumps ``J``.
The frozen-inventory CARA value gives (derivation in docs/marketsim/market-making.md):

    r = s - q*gamma*sigma^2*tau - lam*tau/(2*gamma) * (M(-gamma*(q+1)) - M(-gamma*(q-1)))

with ``M(theta) = E[exp(theta*J)]`` the jump moment generating function.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike

from marketsim.mm.formulas import check_positive, optimal_spread, reservation_price


def gaussian_jump_mgf(mean: float, std: float) -> Callable[[np.ndarray], np.ndarray]:
    """Moment generating function ``theta -> exp(theta*mean + theta^2*std^2/2)`` of a normal."""
    if not (np.isfinite(mean) and np.isfinite(std)) or std < 0:
        raise ValueError(f"jump mean must be finite and jump std finite and >= 0, "
                         f"got {mean}, {std}")

    def mgf(theta: np.ndarray) -> np.ndarray:
        theta = np.asarray(theta, dtype=float)
        # docs/marketsim/market-making.md, eq. (12)
        return np.exp(theta * mean + 0.5 * np.square(theta) * std * std)

    return mgf


# --8<-- [start:merton-jump-correction]
def merton_jump_correction(q: ArrayLike, gamma: ArrayLike, tau: ArrayLike, lam: float,
                           mgf: Callable[[np.ndarray], np.ndarray], *,
                           check: bool = True) -> np.ndarray:
    """Jump part of the reservation price: ``-lam*tau/(2 gamma)*(M(-g(q+1)) - M(-g(q-1)))``.

    ``check=False`` skips the ValueError for a bad ``gamma`` (finite, > 0) or ``lam`` (>= 0).
    """
    g = np.asarray(gamma, dtype=float)
    if check:
        check_positive("gamma", gamma)
        if not np.isfinite(lam) or lam < 0:
            raise ValueError(f"jump intensity lam must be finite and >= 0, got {lam}")
    q = np.asarray(q, dtype=float)
    # docs/marketsim/market-making.md, eq. (13)
    return -lam * np.asarray(tau) / (2.0 * g) * (mgf(-g * (q + 1.0)) - mgf(-g * (q - 1.0)))
# --8<-- [end:merton-jump-correction]


def merton_reservation_price(s: ArrayLike, q: ArrayLike, gamma: ArrayLike, sigma: ArrayLike,
                             tau: ArrayLike, lam: float,
                             mgf: Callable[[np.ndarray], np.ndarray], *,
                             check: bool = True) -> np.ndarray:
    """Reservation price under arithmetic Merton jumps (diffusion term plus jump correction)."""
    diffusion = reservation_price(s, q, gamma, sigma, tau, check=check)
    # docs/marketsim/market-making.md, eq. (13): eq. (4) plus the jump part
    return diffusion + merton_jump_correction(q, gamma, tau, lam, mgf, check=check)


def merton_as_quotes(s: ArrayLike, q: ArrayLike, gamma: ArrayLike, sigma: ArrayLike,
                     tau: ArrayLike, k: ArrayLike, lam: float,
                     mgf: Callable[[np.ndarray], np.ndarray], *,
                     check: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Avellaneda-Stoikov bid and ask around the Merton reservation price (``(bid, ask)``)."""
    r = merton_reservation_price(s, q, gamma, sigma, tau, lam, mgf, check=check)
    half = 0.5 * optimal_spread(gamma, sigma, tau, k, check=check)
    # docs/marketsim/market-making.md, eq. (6) with r of eq. (13)
    return r - half, r + half
