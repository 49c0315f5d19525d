"""``CryptoFuturesVectorEnv``: N futures environments stepped in one numpy computation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from marketsim.futures import interface
from marketsim.futures.config import FuturesConfig
from marketsim.futures.episode import EPISODE_METRIC_UNITS, EpisodeLedger
from marketsim.futures.kernel import KernelParams, State, step
from marketsim.futures.market import Market, resolve_candles
from marketsim.futures.ops import NumpyOps


class CryptoFuturesVectorEnv(VectorEnv):
    """N independent ``CryptoFuturesEnv`` over the same data, batched; NEXT_STEP autoreset.

    ``reset(seed=s)`` seeds environment i with ``s + i``, so trajectories equal those of N single
    environments seeded ``s, s + 1, ...``. After an environment returns terminated or truncated,
    the next ``step`` ignores its action and returns its reset observation, reward 0 and
    terminated = truncated = False. ``info`` is a dict of arrays of shape (N,).
    Keyword arguments are those of :class:`~marketsim.futures.env.CryptoFuturesEnv`.
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": [],
                "episode_metric_units": EPISODE_METRIC_UNITS, "progress_info": ("equity",)}

    def __init__(
        self,
        num_envs: int = 1,
        data: Any = None,
        data_seed: int = 0,
        render_mode: str | None = None,
        **kwargs: Any,
    ) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)):
            raise ValueError(f"num_envs: expected an integer >= 1, got {num_envs!r}")
        if num_envs < 1:
            raise ValueError(f"num_envs: expected an integer >= 1, got {num_envs!r}")
        self.num_envs = int(num_envs)
        self.config = FuturesConfig.from_kwargs(**kwargs)
        self.market = Market.build(resolve_candles(data, data_seed), self.config)
        self.render_mode = render_mode
        self.single_action_space = interface.action_space(self.config)
        self.single_observation_space = interface.observation_space(self.config)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self._params = KernelParams.build(self.config, self.market.n_bars, as_numpy=True)
        self._state = State.numpy(self.num_envs)
        self._levels = interface.discrete_levels(self.config)
        self._rngs: list[np.random.Generator] | None = None
        self._autoreset = np.zeros(self.num_envs, dtype=bool)
        self._started = False
        self._n_window = self.config.window * self.market.feat.shape[1]
        self._ledger = EpisodeLedger(NumpyOps, self.config.initial_equity,
                                     self.config.equity_floor, np.zeros(self.num_envs))

    def reset(
        self,
        *,
        seed: int | Sequence[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset all environments; ``seed`` an int (env i gets seed + i) or one seed per env."""
        n = self.num_envs
        self._rngs = interface.vector_rngs(seed, n, self._rngs)
        starts = np.array([interface.sample_start(rng, self.market) for rng in self._rngs])
        prices = self.market.close[starts]
        interface.reset_state_rows(self._state, slice(None), starts, prices, self._params, copy=True)
        self._ledger.restart()
        self._autoreset[:] = False
        self._started = True
        return self._observe(), self._info()

    # --8<-- [start:step]
    def step(
        self, actions: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every environment; those that ended at the previous step are reset instead."""
        if not self._started:
            raise RuntimeError("CryptoFuturesVectorEnv.step: call reset() first")
        fractions = self._fractions(actions)
        state = self._state
        rows = np.flatnonzero(self._autoreset)
        if rows.size:
            assert self._rngs is not None
            starts = np.array([interface.sample_start(self._rngs[i], self.market) for i in rows])
            # the kernel's results for these rows are discarded; it only needs valid bars
            # and a positive equity to read (copies: earlier info arrays stay as they were)
            t = state.t.copy()
            t[rows] = starts
            state.t = t
            equity = state.equity.copy()
            equity[rows] = self.config.initial_equity
            state.equity = equity
        step(NumpyOps, state, self.market, self._params, fractions)
        if rows.size:
            prices = self.market.close[starts]
            # reward 0 for the rows that were reset
            interface.reset_state_rows(state, rows, starts, prices, self._params, copy=False)
            self._ledger.restart(rows)
        self._ledger.record(state)
        self._autoreset = state.terminated | state.truncated
        obs = self._observe()
        info = self._info()
        if self._autoreset.any():  # episodes that ended, in money (marketsim/futures/episode.py)
            info["episode_metrics"] = self._ledger.metrics(state)
            info["_episode_metrics"] = self._autoreset.copy()
        return obs, state.reward.copy(), state.terminated.copy(), state.truncated.copy(), info
    # --8<-- [end:step]

    def _fractions(self, actions: Any) -> np.ndarray:
        """Target fractions (N,) from a batch of actions; ValueError when outside the space."""
        n = self.num_envs
        if self.config.action_type == "continuous":
            arr = np.asarray(actions, dtype=np.float64)
            if arr.shape not in ((n, 1), (n,)):
                raise ValueError(f"actions: expected shape ({n}, 1), got {arr.shape}")
            arr = arr.reshape(n)
            if not (arr.min() >= -1.0 and arr.max() <= 1.0):  # NaN fails too
                bad = np.flatnonzero(~((arr >= -1.0) & (arr <= 1.0)))
                i = int(bad[0])
                raise ValueError(f"actions[{i}]: expected a number in [-1, 1] (Box), got {arr[i]}")
            return arr
        arr = np.asarray(actions)
        if arr.shape != (n,) or not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"actions: expected {n} ints, got shape {arr.shape} {arr.dtype}")
        bad = np.flatnonzero((arr < 0) | (arr >= len(self._levels)))
        if bad.size:
            i = int(bad[0])
            k = len(self._levels)
            raise ValueError(f"actions[{i}]: expected an int in [0, {k}), got {arr[i]}")
        return self._levels[arr]

    def _observe(self) -> np.ndarray:
        """(N, D) float32 observations: feature windows, account and time features."""
        state, n_window = self._state, self._n_window
        obs = np.take(self.market.static_obs, state.t, axis=0)
        pos, upnl, ratio = interface.account_features(NumpyOps, state, self._params)
        obs[:, n_window] = pos
        obs[:, n_window + 1] = upnl
        obs[:, n_window + 2] = ratio
        return obs

    def _info(self) -> dict[str, Any]:
        return interface.info_dict(self._state)
