"""Analytic baseline strategies and a runner that summarises them over many episodes.

Strategies map the vector environment's state to absolute ``(bid, ask)`` arrays:

* ``as``: Avellaneda-Stoikov with a fixed gamma (Merton-corrected when jumps are on);
* ``glft``: Gueant-Lehalle-Fernandez-Tapia endless-horizon asymptotic quotes;
* ``cj``: Cartea-Jaimungal exact optimum for the environment's own reward (running penalty
  ``phi`` and terminal penalty ``alpha``), so its mean reward is the benchmark for agents;
* ``cara``: the exact finite-inventory CARA optimum with the given gamma;
* ``symmetric``: the AS total spread centred on the mid (the paper's comparison strategy).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from marketsim.mm.cartea import QuoteTable, cara_inventory_table, cartea_jaimungal_table
from marketsim.mm.formulas import glft_quotes
from marketsim.mm.vector import MarketMakingVectorEnv

STRATEGIES = ("as", "glft", "cj", "cara", "symmetric")
Quoter = Callable[[MarketMakingVectorEnv], tuple[np.ndarray, np.ndarray]]


def _table_quoter(table: QuoteTable, rolling: bool) -> Quoter:
    """Quote from a precomputed depth table (step 0 throughout for a rolling horizon)."""

    def quote(env: MarketMakingVectorEnv) -> tuple[np.ndarray, np.ndarray]:
        k = env.kernel
        step = np.zeros_like(k.step_i) if rolling else k.step_i
        bid_d, ask_d = table.depths(step, k.q / env.config.order_size)
        return k.mid - bid_d, k.mid + ask_d

    return quote


def make_strategy(name: str, gamma: float, env: MarketMakingVectorEnv) -> Quoter:
    """Return the quoting function of strategy ``name`` for ``env``."""
    if name not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {name!r}")
    if not np.isfinite(gamma) or gamma <= 0:
        raise ValueError(f"gamma must be finite and > 0, got {gamma}")
    k = env.kernel
    m = k.market
    c = env.config
    if name in ("as", "symmetric"):
        def quote(env: MarketMakingVectorEnv) -> tuple[np.ndarray, np.ndarray]:
            bid, ask = env.kernel.as_quotes(gamma, m.k, env.kernel.quote_sigma(), env.kernel.tau())
            if name == "as":
                return bid, ask
            half = 0.5 * (ask - bid)
            return env.kernel.mid - half, env.kernel.mid + half
        return quote
    if name == "glft":
        def quote(env: MarketMakingVectorEnv) -> tuple[np.ndarray, np.ndarray]:
            kk = env.kernel
            return glft_quotes(kk.mid, kk.q, gamma, kk.quote_sigma(), m.A, m.k)
        return quote
    q_max = int(round(c.max_inventory / c.order_size))
    rolling = c.rolling_horizon is not None
    n_steps = int(round(c.rolling_horizon / k.dt)) if rolling else c.n_steps
    if name == "cj":
        table = cartea_jaimungal_table(m.A, m.k, k.phi, c.terminal_penalty, q_max, n_steps, k.dt)
    else:
        table = cara_inventory_table(m.A, m.k, gamma, k.sigma, q_max, n_steps, k.dt)
    return _table_quoter(table, rolling)


def _jsonable(value: Any) -> Any:
    """``value`` if JSON can hold it, else its repr (a DataFrame of candles, say)."""
    if value is None or isinstance(value, (int, float, str, bool, list, tuple)):
        return value
    return repr(value)


def run_baseline(strategy: str, gamma: float, episodes: int, seed: int = 0,
                 batch: int = 1000, **env_kwargs: Any) -> dict[str, Any]:
    """Run ``episodes`` episodes (episode i seeded ``seed + i``) and summarise them."""
    if not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"episodes must be an int >= 1, got {episodes!r}")
    pnl, inv, reward, fills, spread_sum, spread_n = [], [], [], [], 0.0, 0
    done = 0
    while done < episodes:
        n = min(batch, episodes - done)
        env = MarketMakingVectorEnv(num_envs=n, **env_kwargs)
        quote = make_strategy(strategy, gamma, env)
        env.reset(seed=seed + done)
        total = np.zeros(n)
        n_fills = np.zeros(n)
        for _ in range(env.config.n_steps):
            bid, ask = quote(env)
            _, r, term, trunc, info = env.step_quotes(bid, ask)
            total += r
            n_fills += info["fills"]
            spread_sum += float(info["spread"].sum())
            spread_n += n
        if not np.all(term | trunc):
            raise RuntimeError("episodes did not end after n_steps steps")
        pnl.append(info["pnl"])
        inv.append(info["inventory"])
        reward.append(total)
        fills.append(n_fills)
        done += n
    pnl_a, inv_a, rew_a = np.concatenate(pnl), np.concatenate(inv), np.concatenate(reward)
    return {
        "strategy": strategy, "gamma": gamma, "episodes": episodes, "seed": seed,
        "pnl_mean": float(pnl_a.mean()),
        "pnl_std": float(pnl_a.std(ddof=1)) if episodes > 1 else 0.0,
        "inventory_mean": float(inv_a.mean()),
        "inventory_std": float(inv_a.std(ddof=1)) if episodes > 1 else 0.0,
        "spread_mean": spread_sum / spread_n,
        "reward_mean": float(rew_a.mean()),
        "reward_std": float(rew_a.std(ddof=1)) if episodes > 1 else 0.0,
        "fills_mean": float(np.concatenate(fills).mean()),
        "env_kwargs": {key: _jsonable(value) for key, value in env_kwargs.items()},
    }
