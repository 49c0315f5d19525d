"""Exact optima of the known-optimum markets, by dynamic programming (pure functions of arrays).

* :func:`solve_observed`: the regime is observed; backward induction over (regime, previous
  exposure, previous return), eqs. (9)-(10) of docs/marketsim/known-optimum.md.
* :func:`solve_hidden`: the regime is hidden; the same over the filter's belief on a simplex
  grid with piecewise-linear (Freudenthal) interpolation, eqs. (11)-(12).
* :func:`evaluate_policy`: the exact value of any Markov policy of the observed state (uniformly
  random, flat, the stationary oracle), eq. (13).

The reward these functions optimise is eq. (5), which is what the futures kernel pays in these
markets (``tests/futures/test_known_optimum.py`` checks it bar by bar).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from marketsim.optimum.model import (
    RegimeMarket,
    belief_update,
    drifted_exposure,
    log_growth,
)

__all__ = [
    "Tables",
    "tables",
    "ObservedSolution",
    "HiddenSolution",
    "solve_observed",
    "solve_hidden",
    "solve",
    "evaluate_policy",
    "uniform_policy",
    "flat_policy",
    "greedy_policy",
    "benchmark_values",
    "simplex_grid",
    "simplex_interpolation",
    "OraclePolicy",
]


@dataclass(frozen=True)
class Tables:
    """Everything the recursions read, as arrays (K regimes, A levels, J return atoms)."""

    X: np.ndarray
    """Exposure levels ``x_k`` (A,)."""
    R: np.ndarray
    """Return atoms ``r_j`` (J,)."""
    F: np.ndarray
    """Emission ``F[z, j]`` (K, J)."""
    P: np.ndarray
    """Transition ``P[z, z']`` (K, K)."""
    G: np.ndarray
    """``G[k, j] = ln(1 + x_k r_j)`` (A, J), eq. (3)."""
    Y: np.ndarray
    """``Y[i, j] = y(x_i, r_j)``, the drifted exposure (A, J), eq. (4)."""
    C: np.ndarray
    """``C[i, j, k] = kappa |x_k - Y[i, j]|``, the cost of moving to level k (A, J, A), eq. (5)."""
    pi0: np.ndarray
    """Distribution of the first regime (K,)."""
    flat: int
    """Index of the flat level."""
    horizon: int
    """Decisions per episode ``H``."""


def tables(market: RegimeMarket) -> Tables:
    """Build :class:`Tables` for ``market``."""
    X, R = market.levels, market.R
    Y = drifted_exposure(X[:, None], R[None, :])
    return Tables(X=X, R=R, F=market.F, P=market.P, G=log_growth(X[:, None], R[None, :]), Y=Y,
                  C=market.cost_rate * np.abs(X[None, None, :] - Y[:, :, None]),
                  pi0=market.initial_distribution, flat=market.flat,
                  horizon=market.episode_length)


# -- observed regime ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ObservedSolution:
    """Optimal continuation values ``W[n, z, k]`` (n steps to go, regime z, new level k)."""

    market: RegimeMarket
    tables: Tables
    W: np.ndarray
    """(H + 1, K, A); row 0 is unused (no step to go)."""
    value: float
    """Optimal expected episode return from a flat start, eq. (10)."""

    def q_values(self, n: int, z: int, y: float) -> np.ndarray:
        """``-kappa |x_k - y| + W_n(z, k)`` for every level k, eq. (9)."""
        t = self.tables
        return -self.market.cost_rate * np.abs(t.X - y) + self.W[n, z]

    def action(self, n: int, z: int, y: float) -> int:
        """The optimal action with ``n`` steps to go, regime ``z`` and current exposure ``y``."""
        return int(np.argmax(self.q_values(n, z, y)))


# --8<-- [start:observed-dp]
def solve_observed(market: RegimeMarket) -> ObservedSolution:
    """Backward induction over (regime, previous level, previous return), eqs. (9)-(10)."""
    t = tables(market)
    K, A, J = t.F.shape[0], t.X.size, t.R.size
    V = np.zeros((K, A, J))  # V_0 = 0: nothing is paid after the last step
    W = np.full((t.horizon + 1, K, A), np.nan)
    FG = t.F @ t.G.T  # (K, A): expected log growth sum_j F[z, j] ln(1 + x_k r_j)
    for n in range(1, t.horizon + 1):
        # eq. (9): W_n(z, k) = sum_j F[z,j] (G[k,j] + sum_z' P[z,z'] V_{n-1}(z', k, j))
        W[n] = FG + np.einsum("zj,zy,ykj->zk", t.F, t.P, V)
        # eq. (10): V_n(z, i, j) = max_k (-C[i,j,k] + W_n(z, k))
        V = np.max(-t.C[None] + W[n][:, None, None, :], axis=-1)
    value = float(t.pi0 @ V[:, t.flat, 0])  # flat start: y = 0 whatever the return index
    return ObservedSolution(market=market, tables=t, W=W, value=value)
# --8<-- [end:observed-dp]


# --8<-- [start:policy-value]
def evaluate_policy(market: RegimeMarket, policy: Any) -> float:
    """Exact expected episode return of a Markov policy of the observed state, eq. (13).

    ``policy(n, Q)`` returns action probabilities of shape (K, A, J, A) given the one-step
    values ``Q[z, i, j, k] = -C[i,j,k] + W^pi_n(z, k)`` of that policy with ``n`` steps to go.
    """
    t = tables(market)
    K, A, J = t.F.shape[0], t.X.size, t.R.size
    U = np.zeros((K, A, J))
    FG = t.F @ t.G.T
    for n in range(1, t.horizon + 1):
        Wp = FG + np.einsum("zj,zy,ykj->zk", t.F, t.P, U)
        Q = -t.C[None] + Wp[:, None, None, :]
        U = np.sum(policy(n, Q) * Q, axis=-1)
    return float(t.pi0 @ U[:, t.flat, 0])
# --8<-- [end:policy-value]


def uniform_policy(n: int, Q: np.ndarray) -> np.ndarray:
    """Every action with the same probability (the uniformly random policy)."""
    return np.full(Q.shape, 1.0 / Q.shape[-1])


def flat_policy(market: RegimeMarket):
    """The policy that always chooses the flat level."""
    def policy(n: int, Q: np.ndarray) -> np.ndarray:
        out = np.zeros(Q.shape)
        out[..., market.flat] = 1.0
        return out
    return policy


def greedy_policy(W: np.ndarray, C: np.ndarray):
    """The deterministic policy ``argmax_k (-C[i,j,k] + W[z, k])`` for fixed ``W`` (K, A).

    With ``W`` the optimal ``W_n`` of the longest horizon this is the *stationary* oracle: the
    optimal decision rule far from the end, used at every step (it ignores the time to go).
    """
    k = np.argmax(-C[None] + W[:, None, None, :], axis=-1)
    table = np.eye(W.shape[1])[k]

    def policy(n: int, Q: np.ndarray) -> np.ndarray:
        return table
    return policy


# -- hidden regime: the belief grid -------------------------------------------------------------
def simplex_grid(n_regimes: int, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """All beliefs ``m / resolution`` with integer ``m >= 0``, ``sum m = resolution``.

    Returns the (N, K) grid and a lookup array indexed by ``m[:K-1]`` that gives the grid row
    (-1 where the first K-1 counts exceed ``resolution``).
    """
    K, G = n_regimes, resolution
    if K == 1:
        return np.ones((1, 1)), np.zeros((), np.int64)
    rows = [c + (G - sum(c),) for c in itertools.product(range(G + 1), repeat=K - 1)
            if sum(c) <= G]
    m = np.array(rows, dtype=np.int64)
    lookup = np.full((G + 1,) * (K - 1), -1, dtype=np.int64)
    lookup[tuple(m[:, :-1].T)] = np.arange(len(m))
    return m / G, lookup


# --8<-- [start:interpolation]
def simplex_interpolation(b: np.ndarray, resolution: int, lookup: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Freudenthal (Kuhn) interpolation on the simplex grid (Lovejoy 1991), eq. (12).

    For beliefs ``b`` (M, K) returns grid rows (M, K) and weights (M, K): the K corners of the
    grid simplex that contains each belief and its barycentric coordinates in it, so that a
    function known on the grid is interpolated as ``sum_v w_v f(rows_v)``.
    """
    b = np.atleast_2d(b)
    M, K = b.shape
    G = resolution
    if K == 1:
        return np.zeros((M, 1), np.int64), np.ones((M, 1))
    # coordinates x_i = G * sum_{l >= i} b_l for i = 1..K-1 (x_0 = G always)
    x = G * np.cumsum(b[:, ::-1], axis=1)[:, ::-1][:, 1:]
    v = np.clip(np.floor(x), 0, G)
    d = np.clip(x - v, 0.0, 1.0)
    order = np.argsort(-d, axis=1, kind="stable")
    ds = np.take_along_axis(d, order, axis=1)
    w = np.empty((M, K))
    w[:, 0] = 1.0 - ds[:, 0]
    w[:, 1:-1] = ds[:, :-1] - ds[:, 1:]
    w[:, -1] = ds[:, -1]
    u = np.concatenate([np.full((M, 1), float(G)), v], axis=1)  # corner 0, in x coordinates
    rows = np.empty((M, K), np.int64)
    for c in range(K):
        if c > 0:
            u = u.copy()
            u[np.arange(M), order[:, c - 1] + 1] += 1.0
        counts = (u - np.concatenate([u[:, 1:], np.zeros((M, 1))], axis=1)).astype(np.int64)
        ok = np.all(counts >= 0, axis=1) & np.all(counts <= G, axis=1)
        safe = np.where(ok[:, None], counts, 0)[:, :-1]
        r = lookup[tuple(safe.T)]
        ok &= r >= 0
        rows[:, c] = np.where(ok, r, 0)
        # a corner outside the simplex only arises where its weight is 0
        w[:, c] = np.where(ok, w[:, c], 0.0)
    return rows, w
# --8<-- [end:interpolation]


@dataclass(frozen=True)
class HiddenSolution:
    """Grid values ``V[n, g, i, j]`` of the Bayes-optimal policy on the belief grid."""

    market: RegimeMarket
    tables: Tables
    grid: np.ndarray
    """(N, K) beliefs."""
    lookup: np.ndarray
    resolution: int
    V: np.ndarray
    """(H + 1, N, A, J): value with n steps to go at grid belief g, previous level i, return j."""
    value: float
    """Grid estimate of the Bayes-optimal expected episode return from a flat start at ``pi0``.

    An upper bound of the exact value, which it approaches as the resolution grows (the value is
    convex in the belief, so linear interpolation over-estimates it; docs "Pitfalls")."""

    def continuation(self, n: int, b: np.ndarray) -> np.ndarray:
        """``W_n(b, k)`` at an exact belief ``b`` (K,): one step exactly, then the grid, eq. (11)."""
        t = self.tables
        m = b @ t.F  # predictive probability of each return atom
        nxt = belief_update(np.repeat(b[None], t.R.size, 0), np.arange(t.R.size), t.F, t.P)
        rows, w = simplex_interpolation(nxt, self.resolution, self.lookup)
        Vn = self.V[n - 1]  # (N, A, J)
        Vi = np.einsum("jv,jvk->jk", w, Vn[rows, :, np.arange(t.R.size)[:, None]])
        return t.G @ m + Vi.T @ m

    def q_values(self, n: int, b: np.ndarray, y: float) -> np.ndarray:
        """``-kappa |x_k - y| + W_n(b, k)`` for every level k."""
        return -self.market.cost_rate * np.abs(self.tables.X - y) + self.continuation(n, b)

    def action(self, n: int, b: np.ndarray, y: float) -> int:
        """The Bayes-optimal action at belief ``b`` with ``n`` steps to go and exposure ``y``."""
        return int(np.argmax(self.q_values(n, b, y)))


# --8<-- [start:hidden-dp]
def solve_hidden(market: RegimeMarket, resolution: int = 100) -> HiddenSolution:
    """Backward induction over (belief, previous level, previous return), eqs. (11)-(12)."""
    t = tables(market)
    K, A, J = t.F.shape[0], t.X.size, t.R.size
    grid, lookup = simplex_grid(K, resolution)
    N = grid.shape[0]
    m = grid @ t.F  # (N, J): predictive probability of each return atom at each grid belief
    nxt = np.stack([belief_update(grid, j, t.F, t.P) for j in range(J)], axis=1)  # (N, J, K)
    rows, w = simplex_interpolation(nxt.reshape(N * J, K), resolution, lookup)
    rows, w = rows.reshape(N, J, K), w.reshape(N, J, K)
    mG = m @ t.G.T  # (N, A)
    V = np.zeros((t.horizon + 1, N, A, J))
    jj = np.arange(J)[None, :, None]
    for n in range(1, t.horizon + 1):
        # V_{n-1} at the next belief b'(g, j), interpolated on the grid: (N, J, A)
        Vi = np.einsum("gjv,gjvk->gjk", w, V[n - 1][rows, :, jj])
        # eq. (11): W_n(b, k) = sum_j m_j(b) (G[k, j] + V_{n-1}(b'(b, j), k, j))
        W = mG + np.einsum("gj,gjk->gk", m, Vi)
        # eq. (10) with the belief for the regime: V_n(b, i, j) = max_k (-C[i,j,k] + W_n(b, k))
        V[n] = np.max(-t.C[None] + W[:, None, None, :], axis=-1)
    sol = HiddenSolution(market=market, tables=t, grid=grid, lookup=lookup,
                         resolution=resolution, V=V, value=float("nan"))
    q0 = sol.q_values(t.horizon, t.pi0, 0.0)
    return HiddenSolution(market=market, tables=t, grid=grid, lookup=lookup,
                          resolution=resolution, V=V, value=float(np.max(q0)))
# --8<-- [end:hidden-dp]


def solve(market: RegimeMarket, observe_regime: bool, resolution: int = 100
          ) -> ObservedSolution | HiddenSolution:
    """:func:`solve_observed` when the regime is observed, else :func:`solve_hidden`."""
    return solve_observed(market) if observe_regime else solve_hidden(market, resolution)


def benchmark_values(market: RegimeMarket, observe_regime: bool, resolution: int = 100
                     ) -> dict[str, float]:
    """The figures an agent is compared with: oracle, random, flat (and more, see keys).

    ``oracle``: the optimum for this observation (hidden: the grid value, an upper bound);
    ``observed_oracle``: the optimum with the regime observed (an upper bound of any policy);
    ``stationary``: the observed optimum's decision rule of the longest horizon used at every
    step (observed only; what a policy that does not see the time to go can reach with it);
    ``random``: uniformly random actions; ``flat``: always flat (0).
    """
    obs = solve_observed(market)
    t = obs.tables
    out = {
        "oracle": obs.value if observe_regime else solve_hidden(market, resolution).value,
        "observed_oracle": obs.value,
        "random": evaluate_policy(market, uniform_policy),
        "flat": evaluate_policy(market, flat_policy(market)),
    }
    if observe_regime:
        out["stationary"] = evaluate_policy(market, greedy_policy(obs.W[t.horizon], t.C))
    return out


# --8<-- [start:oracle-policy]
class OraclePolicy:
    """Acts optimally in a known-optimum environment from its observation and ``info``.

    It reads the exposure ``y = position * price / equity`` and the bar's return from ``info``
    (float64, as the kernel computes them), the regime from the observation's one-hot tail when it
    is observed, and otherwise keeps the filter's belief (eq. (8)) from the prices it has seen.
    """

    def __init__(self, solution: ObservedSolution | HiddenSolution):
        self.solution = solution
        self.market = solution.market
        self.observed = isinstance(solution, ObservedSolution)
        self.reset()

    def reset(self) -> None:
        """Forget the episode: belief back to ``pi0``, no previous price."""
        self.belief = self.market.initial_distribution.copy()
        self.prev_price: float | None = None

    def act(self, obs: np.ndarray, info: dict[str, Any]) -> int:
        """The optimal action index; call once per step with the latest ``obs`` and ``info``."""
        step = int(info["episode_step"])
        price = float(info["price"])
        if step == 0:
            self.reset()
        elif self.prev_price is not None:
            r = price / self.prev_price - 1.0
            j = int(np.argmin(np.abs(self.market.R - r)))
            self.belief = belief_update(self.belief, j, self.market.F, self.market.P)
        self.prev_price = price
        y = float(info["position"]) * price / float(info["equity"])
        n = self.market.episode_length - step
        if self.observed:
            z = int(np.argmax(np.asarray(obs)[-self.market.n_regimes:]))
            return self.solution.action(n, z, y)
        return self.solution.action(n, self.belief, y)
# --8<-- [end:oracle-policy]
