"""``KnownOptimumVectorEnv``: N known-optimum markets stepped in one numpy computation.

The single environment (:class:`~marketsim.optimum.env.KnownOptimumEnv`) builds a fresh
``CryptoFuturesEnv`` on pandas candles at every reset and steps one scalar kernel; behind
gymnasium's ``SyncVectorEnv`` most of its time goes to merging 33 ``info`` keys per environment
and step. This view keeps one slab of bars per environment side by side in the arrays the futures
kernel reads, writes a new episode into an environment's slab when it resets, and steps all N
environments with the batched kernel (``NumpyOps``). Every number it computes comes from the same
functions, on the same inputs, as the single view's, so N environments seeded ``s, s + 1, ...``
give the trajectories of N single environments seeded alike, bit for bit
(``tests/futures/test_known_optimum.py::test_batched_equals_single``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from marketsim.futures import features as F
from marketsim.futures import interface
from marketsim.futures.config import FuturesConfig
from marketsim.futures.episode import EPISODE_METRIC_UNITS, EpisodeLedger
from marketsim.futures.kernel import KernelParams, State, step
from marketsim.futures.market import Market, funding_arrays
from marketsim.futures.ops import NumpyOps
from marketsim.optimum.env import check_action_type, futures_kwargs, snap_to_level
from marketsim.optimum.model import (
    RegimeMarket,
    episode_candles,
    episode_prices,
    make_market,
    sample_episode,
)


class _Bars:
    """The kernel's view of the slabs: ``bars_t`` (6, N * L), what ``NumpyOps.row`` reads."""

    def __init__(self, bars_t: np.ndarray):
        self.bars_t = bars_t


class KnownOptimumVectorEnv(VectorEnv):
    """N independent ``KnownOptimumEnv``, batched; NEXT_STEP autoreset.

    Keyword arguments are those of :class:`~marketsim.optimum.env.KnownOptimumEnv`. ``reset(seed=s)``
    seeds environment i with ``s + i`` (one seed per environment is accepted too), so the
    trajectories equal those of N single environments seeded ``s, s + 1, ...``. After an
    environment returns terminated or truncated, the next ``step`` ignores its action and returns
    its reset observation, reward 0 and terminated = truncated = False. ``info`` is a dict of
    arrays of shape (N,): the futures environment's fields plus ``regime``.
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": [],
                "episode_metric_units": EPISODE_METRIC_UNITS, "progress_info": ("equity",)}

    def __init__(self, num_envs: int = 1, market: str | RegimeMarket = "signal",
                 observe_regime: bool = False, action_type: str = "discrete", window: int = 16,
                 vol_window: int = 16, render_mode: str | None = None,
                 **market_kwargs: Any) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) \
                or num_envs < 1:
            raise ValueError(f"num_envs: expected an integer >= 1, got {num_envs!r}")
        n = self.num_envs = int(num_envs)
        self.market = m = make_market(market, **market_kwargs)
        self.observe_regime = bool(observe_regime)
        self.action_type = check_action_type(action_type)
        self.render_mode = render_mode
        self.n_history = window + vol_window
        self.config = FuturesConfig.from_kwargs(funding=0.0, **futures_kwargs(m, window, vol_window))
        # one episode built the single view's way gives everything that is the same in every
        # episode (times, volume, funding) and the slab length L
        probe = Market.build(
            episode_candles(m, sample_episode(m, np.random.default_rng(0), self.n_history)),
            self.config)
        self._slab = probe.n_bars
        self._volume = probe.volume
        self._time = F.time_features(probe.close_ns)
        self._funding_bar, self._funding_now = funding_arrays(probe.close_ns, self.config.funding)
        self._bars = _Bars(np.tile(probe.bars_t, (1, n)))
        self._static = np.tile(probe.static_obs, (n, 1))
        self._starts = np.arange(n, dtype=np.int64) * self._slab + self.n_history
        self._params = KernelParams.build(self.config, n * self._slab, as_numpy=True)
        self._state = State.numpy(n)
        self._n_window = self.config.window * probe.feat.shape[1]
        self._futures_levels = interface.discrete_levels(self.config)
        self._action_levels = m.levels / m.max_leverage
        self._regimes = np.zeros((n, m.episode_length + 1), np.int64)
        self._onehot = np.eye(m.n_regimes, dtype=np.float32)
        extra = m.n_regimes if self.observe_regime else 0
        self.single_observation_space = spaces.Box(
            -np.inf, np.inf, (interface.obs_dim(self.config) + extra,), np.float32)
        if self.action_type == "discrete":
            self.single_action_space: spaces.Space = spaces.Discrete(m.levels.size)
        else:
            self.single_action_space = spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.observation_space = batch_space(self.single_observation_space, n)
        self.action_space = batch_space(self.single_action_space, n)
        self._rngs: list[np.random.Generator] | None = None
        self._autoreset = np.zeros(n, dtype=bool)
        self._started = False
        self._ledger = EpisodeLedger(NumpyOps, self.config.initial_equity,
                                     self.config.equity_floor, np.zeros(n))

    # --8<-- [start:new-episodes]
    def _new_episodes(self, rows: np.ndarray) -> None:
        """Draw a new episode for each environment in ``rows`` and write it into its slab."""
        assert self._rngs is not None
        m, cfg, L = self.market, self.config, self._slab
        for i in rows.tolist():
            path = sample_episode(m, self._rngs[i], self.n_history)
            self._regimes[i] = path.regimes
            _, high, low, close = episode_prices(m, path)
            ret, rng, z, sigma, mean_volume = F.bar_statistics(close, high, low, self._volume,
                                                               cfg.vol_window)
            feat = F.bar_features(ret, rng, z, sigma, self._funding_now)
            cols = slice(i * L, (i + 1) * L)
            self._static[cols] = F.static_observations(feat, self._time, cfg.window)
            self._bars.bars_t[:, cols] = np.stack(
                [close, high, low, sigma, np.maximum(mean_volume, 1e-12), self._funding_bar])
    # --8<-- [end:new-episodes]

    def reset(self, *, seed: int | Sequence[int | None] | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset all environments; ``seed`` an int (env i gets seed + i) or one seed per env."""
        n = self.num_envs
        self._rngs = interface.vector_rngs(seed, n, self._rngs)
        self._new_episodes(np.arange(n))
        prices = self._bars.bars_t[0, self._starts]
        interface.reset_state_rows(self._state, slice(None), self._starts, prices, self._params,
                                   copy=True)
        self._ledger.restart()
        self._autoreset[:] = False
        self._started = True
        return self._observe(), self._info()

    def step(self, actions: Any
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every environment; those that ended at the previous step start a new episode."""
        if not self._started:
            raise RuntimeError("KnownOptimumVectorEnv.step: call reset() first")
        fractions = self._futures_levels[self._level_indices(actions)]
        state = self._state
        rows = np.flatnonzero(self._autoreset)
        if rows.size:
            self._new_episodes(rows)
            starts = self._starts[rows]
            prices = self._bars.bars_t[0, starts]
            # the kernel's results for these rows are discarded: it steps them flat from a fresh
            # account (copies: earlier info arrays stay as they were)
            interface.reset_state_rows(state, rows, starts, prices, self._params, copy=True)
            fractions[rows] = 0.0
        step(NumpyOps, state, self._bars, self._params, fractions)
        if rows.size:  # reward 0 for the rows that were reset
            interface.reset_state_rows(state, rows, starts, prices, self._params, copy=False)
            self._ledger.restart(rows)
        self._ledger.record(state)
        self._autoreset = state.terminated | state.truncated
        info = self._info()
        if self._autoreset.any():  # the episodes that ended, in money (futures/episode.py)
            info["episode_metrics"] = self._ledger.metrics(state)
            info["_episode_metrics"] = self._autoreset.copy()
        return (self._observe(), state.reward.copy(), state.terminated.copy(),
                state.truncated.copy(), info)

    def _level_indices(self, actions: Any) -> np.ndarray:
        """Level index (N,) of each action: discrete as is, continuous snapped to the nearest."""
        n = self.num_envs
        if self.action_type == "continuous":
            arr = np.asarray(actions, dtype=np.float64)
            if arr.shape not in ((n, 1), (n,)):
                raise ValueError(f"actions: expected shape ({n}, 1), got {arr.shape}")
            return snap_to_level(self._action_levels, arr.reshape(n))
        arr = np.asarray(actions)
        if arr.shape != (n,) or not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"actions: expected {n} ints, got shape {arr.shape} {arr.dtype}")
        bad = np.flatnonzero((arr < 0) | (arr >= self._futures_levels.size))
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"actions[{i}]: expected an int in [0, {self._futures_levels.size}),"
                             f" got {arr[i]}")
        return arr

    def _observe(self) -> np.ndarray:
        """(N, D) float32: the futures observation, plus the one-hot regime when observed."""
        state, n_window = self._state, self._n_window
        obs = np.take(self._static, state.t, axis=0)
        pos, upnl, ratio = interface.account_features(NumpyOps, state, self._params)
        obs[:, n_window] = pos
        obs[:, n_window + 1] = upnl
        obs[:, n_window + 2] = ratio
        if not self.observe_regime:
            return obs
        z = self._regimes[np.arange(self.num_envs), state.steps]
        return np.concatenate([obs, self._onehot[z]], axis=1)

    def current_info(self) -> dict[str, Any]:
        """The ``info`` of the environments as they are now (after a reset, the reset's)."""
        return self._info()

    def _info(self) -> dict[str, Any]:
        """The futures ``info`` arrays plus the current regime of each environment."""
        info = interface.info_dict(self._state)
        info["bar"] = self._state.t - (self._starts - self.n_history)  # the bar of its own slab
        info["regime"] = self._regimes[np.arange(self.num_envs), self._state.steps]
        return info
