"""``KnownOptimumEnv``: the futures environment on a freshly generated regime market each episode.

Each ``reset`` draws an episode of the regime model (:mod:`marketsim.optimum.model`), turns it
into candles, and builds a :class:`~marketsim.futures.env.CryptoFuturesEnv` on them with the
settings that make the reward exactly eq. (5) of docs/marketsim/known-optimum.md. Steps go
through the futures kernel unchanged.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from marketsim.futures import interface
from marketsim.futures.env import CryptoFuturesEnv
from marketsim.futures.episode import EPISODE_METRIC_UNITS
from marketsim.optimum.model import BRACKETS, RegimeMarket, episode_candles, make_market, sample_episode


# --8<-- [start:futures-settings]
def futures_kwargs(market: RegimeMarket, window: int, vol_window: int) -> dict[str, Any]:
    """Keyword arguments of ``CryptoFuturesEnv`` under which it pays eq. (5) exactly.

    Discrete actions at ``sizing="leverage"`` make the target exposure ``x_k = L * level_k``;
    every bar rebalances to it exactly (``min_trade_fraction=0``). Fees, slippage and funding are
    zero so equity grows by ``1 + x r`` (eq. (3)) and the drifted exposure is eq. (4); the cost is
    the kernel's turnover penalty ``kappa |dq| p / E`` (futures eq. (13)), which is eq. (5)'s
    ``kappa |x - y|``. No drawdown penalty, no equity floor; one margin bracket.
    """
    return dict(
        action_type="discrete", discrete_sizes=market.discrete_sizes, sizing="leverage",
        max_leverage=market.max_leverage, initial_equity=10_000.0, order_type="market",
        maker_fee=0.0, taker_fee=0.0, half_spread=0.0, impact_coef=0.0, liquidation_fee=0.005,
        brackets=BRACKETS, window=window, vol_window=vol_window,
        episode_length=market.episode_length, min_trade_fraction=0.0, equity_floor=0.0,
        drawdown_coef=0.0, turnover_coef=market.cost_rate,
    )
# --8<-- [end:futures-settings]


def check_action_type(action_type: str) -> str:
    """``action_type`` if it is "discrete" or "continuous"; ValueError otherwise."""
    if action_type not in ("discrete", "continuous"):
        raise ValueError(f"action_type: expected 'discrete' or 'continuous', got {action_type!r}")
    return action_type


def snap_to_level(levels: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """Index of the level nearest to each continuous action (N,) in [-1, 1]; the first on a tie.

    ValueError naming the first action outside [-1, 1] (NaN included).
    """
    a = np.asarray(actions, dtype=np.float64)
    ok = (a >= -1.0) & (a <= 1.0)
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        raise ValueError(f"actions[{i}]: expected a number in [-1, 1] (Box), got {a[i]}")
    return np.argmin(np.abs(levels[None, :] - a[:, None]), axis=1)


class KnownOptimumEnv(gymnasium.Env):
    """Perpetual-futures trading on a Markov-regime market whose optimal policy is known.

    Args:
        market: a preset name of ``marketsim.optimum.model.MARKETS`` ("no_signal", "signal") or a
            :class:`RegimeMarket`.
        observe_regime: append the one-hot regime ``z_t`` to the observation.
        action_type: "discrete": ``Discrete(A)``, action k targets exposure ``x_k``;
            "continuous": ``Box(-1, 1, (1,))``, snapped to the nearest discrete level (so the
            position set stays the finite one the oracle optimises over).
        window, vol_window: the futures observation's feature windows (bars).
        render_mode: unused; accepted for gymnasium compatibility.
        **market_kwargs: arguments of the preset (e.g. ``edge``, ``stay``, ``cost_rate``,
            ``episode_length``).

    ``info`` is the futures environment's, plus ``regime`` (``z_t``; diagnostics only: a policy
    that reads it in the hidden market is cheating).
    """

    metadata = {"render_modes": [], "episode_metric_units": EPISODE_METRIC_UNITS,
                "progress_info": ("equity",)}

    def __init__(self, market: str | RegimeMarket = "signal", observe_regime: bool = False,
                 action_type: str = "discrete", window: int = 16, vol_window: int = 16,
                 render_mode: str | None = None, **market_kwargs: Any) -> None:
        self.market = make_market(market, **market_kwargs)
        self.observe_regime = bool(observe_regime)
        self.action_type = check_action_type(action_type)
        self.render_mode = render_mode
        self.n_history = window + vol_window
        self._kwargs = futures_kwargs(self.market, window, vol_window)
        m = self.market
        self._action_levels = m.levels / m.max_leverage  # the futures env's discrete levels
        probe = self._build(sample_episode(m, np.random.default_rng(0), self.n_history))
        inner_dim = probe.observation_space.shape[0]
        extra = m.n_regimes if self.observe_regime else 0
        self.observation_space = spaces.Box(-np.inf, np.inf, (inner_dim + extra,), np.float32)
        if action_type == "discrete":
            self.action_space: spaces.Space = spaces.Discrete(m.levels.size)
        else:
            self.action_space = spaces.Box(-1.0, 1.0, (1,), np.float32)
        self._inner: CryptoFuturesEnv | None = None
        self._regimes = np.zeros(1, np.int64)
        self._t = 0

    def _build(self, path: Any) -> CryptoFuturesEnv:
        """A futures environment on the candles of ``path``."""
        self.path = path
        return CryptoFuturesEnv(data=episode_candles(self.market, path), funding=0.0, **self._kwargs)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        """Draw a new episode (seeded by ``seed`` or the environment's generator) and start it."""
        super().reset(seed=seed)
        path = sample_episode(self.market, self.np_random, self.n_history)
        self._inner = self._build(path)
        self._regimes = path.regimes
        self._t = 0
        obs, info = self._inner.reset(options={"start": self.n_history})
        return self._observe(obs), self._info(info)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Trade to the action's exposure at this bar's close and advance one bar."""
        if self._inner is None:
            raise RuntimeError("KnownOptimumEnv.step: call reset() first")
        obs, reward, terminated, truncated, info = self._inner.step(self._level_index(action))
        self._t += 1
        return self._observe(obs), reward, terminated, truncated, self._info(info)

    def _level_index(self, action: Any) -> int:
        """Discrete action as is; continuous action -> index of the nearest level."""
        if self.action_type == "discrete":
            return action
        a = interface.box_fraction(action)
        return int(snap_to_level(self._action_levels, np.array([a]))[0])

    def _observe(self, obs: np.ndarray) -> np.ndarray:
        """The futures observation, plus the one-hot regime when it is observed."""
        if not self.observe_regime:
            return obs
        onehot = np.zeros(self.market.n_regimes, np.float32)
        onehot[self._regimes[self._t]] = 1.0
        return np.concatenate([obs, onehot])

    def _info(self, info: dict[str, Any]) -> dict[str, Any]:
        """The futures ``info`` plus the current regime (diagnostics)."""
        info["regime"] = int(self._regimes[self._t])
        return info
