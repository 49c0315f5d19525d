"""What both views share around the kernel: spaces, action mapping, observation, info, resets."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from marketsim.futures.config import FuturesConfig
from marketsim.futures.features import N_ACCOUNT_FEATURES, N_BAR_FEATURES, N_TIME_FEATURES
from marketsim.futures.kernel import _BOOL_FIELDS, KernelParams, State, reset_values
from marketsim.futures.market import Market

INFO_BOOKS = ("realised_pnl", "unrealised_pnl", "fees", "funding", "slippage")
"""Accounting fields kept per side; ``info`` holds NAME, NAME_long and NAME_short for each."""
_BOOK_STATE = {
    "realised_pnl": "realised",
    "unrealised_pnl": "upnl",
    "fees": "fees",
    "funding": "funding",
    "slippage": "slippage",
}
_INFO_STATE = {
    "equity": "equity",
    "wallet": "wallet",
    "position": "qty",
    "entry_price": "entry",
    "liquidation_price": "liq_price",
    "margin": "margin",
    "leverage": "lev",
    "margin_ratio": "margin_ratio",
    "liquidated": "liquidated",
    "trade_qty": "trade_qty",
    "turnover": "turnover",
    "drawdown_penalty": "drawdown_penalty",
    "turnover_penalty": "turnover_penalty",
    "bar": "t",
    "episode_step": "steps",
}


def obs_dim(cfg: FuturesConfig) -> int:
    """Length of the observation vector."""
    return cfg.window * N_BAR_FEATURES + N_ACCOUNT_FEATURES + N_TIME_FEATURES


def observation_space(cfg: FuturesConfig) -> spaces.Box:
    """1-D float32 Box, unbounded."""
    return spaces.Box(-np.inf, np.inf, (obs_dim(cfg),), np.float32)


def action_space(cfg: FuturesConfig) -> spaces.Space:
    """Box(-1, 1, (1,)) or Discrete(2 * len(discrete_sizes) + 1)."""
    if cfg.action_type == "continuous":
        return spaces.Box(-1.0, 1.0, (1,), np.float32)
    return spaces.Discrete(2 * len(cfg.discrete_sizes) + 1)


def discrete_levels(cfg: FuturesConfig) -> np.ndarray:
    """Target fraction of each discrete action: largest short first, flat in the middle."""
    sizes = list(cfg.discrete_sizes)
    return np.array([-s for s in reversed(sizes)] + [0.0] + sizes, dtype=np.float64)


def sample_start(rng: np.random.Generator, market: Market) -> int:
    """Episode start bar, uniform over bars with a full feature history and one bar after."""
    return int(rng.integers(market.t_min, market.n_bars - 1))


def check_start(start: Any, market: Market) -> int:
    """Validate an explicit start bar given through ``reset(options={"start": ...})``."""
    if isinstance(start, bool) or not isinstance(start, (int, np.integer)):
        raise TypeError(f"options['start']: expected an int, got {type(start).__name__}")
    if not market.t_min <= int(start) <= market.n_bars - 2:
        raise ValueError(
            f"options['start']: expected {market.t_min} <= start <= {market.n_bars - 2}, got {start}"
        )
    return int(start)


def reset_state_rows(s: State, rows: Any, starts: Any, p: KernelParams) -> None:
    """Start fresh episodes at bars ``starts`` for the environments ``rows`` (numpy state)."""
    for name, value in reset_values(p).items():
        getattr(s, name)[rows] = value
    for name in _BOOL_FIELDS:
        getattr(s, name)[rows] = False
    s.t[rows] = starts
    s.steps[rows] = 0


def reset_state_scalar(s: State, start: int, p: KernelParams) -> None:
    """Start a fresh episode at bar ``start`` (scalar state)."""
    for name, value in reset_values(p).items():
        setattr(s, name, value)
    for name in _BOOL_FIELDS:
        setattr(s, name, False)
    s.t = start
    s.steps = 0


def account_features(o: Any, s: State, close_t: Any, p: KernelParams) -> tuple[Any, Any, Any]:
    """Position as a fraction of the largest one, unrealised PnL / equity, margin ratio."""
    eq = o.maximum(s.equity, p.log_floor)
    return s.qty * close_t / (p.cfg.max_leverage * eq), s.upnl / eq, s.margin_ratio


def info_dict(s: State, close_t: Any, copy: bool) -> dict[str, Any]:
    """``info``: accounting fields (arrays of shape (N,) or scalars), defined in the docs."""
    cp = np.copy if copy else (lambda x: x)
    info = {key: cp(getattr(s, name)) for key, name in _INFO_STATE.items()}
    info["notional"] = s.qty * close_t
    for key, name in _BOOK_STATE.items():
        long_v = getattr(s, name + "_long")
        short_v = getattr(s, name + "_short")
        info[key + "_long"] = cp(long_v)
        info[key + "_short"] = cp(short_v)
        info[key] = long_v + short_v
    return info
