"""What both views share around the kernel: spaces, action mapping, observation, info, resets."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding

from marketsim.futures.config import FuturesConfig
from marketsim.futures.features import N_ACCOUNT_FEATURES, N_BAR_FEATURES, N_TIME_FEATURES
from marketsim.futures.kernel import _BOOL_FIELDS, KernelParams, State, reset_values
from marketsim.futures.market import Market


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


def box_fraction(action: Any) -> float:
    """The one number of a Box(-1, 1, (1,)) action; ValueError naming it when it is anything else."""
    try:
        arr = np.asarray(action, dtype=np.float64)
        a = float(arr.reshape(-1)[0]) if arr.size == 1 else math.nan
    except (TypeError, ValueError):
        a = math.nan
    if not -1.0 <= a <= 1.0:
        raise ValueError(f"action: expected one number in [-1, 1] (Box), got {action!r}")
    return a


def vector_rngs(seed: int | Sequence[int | None] | None, n: int,
                rngs: list[np.random.Generator] | None) -> list[np.random.Generator]:
    """Per-env generators for a vector reset: ``seed`` an int (env i gets seed + i), one seed per
    env, or None (keep ``rngs`` when there are some, else fresh entropy)."""
    if seed is None:
        seeds: Sequence[int | None] = [None] * n
    elif isinstance(seed, (int, np.integer)):
        seeds = [int(seed) + i for i in range(n)]
    else:
        seeds = list(seed)
        if len(seeds) != n:
            raise ValueError(f"seed: expected {n} seeds, got {len(seeds)}")
    if rngs is not None and seed is None:
        return rngs
    return [seeding.np_random(sd)[0] for sd in seeds]


def sample_start(rng: np.random.Generator, market: Market) -> int:
    """Episode start bar, uniform over bars with a full feature history and one bar after."""
    return int(rng.integers(market.t_min, market.n_bars - 1))


def check_start(start: Any, market: Market) -> int:
    """Validate an explicit start bar given through ``reset(options={"start": ...})``."""
    if isinstance(start, bool) or not isinstance(start, (int, np.integer)):
        raise TypeError(f"options['start']: expected an int, got {type(start).__name__}")
    if not market.t_min <= int(start) <= market.n_bars - 2:
        raise ValueError(
            f"options['start']: expected {market.t_min} <= start <= {market.n_bars - 2}, "
            f"got {start}"
        )
    return int(start)


def reset_state_rows(
    state: State, rows: Any, starts: Any, prices: Any, params: KernelParams, copy: bool
) -> None:
    """Start fresh episodes at bars ``starts`` for the environments ``rows`` (numpy state).

    ``copy=True`` works on copies, so arrays handed out earlier (in ``info``) never change;
    ``copy=False`` is for arrays the kernel has just created and nobody holds yet.
    """
    values = reset_values(params)
    values.update(dict.fromkeys(_BOOL_FIELDS, False), t=starts, steps=0, price=prices)
    for name, value in values.items():
        arr = getattr(state, name)
        if copy:
            arr = arr.copy()
            setattr(state, name, arr)
        arr[rows] = value


def reset_state_scalar(state: State, start: int, price: float, params: KernelParams) -> None:
    """Start a fresh episode at bar ``start`` (scalar state)."""
    for name, value in reset_values(params).items():
        setattr(state, name, value)
    for name in _BOOL_FIELDS:
        setattr(state, name, False)
    state.t = start
    state.steps = 0
    state.price = price


def account_features(ops: Any, state: State, params: KernelParams) -> tuple[Any, Any, Any]:
    """Position as a fraction of a full one (``KernelParams.full_position``), unrealised
    PnL / equity, margin ratio.

    docs/marketsim/futures.md, eq. (18).
    """
    equity = ops.maximum(state.equity, params.log_floor)
    return (state.qty * state.price / (params.full_position * equity), state.upnl / equity,
            state.margin_ratio)


def info_dict(state: State) -> dict[str, Any]:
    """``info``: accounting fields (arrays of shape (N,) or scalars), defined in the docs.

    The arrays are the kernel's outputs of this step (the kernel builds new ones every step),
    so they are never changed afterwards.
    """
    return {
        "equity": state.equity,
        "wallet": state.wallet,
        "position": state.qty,
        "price": state.price,
        "notional": state.qty * state.price,
        "entry_price": state.entry,
        "liquidation_price": state.liq_price,
        "margin": state.margin,
        "leverage": state.lev,
        "margin_ratio": state.margin_ratio,
        "liquidated": state.liquidated,
        "trade_qty": state.trade_qty,
        "turnover": state.turnover,
        "drawdown_penalty": state.drawdown_penalty,
        "turnover_penalty": state.turnover_penalty,
        "bar": state.t,
        "episode_step": state.steps,
        "realised_pnl": state.realised_long + state.realised_short,
        "realised_pnl_long": state.realised_long,
        "realised_pnl_short": state.realised_short,
        "unrealised_pnl": state.upnl_long + state.upnl_short,
        "unrealised_pnl_long": state.upnl_long,
        "unrealised_pnl_short": state.upnl_short,
        "fees": state.fees_long + state.fees_short,
        "fees_long": state.fees_long,
        "fees_short": state.fees_short,
        "funding": state.funding_long + state.funding_short,
        "funding_long": state.funding_long,
        "funding_short": state.funding_short,
        "slippage": state.slippage_long + state.slippage_short,
        "slippage_long": state.slippage_long,
        "slippage_short": state.slippage_short,
    }
