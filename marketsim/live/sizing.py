"""From an account and an action to an observation and an order, with the environment's rules.

The futures environment decides what an action means inside its step kernel: the target
position (eqs. (8), (9) of docs/marketsim/futures.md), the minimum trade, and the largest order
whose margin and costs fit (eq. (19)). The trader must mean the same thing, so it does not
re-derive any of it: :func:`target_order` runs :func:`marketsim.futures.kernel.step` on a
scratch copy of the account, with a next bar in which no time passes, and reads the trade the
kernel made. :func:`observation` fills the account part of the observation with the
environment's own :func:`marketsim.futures.interface.account_features`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from marketsim.futures import interface
from marketsim.futures.config import FuturesConfig
from marketsim.futures.features import N_BAR_FEATURES
from marketsim.futures.kernel import KernelParams, State, step
from marketsim.futures.ops import ScalarOps
from marketsim.live.orders import Account

__all__ = ["Target", "kernel_params", "kernel_state", "account_of", "observation",
           "action_fraction", "target_order", "TwoRows"]

_LIMIT_MARGIN = 1e-9
"""A scratch limit order fills when the next bar trades this far (a price fraction) through it."""


class TwoRows:
    """The kernel's per-bar inputs for two bars: the one decided at, and the one stepped into."""

    __slots__ = ("rows",)

    def __init__(self, now: tuple[float, ...], after: tuple[float, ...]) -> None:
        self.rows = [now, after]


def kernel_params(cfg: FuturesConfig) -> KernelParams:
    """Kernel constants of ``cfg`` for a two-bar market (one step at a time)."""
    return KernelParams.build(cfg, 2, as_numpy=False)


def kernel_state(account: Account) -> State:
    """A one-environment kernel state holding ``account`` (every field the step reads)."""
    s = State.scalar()
    s.qty, s.entry, s.lev, s.margin = account.qty, account.entry, account.leverage, account.margin
    s.wallet, s.equity, s.upnl, s.price = account.wallet, account.equity, account.upnl, account.price
    s.min_equity = account.equity
    s.margin_ratio, s.liq_price = account.margin_ratio, account.liq_price
    return s


def account_of(state: State) -> Account:
    """The :class:`Account` a kernel state describes."""
    return Account(qty=state.qty, entry=state.entry, leverage=state.lev, margin=state.margin,
                   wallet=state.wallet, price=state.price, upnl=state.upnl, equity=state.equity,
                   margin_ratio=state.margin_ratio, liq_price=state.liq_price)


def observation(static_row: np.ndarray, account: Account, params: KernelParams) -> np.ndarray:
    """The environment's observation: ``static_row`` (features and time, from
    :meth:`BarWindow.static_observation`) with the account features of eq. (18) written in."""
    obs = np.array(static_row, dtype=np.float32, copy=True)
    n = params.cfg.window * N_BAR_FEATURES
    obs[n], obs[n + 1], obs[n + 2] = interface.account_features(
        ScalarOps, kernel_state(account), params)
    return obs


def action_fraction(action: Any, cfg: FuturesConfig) -> float:
    """The target fraction in [-1, 1] an action of the run's action space means.

    Continuous: the number itself; discrete: the level of
    :func:`marketsim.futures.interface.discrete_levels`. ValueError outside the space.
    """
    if cfg.action_type == "continuous":
        arr = np.asarray(action, dtype=np.float64).reshape(-1)
        a = float(arr[0]) if arr.size == 1 else math.nan
        if not -1.0 <= a <= 1.0:
            raise ValueError(f"action: expected one number in [-1, 1] (Box), got {action!r}")
        return a
    levels = interface.discrete_levels(cfg)
    k = np.asarray(action).reshape(-1)
    if k.size != 1 or k.dtype.kind not in "iu" or not 0 <= int(k[0]) < len(levels):
        raise ValueError(f"action: expected an int in [0, {len(levels)}), got {action!r}")
    return float(levels[int(k[0])])


@dataclass(frozen=True)
class Target:
    """What the environment would trade for an action: the order, or why there is none."""

    delta: float
    """Signed units to trade (0: no order)."""
    leverage: float
    """Isolated leverage of the resulting position (eq. (8): max_leverage; eq. (9): N / R)."""
    price: float | None
    """Limit price (``order_type="limit"``), None for a market order."""
    target: float
    """The position after the trade."""
    reason: str = ""
    """Why there is no order, when there is none."""


# --8<-- [start:target-order]
def target_order(account: Account, fraction: float, row: tuple[float, ...],
                 params: KernelParams) -> Target:
    """The trade the environment makes at this bar for a target ``fraction``.

    ``row`` is the kernel's inputs at the bar decided at (:meth:`BarWindow.row`); ``account``
    is marked at its close. The kernel steps a scratch copy of the account into a bar in which
    no time passes (its close is this close, no funding); for a limit order that bar trades
    just through both limit prices, so the order fills as it would if the market came to it.
    """
    cfg = params.cfg
    close, _, _, sigma, mean_volume, _ = row
    now = (close, close, close, sigma, mean_volume, 0.0)
    if cfg.order_type == "limit":
        buy_px, sell_px = close * (1.0 - cfg.limit_offset), close * (1.0 + cfg.limit_offset)
        after = (close, sell_px * (1.0 + _LIMIT_MARGIN), buy_px * (1.0 - _LIMIT_MARGIN), sigma,
                 mean_volume, 0.0)
    else:
        after = now
    scratch = kernel_state(account)
    step(ScalarOps, scratch, TwoRows(now, after), params, fraction)
    delta = float(scratch.trade_qty)
    target = account.qty + delta
    if delta == 0.0:
        return Target(0.0, account.leverage, None, account.qty,
                      "no trade: the target is within min_trade_fraction of the position")
    if scratch.liquidated:
        return Target(0.0, account.leverage, None, account.qty,
                      "no trade: the position would be liquidated as soon as it filled")
    price = None if cfg.order_type == "market" else (buy_px if delta > 0 else sell_px)
    return Target(delta, float(scratch.lev), price, target)
# --8<-- [end:target-order]
