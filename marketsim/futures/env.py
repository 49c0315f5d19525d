"""``CryptoFuturesEnv``: one perpetual-futures trading environment (the kernel with N = 1)."""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np

from marketsim.futures import interface
from marketsim.futures.config import FuturesConfig
from marketsim.futures.episode import EPISODE_METRIC_UNITS, EpisodeLedger
from marketsim.futures.kernel import KernelParams, State, step
from marketsim.futures.market import Market, resolve_candles
from marketsim.futures.ops import ScalarOps


class CryptoFuturesEnv(gymnasium.Env):
    """Trade one perpetual future over candles: fees, slippage, funding, isolated margin.

    Args:
        data: candle DataFrame (UTC DatetimeIndex; open, high, low, close, volume), a path for
            ``marketsim.data.load_candles``, or None for ``marketsim.synthetic.default_candles``.
        data_seed: seed of the default synthetic candles when ``data`` is None.
        render_mode: unused (no rendering); accepted for gymnasium compatibility.
        **kwargs: fields of :class:`~marketsim.futures.config.FuturesConfig`, the costs too
            (``taker_fee``, ``funding`` (a rate per 8 h or a Series of rates), ...).

    ``reset(options={"start": bar})`` starts at a chosen bar instead of a random one.
    """

    metadata = {"render_modes": [], "episode_metric_units": EPISODE_METRIC_UNITS,
                "progress_info": ("equity",)}

    def __init__(
        self,
        data: Any = None,
        data_seed: int = 0,
        render_mode: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.config = FuturesConfig.from_kwargs(**kwargs)
        self.market = Market.build(resolve_candles(data, data_seed), self.config)
        self.render_mode = render_mode
        self.action_space = interface.action_space(self.config)
        self.observation_space = interface.observation_space(self.config)
        self._params = KernelParams.build(self.config, self.market.n_bars, as_numpy=False)
        self._rows = self.market.scalar_view()
        self._state = State.scalar()
        self._levels = interface.discrete_levels(self.config).tolist()
        self._continuous = self.config.action_type == "continuous"
        self._static = self.market.static_obs
        self._n_window = self.config.window * self.market.feat.shape[1]
        self._done = True
        self._ledger = EpisodeLedger(ScalarOps, self.config.initial_equity,
                                     self.config.equity_floor, 0.0)

    def start_bounds(self) -> tuple[int, int]:
        """First and last bar an episode may start at: full feature history, one bar after."""
        return self.market.t_min, self.market.n_bars - 2

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode at a random bar (seeded) or at ``options["start"]``."""
        super().reset(seed=seed)
        if options and "start" in options:
            start = interface.check_start(options["start"], self.market)
        else:
            start = interface.sample_start(self.np_random, self.market)
        interface.reset_state_scalar(self._state, start, self._rows.rows[start][0], self._params)
        self._ledger.restart()
        self._done = False
        return self._observe(), interface.info_dict(self._state)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Trade to the action's target at this bar's close and advance one bar."""
        if self._done:
            raise RuntimeError("CryptoFuturesEnv.step: the episode is over; call reset() first")
        fraction = self._fraction(action)
        state = self._state
        step(ScalarOps, state, self._rows, self._params, fraction)
        self._done = state.terminated or state.truncated
        info = interface.info_dict(state)
        self._ledger.record(state)
        if self._done:  # the episode in money (marketsim/futures/episode.py)
            info["episode_metrics"] = self._ledger.metrics(state)
        return self._observe(), state.reward, state.terminated, state.truncated, info

    def _fraction(self, action: Any) -> float:
        """Target fraction in [-1, 1] from an action; ValueError when outside the space."""
        if self._continuous:
            if type(action) is np.ndarray and action.shape == (1,) and action.dtype.kind == "f":
                a = float(action[0])  # the policy's usual action, without np.asarray's cost
                if -1.0 <= a <= 1.0:
                    return a
            return interface.box_fraction(action)
        k = action.item() if isinstance(action, np.ndarray) and action.size == 1 else action
        if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)):
            raise ValueError(f"action: expected an int in [0, {len(self._levels)}), got {action!r}")
        if not 0 <= k < len(self._levels):
            raise ValueError(f"action: expected an int in [0, {len(self._levels)}), got {k}")
        return self._levels[k]

    def _observe(self) -> np.ndarray:
        """Feature window up to the current bar, account features, time features (float32)."""
        state, n_window = self._state, self._n_window
        obs = self._static[state.t].copy()
        obs[n_window], obs[n_window + 1], obs[n_window + 2] = interface.account_features(
            ScalarOps, state, self._params)
        return obs
