"""Exact finite-inventory optimal quotes via a matrix exponential over inventories.

Two problems share one linear structure ``omega(tau) = expm(K*tau) @ z`` on the inventory grid
``q = -Q..Q`` (docs/marketsim/market-making.md, eqs. (8)-(11)):

* Cartea-Jaimungal (risk-neutral, running penalty ``phi*q^2``, terminal ``alpha*q^2``):
  ``K[q,q] = -phi*k*q^2``, off-diagonals ``A*e^-1``, ``z_q = exp(-alpha*k*q^2)``,
  depth base ``1/k``.
* Gueant-Lehalle-Fernandez-Tapia CARA utility with risk aversion gamma:
  ``K[q,q] = -k*gamma*sigma^2*q^2/2``, off-diagonals ``A*(1+gamma/k)^-(1+k/gamma)``, ``z = 1``,
  depth base ``ln(1+gamma/k)/gamma``.

Depths: ``delta_b = base + ln(omega_q/omega_{q+1})/k`` and
``delta_a = base + ln(omega_q/omega_{q-1})/k``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import expm

from marketsim.mm.formulas import check_positive


@dataclass(frozen=True)
class QuoteTable:
    """Optimal depths on a time-step x inventory grid.

    ``bid_depth[n, q + q_max]`` is the distance below the mid of the bid at step ``n``
    (time to go ``(n_steps - n)*dt``) with inventory ``q``; ``ask_depth`` likewise above it.
    Where a side is not quoted (bid at ``q = q_max``, ask at ``q = -q_max``) the depth holds the
    base constant; the environment suppresses those sides itself.
    """

    bid_depth: np.ndarray
    ask_depth: np.ndarray
    q_max: int
    dt: float

    def depths(self, step: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bid and ask depths for integer arrays ``step`` and ``q`` (q clipped to the grid)."""
        n = np.clip(np.asarray(step, dtype=np.int64), 0, self.bid_depth.shape[0] - 1)
        j = np.clip(np.rint(q).astype(np.int64), -self.q_max, self.q_max) + self.q_max
        return self.bid_depth[n, j], self.ask_depth[n, j]


# --8<-- [start:table]
def _table(diag: np.ndarray, off: float, z: np.ndarray, base: float, k: float, n_steps: int,
           dt: float, q_max: int) -> QuoteTable:
    """Propagate ``omega`` backwards from ``z`` by ``expm(K*dt)`` and turn it into depths."""
    size = diag.size
    K = np.diag(diag) + off * (np.eye(size, k=1) + np.eye(size, k=-1))
    # docs/marketsim/market-making.md, eq. (9): omega(tau + dt) = expm(K dt) omega(tau)
    step_matrix = expm(K * dt)
    omega = np.empty((n_steps + 1, size))
    omega[n_steps] = z / z.max()
    for n in range(n_steps - 1, -1, -1):
        w = step_matrix @ omega[n + 1]
        omega[n] = w / w.max()  # depths use ratios only, so rescaling avoids underflow
    log_w = np.log(omega)
    bid = np.full_like(log_w, base)
    ask = np.full_like(log_w, base)
    # docs/marketsim/market-making.md, eq. (10)
    bid[:, :-1] = base + (log_w[:, :-1] - log_w[:, 1:]) / k
    ask[:, 1:] = base + (log_w[:, 1:] - log_w[:, :-1]) / k
    return QuoteTable(bid_depth=bid, ask_depth=ask, q_max=q_max, dt=dt)
# --8<-- [end:table]


def _check_grid(q_max: int, n_steps: int, dt: float) -> None:
    """Validate the inventory and time grid."""
    if not isinstance(q_max, (int, np.integer)) or q_max < 1:
        raise ValueError(f"q_max must be an integer >= 1, got {q_max!r}")
    if not isinstance(n_steps, (int, np.integer)) or n_steps < 1:
        raise ValueError(f"n_steps must be an integer >= 1, got {n_steps!r}")
    check_positive("dt", dt)


def cartea_jaimungal_table(A: float, k: float, phi: float, alpha: float, q_max: int,
                           n_steps: int, dt: float) -> QuoteTable:
    """Cartea-Jaimungal optimal depths (risk-neutral, running and terminal inventory penalties)."""
    check_positive("A", A)
    check_positive("k", k)
    if not (np.isfinite(phi) and np.isfinite(alpha)) or phi < 0 or alpha < 0:
        raise ValueError(f"phi and alpha must be finite and >= 0, got {phi}, {alpha}")
    _check_grid(q_max, n_steps, dt)
    q = np.arange(-q_max, q_max + 1, dtype=float)
    # docs/marketsim/market-making.md, eq. (9)
    diag = -phi * k * q * q
    z = np.exp(-alpha * k * q * q - (-alpha * k * q * q).max())
    return _table(diag, A * np.exp(-1.0), z, 1.0 / k, k, n_steps, dt, q_max)


def cara_inventory_table(A: float, k: float, gamma: float, sigma: float, q_max: int,
                         n_steps: int, dt: float) -> QuoteTable:
    """GLFT exact finite-horizon CARA optimum (the AS problem with an inventory bound)."""
    check_positive("A", A)
    check_positive("k", k)
    check_positive("gamma", gamma)
    check_positive("sigma", sigma)
    _check_grid(q_max, n_steps, dt)
    q = np.arange(-q_max, q_max + 1, dtype=float)
    # docs/marketsim/market-making.md, eq. (11)
    diag = -0.5 * k * gamma * sigma * sigma * q * q
    eta = A * (1.0 + gamma / k) ** (-(1.0 + k / gamma))
    base = np.log1p(gamma / k) / gamma
    return _table(diag, eta, np.ones_like(q), base, k, n_steps, dt, q_max)
