"""Batched step kernel: the state of N market-making environments in numpy arrays.

The single environment is this kernel with N = 1; the vector environment is N > 1. All
randomness comes from ``marketsim.mm.rng`` keyed by each environment's seed, so environment i
follows the same path alone or in a batch. An episode's draws (mid moves, fill uniforms) are
made in one vectorised call when it starts, so a step only gathers them. Event order of one
step (docs eq. (17)): quotes decided at step t reach the market at t + latency; fills are drawn
against the mid of step t; then the mid moves.
"""

from __future__ import annotations

import numpy as np

from marketsim.mm import formulas, jumps
from marketsim.mm.book import book_features
from marketsim.mm.config import MMConfig
from marketsim.mm.market import Market, resolve_market
from marketsim.mm.rng import normals, seed_to_key, uniforms

_N_STREAMS = 7
_RESET_STEP = 0xFFFFFFFF


class MMKernel:
    """State and dynamics of ``n`` market-making environments sharing one config."""

    def __init__(self, config: MMConfig, n: int, market: Market | None = None) -> None:
        """Allocate the arrays for ``n`` environments (``market`` may be shared between kernels)."""
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"num_envs must be an int >= 1, got {n!r}")
        self.config = config
        self.market = resolve_market(config) if market is None else market
        self.n = n
        self.dt = config.dt
        market = self.market
        self.sigma = market.sigma
        self.phi = (config.inventory_penalty if config.inventory_penalty is not None
                    else 0.5 * config.reward_gamma * market.sigma ** 2)  # docs eq. (16)
        self.phi_dt = self.phi * self.dt
        self.quote_scale = (config.quote_scale if config.quote_scale is not None
                            else 4.0 / market.k)
        self.obs_dim = config.obs_dim
        self.levels = config.levels
        self.key = np.zeros(n, dtype=np.uint64)
        self.seeded = np.zeros(n, dtype=bool)
        self.episode = np.zeros(n, dtype=np.int64)
        self.step_i = np.zeros(n, dtype=np.int64)
        self.start = np.zeros(n, dtype=np.int64)
        self.mid = np.zeros(n)
        self.cash = np.zeros(n)
        self.q = np.zeros(n)
        self.wealth = np.zeros(n)
        self.sigma_hat2 = np.zeros(n)
        self.returns = np.zeros((n, config.n_returns))
        self.pending = np.full((n, max(config.latency, 1), 2), np.nan)
        self.head = 0
        self.obs = np.zeros((n, self.obs_dim), dtype=np.float32)
        self.moves = np.zeros((n, config.n_steps))
        self.fill_u = np.zeros((n, config.n_steps, 2))
        self.rows = np.arange(n)
        self.gamma_set = np.asarray(config.gammas, dtype=np.float64)
        self.a_dt = self.market.A * self.dt
        self.q_room = config.max_inventory - config.order_size + 1e-9
        if self.levels > 0 and market.close is None:
            # synthetic book: level j at depth j/(2k), size Exp(1) * exp(-k * depth)
            depth = np.arange(1, self.levels + 1) / (2.0 * market.k)
            self.book_profile = np.tile(np.exp(-market.k * depth), 2)
            self.book_spread = np.full(n, 2.0 * depth[0])
            self.book_sizes = np.zeros((n, config.n_steps, 2 * self.levels))
        self.ewma = 1.0 - 0.5 ** (1.0 / config.vol_halflife)
        # Merton-corrected quotes (eq. (13)) only where the model mid jumps
        self.jump_mgf = (jumps.gaussian_jump_mgf(config.jump_mean, config.jump_std)
                         if config.jump_intensity > 0 and market.close is None else None)
        if market.close is not None:
            if config.calib_bars < config.n_returns:
                raise ValueError(f"calib_bars ({config.calib_bars}) must be >= n_returns "
                                 f"({config.n_returns}): the first observation needs past bars")
            self.n_starts = market.close.size - config.n_steps - 1 - config.calib_bars

    # ----------------------------------------------------------------- episodes
    def seed(self, mask: np.ndarray, seeds: np.ndarray) -> None:
        """Give the masked environments new keys from ``seeds`` and restart their episode count."""
        self.key[mask] = seed_to_key(seeds)
        self.episode[mask] = 0
        self.seeded[mask] = True

    def begin_episode(self, mask: np.ndarray) -> None:
        """Count a new episode for the masked environments (unseeded ones get fresh entropy)."""
        fresh = mask & ~self.seeded
        if fresh.any():
            entropy = np.random.SeedSequence().generate_state(int(fresh.sum()), dtype=np.uint64)
            self.key[fresh] = entropy
            self.seeded[fresh] = True
            self.episode[fresh] = -1
        self.episode[mask] += 1

    def init_state(self, mask: np.ndarray) -> None:
        """Put the masked environments at the start of their current episode (deterministic)."""
        idx = np.flatnonzero(mask)
        self.step_i[idx] = 0
        self.cash[idx] = 0.0
        self.q[idx] = 0.0
        self.wealth[idx] = 0.0
        self.pending[idx] = np.nan
        self.sigma_hat2[idx] = self.sigma ** 2
        self._draw_episode(idx)
        market = self.market
        if market.close is None:
            self.mid[idx] = self.config.s0
            self.returns[idx] = 0.0
        else:
            u = uniforms(self.key[idx], self.episode[idx], np.full(idx.size, _RESET_STEP), 1)[:, 0]
            start = self.config.calib_bars + np.floor(u * self.n_starts).astype(np.int64)
            self.start[idx] = start
            self.mid[idx] = market.close[start]
            r = self.config.n_returns
            window = start[:, None] + np.arange(-r, 1)[None, :]
            # past bars only: no look-ahead
            self.returns[idx] = np.diff(market.close[window], axis=1)
        self._observe()

    def _draw_episode(self, idx: np.ndarray) -> None:
        """Draw an episode's randomness for environments ``idx`` (a function of key, episode)."""
        cfg = self.config
        n_steps = cfg.n_steps
        steps = np.tile(np.arange(n_steps), idx.size)
        n_streams = _N_STREAMS + 2 * self.levels
        u = uniforms(np.repeat(self.key[idx], n_steps), np.repeat(self.episode[idx], n_steps),
                     steps, n_streams).reshape(idx.size, n_steps, n_streams)
        self.fill_u[idx] = u[:, :, 2:4]
        if self.market.close is None:
            # docs/marketsim/market-making.md, eq. (17): Gaussian mid step plus Merton jumps
            move = self.sigma * np.sqrt(self.dt) * normals(u[:, :, 0], u[:, :, 1])
            if cfg.jump_intensity > 0:
                jump = u[:, :, 4] < -np.expm1(-cfg.jump_intensity * self.dt)
                move += jump * (cfg.jump_mean + cfg.jump_std * normals(u[:, :, 5], u[:, :, 6]))
            self.moves[idx] = move
            if self.levels > 0:
                self.book_sizes[idx] = -np.log1p(-u[:, :, _N_STREAMS:]) * self.book_profile

    # ----------------------------------------------------------------- quoting
    def tau(self) -> np.ndarray:
        """Time to go used in the formulas: ``T - t`` (clipped at 0) or the rolling horizon."""
        cfg = self.config
        if cfg.rolling_horizon is not None:
            return np.full(self.n, cfg.rolling_horizon)
        return np.maximum(cfg.T - self.step_i * self.dt, 0.0)

    def quote_sigma(self) -> np.ndarray | float:
        """Sigma the quoting formulas use: the true one (model) or the EWMA estimate (replay)."""
        return self.sigma if self.market.close is None else np.sqrt(self.sigma_hat2)

    def as_quotes(self, gamma: np.ndarray, k: np.ndarray | float, sigma: np.ndarray | float,
                  tau: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Avellaneda-Stoikov bid/ask with the Merton correction when jumps are on.

        The formulas are those of :mod:`marketsim.mm.formulas` (eqs. (4)-(6)) and
        :mod:`marketsim.mm.jumps` (eq. (13)); this method only picks them. Unchecked: the
        kernel's gammas (config set or ``exp`` of a clipped action) and ``k`` are > 0.
        """
        if self.jump_mgf is None:
            return formulas.as_quotes(self.mid, self.q, gamma, sigma, tau, k, check=False)
        return jumps.merton_as_quotes(self.mid, self.q, gamma, sigma, tau, k,
                                      self.config.jump_intensity, self.jump_mgf, check=False)

    def action_quotes(self, action: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Map a batch of actions to absolute ``(bid, ask, gamma)``; gamma is 0 for ``quotes``."""
        cfg = self.config
        market = self.market
        if cfg.action_type == "discrete":
            a = np.asarray(action, dtype=np.int64).reshape(self.n)
            if a.min() < 0 or a.max() >= self.gamma_set.size:
                raise ValueError(f"discrete action must be in [0, {self.gamma_set.size}), got {a}")
            gamma = self.gamma_set[a]
            bid, ask = self.as_quotes(gamma, market.k, self.quote_sigma(), self.tau())
            return bid, ask, gamma
        a = np.clip(np.asarray(action, dtype=np.float64).reshape(self.n, -1), -1.0, 1.0)
        if cfg.action_type == "continuous":
            lo, hi = np.log(cfg.gamma_min), np.log(cfg.gamma_max)
            gamma = np.exp(lo + 0.5 * (a[:, 0] + 1.0) * (hi - lo))
            k = market.k * cfg.correction ** a[:, 1]
            sigma = self.quote_sigma() * cfg.correction ** a[:, 2]
            tau = self.tau() * (1.0 + a[:, 3])
            bid, ask = self.as_quotes(gamma, k, sigma, tau)
            return bid, ask, gamma
        r = self.mid + a[:, 0] * self.quote_scale
        half = 0.5 * (a[:, 1] + 1.0) * self.quote_scale
        return r - half, r + half, np.zeros(self.n)

    # ----------------------------------------------------------------- dynamics
    def step(self, bid: np.ndarray, ask: np.ndarray) -> dict[str, np.ndarray]:
        """Advance every environment one step with decided quotes; return reward, flags, info."""
        cfg = self.config
        market = self.market
        size = cfg.order_size
        decided_spread = ask - bid
        if cfg.latency > 0:
            live = self.pending[:, self.head].copy()
            self.pending[:, self.head, 0] = bid
            self.pending[:, self.head, 1] = ask
            self.head = (self.head + 1) % cfg.latency
            bid, ask = live[:, 0], live[:, 1]
        col = np.minimum(self.step_i, cfg.n_steps - 1)  # after the end: draws are discarded
        u = self.fill_u[self.rows, col]
        can_buy = self.q <= self.q_room
        can_sell = self.q >= -self.q_room
        # --8<-- [start:quotes-and-fills]
        if market.close is None:
            # docs/marketsim/market-making.md, eq. (17): fill probability A exp(-k delta) dt
            p_bid = self.a_dt * np.exp(market.k * (bid - self.mid))
            p_ask = self.a_dt * np.exp(market.k * (self.mid - ask))
            bid_fill = (u[:, 0] < p_bid) & can_buy
            ask_fill = (u[:, 1] < p_ask) & can_sell
            new_mid = self.mid + self.moves[self.rows, col]
        else:
            nxt = np.minimum(self.start + self.step_i + 1, market.close.size - 1)
            bid_fill = (market.low[nxt] < bid) & (u[:, 0] < cfg.fill_prob) & can_buy
            ask_fill = (market.high[nxt] > ask) & (u[:, 1] < cfg.fill_prob) & can_sell
            new_mid = market.close[nxt]
        if cfg.latency > 0:  # quotes not yet live are NaN
            bid_fill &= np.isfinite(bid)
            ask_fill &= np.isfinite(ask)
        bought = np.where(bid_fill, bid, 0.0)
        sold = np.where(ask_fill, ask, 0.0)
        if cfg.maker_fee != 0.0:
            self.cash -= cfg.maker_fee * size * (sold + bought)
        self.cash += size * (sold - bought)
        self.q += size * (bid_fill.astype(np.float64) - ask_fill)
        change = new_mid - self.mid
        self.mid = new_mid
        self.returns[:, :-1] = self.returns[:, 1:]
        self.returns[:, -1] = change
        self.sigma_hat2 += self.ewma * (change * change / self.dt - self.sigma_hat2)
        self.step_i += 1
        wealth = self.cash + self.q * self.mid
        # docs/marketsim/market-making.md, eq. (16)
        reward = wealth - self.wealth - self.phi_dt * np.square(self.q)
        self.wealth = wealth
        # --8<-- [end:quotes-and-fills]
        ended = self.step_i >= cfg.n_steps
        if cfg.rolling_horizon is None:
            terminated, truncated = ended, np.zeros(self.n, dtype=bool)
            if cfg.terminal_penalty > 0:
                reward = reward - ended * cfg.terminal_penalty * self.q * self.q
        else:
            terminated, truncated = np.zeros(self.n, dtype=bool), ended
        self._observe()
        return {"reward": reward, "terminated": terminated, "truncated": truncated,
                "pnl": wealth, "inventory": self.q.copy(), "cash": self.cash.copy(),
                "mid": self.mid.copy(), "bid": bid, "ask": ask, "spread": decided_spread,
                "bid_fill": bid_fill, "ask_fill": ask_fill,
                "fills": bid_fill.astype(np.int64) + ask_fill}

    def _observe(self) -> None:
        """Write the observation rows: inventory, time left, returns, PnL, volatility ratio."""
        cfg = self.config
        obs = self.obs
        obs[:, 0] = self.q / cfg.max_inventory
        obs[:, 1] = np.maximum(cfg.n_steps - self.step_i, 0) / cfg.n_steps
        r = cfg.n_returns
        obs[:, 2:2 + r] = self.returns / (self.sigma * np.sqrt(self.dt))
        obs[:, 2 + r] = self.wealth / cfg.pnl_scale
        obs[:, 3 + r] = np.sqrt(self.sigma_hat2) / self.sigma
        if self.levels > 0:
            market = self.market
            if market.features is not None:  # book mode: the bar that just closed, no look-ahead
                bar = np.minimum(self.start + self.step_i, market.close.size - 1)
                obs[:, 4 + r:] = market.features[bar]
            else:
                sizes = self.book_sizes[self.rows, np.minimum(self.step_i, cfg.n_steps - 1)]
                obs[:, 4 + r:] = book_features(sizes[:, :self.levels], sizes[:, self.levels:],
                                             self.book_spread, self.sigma * np.sqrt(self.dt))
