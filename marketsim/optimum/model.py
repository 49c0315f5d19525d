"""The known-optimum market model: Markov regimes, finite return atoms, exposure levels, costs.

A bar's simple return ``R_{t+1} = C_{t+1}/C_t - 1`` takes one of a few values ``r_j`` with
probabilities that depend on a Markov regime ``z_t``; the agent holds one of a few exposures
``x_k`` (position notional / equity). Every equation cited here is in
docs/marketsim/known-optimum.md; the futures environment that pays the reward is described in
docs/marketsim/futures.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = [
    "RegimeMarket",
    "no_signal_market",
    "regime_market",
    "make_market",
    "MARKETS",
    "log_growth",
    "drifted_exposure",
    "step_reward",
    "expected_log_growth",
    "belief_update",
    "stationary_distribution",
    "EpisodePath",
    "sample_episode",
    "episode_candles",
    "episode_prices",
]

MMR = 0.004
"""Maintenance margin rate of the single bracket these markets use (Binance's first one)."""
BRACKETS = ((0.0, MMR, 125.0),)
"""One maintenance-margin bracket, so the liquidation distance is the same at every size."""


def _matrix(name: str, rows: tuple[tuple[float, ...], ...], n_cols: int) -> np.ndarray:
    """A row-stochastic matrix from nested tuples; ValueError naming ``name`` otherwise."""
    try:
        m = np.array(rows, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: expected rows of numbers ({exc})") from None
    if m.ndim != 2 or m.shape[1] != n_cols:
        raise ValueError(f"{name}: expected rows of length {n_cols}, got shape {m.shape}")
    if not np.all(np.isfinite(m)) or np.any(m < 0) or np.any(np.abs(m.sum(1) - 1.0) > 1e-9):
        raise ValueError(f"{name}: every row must be non-negative and sum to 1, got {rows}")
    return m


@dataclass(frozen=True)
class RegimeMarket:
    """A Markov-regime return model plus the positions and costs of the futures account.

    Timing (docs/marketsim/known-optimum.md, eq. (1)): at the close of bar t the regime is
    ``z_t``; the next return is ``R_{t+1} = r_j`` with probability ``emission[z_t][j]``; then the
    regime moves to ``z_{t+1}`` with probability ``transition[z_t][z_{t+1}]``.
    """

    returns: tuple[float, ...] = (-0.005, 0.005)
    """Return atoms ``r_j``: every bar's simple return is one of these (each > -1, distinct)."""
    emission: tuple[tuple[float, ...], ...] = ((0.5, 0.5),)
    """``F[z][j] = P(R_{t+1} = r_j | z_t = z)``; one row per regime, each summing to 1."""
    transition: tuple[tuple[float, ...], ...] = ((1.0,),)
    """``P[z][z'] = P(z_{t+1} = z' | z_t = z)``; rows sum to 1."""
    initial: tuple[float, ...] | None = None
    """Distribution of the first regime ``z_0``; None: the stationary one of ``transition``."""
    max_leverage: float = 1.0
    """``L`` of the futures account: exposure levels are ``L`` times the discrete action levels."""
    discrete_sizes: tuple[float, ...] = (1.0,)
    """Action levels in (0, 1] on each side; the exposures are ``L * (-s_m..-s_1, 0, s_1..s_m)``."""
    cost_rate: float = 0.0005
    """``kappa``: reward cost per unit of traded notional / equity (the kernel's ``turnover_coef``)."""
    episode_length: int = 128
    """Decisions per episode ``H``."""
    names: tuple[str, ...] = field(default=())
    """Optional regime names (for reports); default ``z0, z1, ...``."""

    def __post_init__(self) -> None:
        """Validate, normalise tuples, and check that no liquidation or equity floor is reachable."""
        r = tuple(float(v) for v in self.returns)
        if len(r) < 1 or any(not math.isfinite(v) or v <= -1.0 for v in r) or len(set(r)) != len(r):
            raise ValueError(f"returns: expected distinct finite numbers > -1, got {self.returns}")
        object.__setattr__(self, "returns", r)
        f = _matrix("emission", self.emission, len(r))
        k = f.shape[0]
        p = _matrix("transition", self.transition, k)
        if p.shape[0] != k:
            raise ValueError(f"transition: expected {k}x{k} (one row per regime), got {p.shape}")
        object.__setattr__(self, "emission", tuple(map(tuple, f.tolist())))
        object.__setattr__(self, "transition", tuple(map(tuple, p.tolist())))
        if self.initial is not None:
            init = _matrix("initial", (tuple(self.initial),), k)[0]
            object.__setattr__(self, "initial", tuple(init.tolist()))
        sizes = tuple(sorted(float(s) for s in self.discrete_sizes))
        if not sizes or any(not 0.0 < s <= 1.0 for s in sizes) or len(set(sizes)) != len(sizes):
            raise ValueError(f"discrete_sizes: expected distinct values in (0, 1], got {sizes}")
        object.__setattr__(self, "discrete_sizes", sizes)
        for name in ("max_leverage", "cost_rate"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"{name}: expected a finite number, got {v!r}")
            object.__setattr__(self, name, float(v))
        if self.max_leverage <= 0 or self.cost_rate < 0:
            raise ValueError("max_leverage must be > 0 and cost_rate >= 0, "
                             f"got {self.max_leverage}, {self.cost_rate}")
        h = self.episode_length
        if isinstance(h, bool) or not isinstance(h, int) or h < 1:
            raise ValueError(f"episode_length: expected an integer >= 1, got {h!r}")
        if self.names and len(self.names) != k:
            raise ValueError(f"names: expected {k} names, got {self.names}")
        self._check_reachable()

    def _check_reachable(self) -> None:
        """Refuse parameters under which the kernel could liquidate or lose the whole equity.

        Any two prices of an episode differ by at most a factor ``(1 + r_max)^H`` up and
        ``(1 + r_min)^H`` down, and an entry price is an average of episode prices, so eq. (6)
        of docs/marketsim/known-optimum.md keeps every liquidation price out of reach.
        """
        lev, h = self.max_leverage, self.episode_length
        up, down = (1.0 + max(self.returns)) ** h, (1.0 + min(self.returns)) ** h
        short_lp = (1.0 + 1.0 / lev) / (1.0 + MMR)  # liquidation price / entry, short
        long_lp = (1.0 - 1.0 / lev) / (1.0 - MMR)  # liquidation price / entry, long
        if up >= short_lp or (lev > 1.0 and down <= long_lp):
            raise ValueError(
                f"returns {self.returns} over episode_length {h} at max_leverage {lev} can reach "
                "a liquidation price; use a shorter episode, smaller returns or less leverage "
                "(docs/marketsim/known-optimum.md, eq. (6))")
        if any(1.0 + x * rr <= 0.0 for x in self.levels for rr in self.returns):
            raise ValueError("an exposure level times a return atom reaches -100%: equity <= 0")

    # -- derived arrays ------------------------------------------------------------------------
    @property
    def levels(self) -> np.ndarray:
        """Exposures ``x_k`` (position notional / equity), largest short first, flat in the middle."""
        s = list(self.discrete_sizes)
        return self.max_leverage * np.array([-v for v in reversed(s)] + [0.0] + s)

    @property
    def flat(self) -> int:
        """Index of the flat level (and of the flat action)."""
        return len(self.discrete_sizes)

    @property
    def n_regimes(self) -> int:
        """Number of regimes ``K``."""
        return len(self.emission)

    @property
    def regime_names(self) -> tuple[str, ...]:
        """Names of the regimes."""
        return self.names or tuple(f"z{i}" for i in range(self.n_regimes))

    @property
    def F(self) -> np.ndarray:
        """Emission matrix ``F[z, j]`` (K, J)."""
        return np.array(self.emission)

    @property
    def P(self) -> np.ndarray:
        """Transition matrix ``P[z, z']`` (K, K)."""
        return np.array(self.transition)

    @property
    def R(self) -> np.ndarray:
        """Return atoms ``r_j`` (J,)."""
        return np.array(self.returns)

    @property
    def initial_distribution(self) -> np.ndarray:
        """Distribution of ``z_0``: ``initial`` or the stationary distribution of ``P``."""
        if self.initial is not None:
            return np.array(self.initial)
        return stationary_distribution(self.P)

    @property
    def mixture(self) -> np.ndarray:
        """Return-atom probabilities of the pre-episode history: ``sum_z pi0_z F[z, j]``."""
        return self.initial_distribution @ self.F


def no_signal_market(step: float = 0.005, **kwargs) -> RegimeMarket:
    """Driftless prices: each bar moves up or down by ``step`` with probability 1/2 (eq. (2))."""
    return RegimeMarket(returns=(-step, step), emission=((0.5, 0.5),), transition=((1.0,),),
                        names=("driftless",), **kwargs)


def regime_market(step: float = 0.005, edge: float = 0.1, stay: float = 0.95,
                  n_regimes: int = 3, **kwargs) -> RegimeMarket:
    """``n_regimes`` regimes whose up-probabilities are evenly spaced in ``1/2 -/+ edge`` (eq. (2)).

    Each regime stays with probability ``stay`` and otherwise moves to one of the others
    uniformly. With three regimes: bear (``1/2 - edge``), neutral (1/2), bull (``1/2 + edge``).
    """
    if not isinstance(n_regimes, int) or n_regimes < 2:
        raise ValueError(f"n_regimes: expected an integer >= 2, got {n_regimes!r}")
    if not 0.0 < edge < 0.5 or not 0.0 <= stay <= 1.0:
        raise ValueError(f"expected 0 < edge < 1/2 and 0 <= stay <= 1, got {edge}, {stay}")
    ups = np.linspace(0.5 - edge, 0.5 + edge, n_regimes)
    emission = tuple((1.0 - u, u) for u in ups.tolist())
    move = (1.0 - stay) / (n_regimes - 1)
    transition = tuple(tuple(stay if i == j else move for j in range(n_regimes))
                       for i in range(n_regimes))
    names = ("bear", "neutral", "bull") if n_regimes == 3 else ("bear", "bull") if n_regimes == 2 \
        else ()
    return RegimeMarket(returns=(-step, step), emission=emission, transition=transition,
                        names=kwargs.pop("names", names), **kwargs)


MARKETS = {"no_signal": no_signal_market, "signal": regime_market}
"""Preset name -> factory; the registered environments use these."""


def make_market(market: str | RegimeMarket = "signal", **kwargs) -> RegimeMarket:
    """A :class:`RegimeMarket` from a preset name and keyword arguments (or one as is)."""
    if isinstance(market, RegimeMarket):
        if kwargs:
            raise TypeError(f"market is a RegimeMarket; unexpected keyword(s) {sorted(kwargs)}")
        return market
    if market not in MARKETS:
        raise ValueError(f"market: expected one of {sorted(MARKETS)}, got {market!r}")
    return MARKETS[market](**kwargs)


# --8<-- [start:formulas]
def log_growth(x: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Log equity growth over a bar at exposure ``x`` and return ``r``: ``ln(1 + x r)``, eq. (3)."""
    return np.log1p(np.multiply(x, r))


def drifted_exposure(x: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Exposure after a bar that started at ``x``: ``y = x (1 + r) / (1 + x r)``, eq. (4)."""
    return np.multiply(x, 1.0 + np.asarray(r)) / (1.0 + np.multiply(x, r))


def step_reward(x_prev: np.ndarray, r_prev: np.ndarray, x: np.ndarray, r: np.ndarray,
                cost_rate: float) -> np.ndarray:
    """Reward of one step, eq. (5): ``ln(1 + x r) - kappa |x - y(x_prev, r_prev)|``."""
    return log_growth(x, r) - cost_rate * np.abs(np.subtract(x, drifted_exposure(x_prev, r_prev)))
# --8<-- [end:formulas]


# --8<-- [start:expected-growth]
def expected_log_growth(market: RegimeMarket, z: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``E[ln(1 + x R) | z] = sum_j F[z, j] ln(1 + x r_j)`` for regimes ``z`` and exposures ``x``
    (arrays of one shape): the term of the conditional expected return, eq. (16)."""
    return (market.F[np.asarray(z)] * np.log1p(np.multiply.outer(x, market.R))).sum(-1)
# --8<-- [end:expected-growth]


# --8<-- [start:belief-update]
def belief_update(b: np.ndarray, j: int | np.ndarray, F: np.ndarray, P: np.ndarray) -> np.ndarray:
    """Filter step, eq. (8): condition ``b = P(z_t | past)`` on ``R_{t+1} = r_j``, then predict.

    ``b`` may be (K,) or (N, K) with ``j`` a scalar or (N,); returns ``P(z_{t+1} | past, r_j)``.
    """
    post = b * F[:, j].T
    post = post / post.sum(-1, keepdims=True)
    return post @ P
# --8<-- [end:belief-update]


def stationary_distribution(P: np.ndarray) -> np.ndarray:
    """The distribution ``pi`` with ``pi P = pi`` (the eigenvector of eigenvalue 1, normalised)."""
    w, v = np.linalg.eig(P.T)
    pi = np.real(v[:, np.argmin(np.abs(w - 1.0))])
    pi = np.abs(pi) / np.abs(pi).sum()
    return pi


@dataclass(frozen=True)
class EpisodePath:
    """One sampled episode: regimes ``z_0..z_H``, return atoms of the history and the episode."""

    regimes: np.ndarray
    """``z_t`` for t = 0..H (the last one is only observed, never traded on)."""
    atoms: np.ndarray
    """Indices ``j`` of ``R_1..R_H``."""
    history_atoms: np.ndarray
    """Indices of the returns of the bars before the episode (drawn from ``mixture``)."""


def sample_episode(market: RegimeMarket, rng: np.random.Generator, n_history: int) -> EpisodePath:
    """Draw an episode of eq. (1); the history is i.i.d. from ``mixture``, independent of ``z_0``.

    Because the history carries no information about ``z_0``, the Bayes belief at the start of the
    episode is exactly ``pi0`` (docs/marketsim/known-optimum.md, "Episodes").
    """
    h, F, P = market.episode_length, market.F, market.P
    u = rng.random(2 * h + 1)
    history = rng.choice(len(market.returns), size=n_history, p=market.mixture)
    cF, cP = np.cumsum(F, 1), np.cumsum(P, 1)
    z = np.empty(h + 1, np.int64)
    j = np.empty(h, np.int64)
    z[0] = min(int(np.searchsorted(np.cumsum(market.initial_distribution), u[0], "right")),
               market.n_regimes - 1)
    for t in range(h):
        j[t] = min(int(np.searchsorted(cF[z[t]], u[2 * t + 1], "right")), F.shape[1] - 1)
        z[t + 1] = min(int(np.searchsorted(cP[z[t]], u[2 * t + 2], "right")), P.shape[1] - 1)
    return EpisodePath(regimes=z, atoms=j, history_atoms=history)


def episode_candles(market: RegimeMarket, path: EpisodePath, price0: float = 100.0,
                    volume: float = 1000.0, start: str = "2024-01-01") -> pd.DataFrame:
    """Hourly candles of the history and the episode: ``C_{t+1} = C_t (1 + r_j)``, no wicks.

    Bar 0 opens and closes at ``price0``; each later bar opens at the previous close, and its high
    and low are the larger and smaller of open and close (so no bar trades beyond them).
    """
    open_, high, low, close = episode_prices(market, path, price0)
    index = pd.date_range(pd.Timestamp(start, tz="UTC"), periods=len(close), freq="1h",
                          name="timestamp")
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close,
                         "volume": np.full(len(close), volume)}, index=index)


def episode_prices(market: RegimeMarket, path: EpisodePath, price0: float = 100.0
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Open, high, low and close (float64) of :func:`episode_candles`, without pandas.

    The batched environment builds its observations from these arrays; the single one from the
    candles, which hold the very same values.
    """
    atoms = np.concatenate([path.history_atoms, path.atoms])
    close = price0 * np.concatenate([[1.0], np.cumprod(1.0 + market.R[atoms])])
    open_ = np.concatenate([[price0], close[:-1]])
    return open_, np.maximum(open_, close), np.minimum(open_, close), close
