"""The one step kernel of the futures environment, over the state of N environments.

``step(ops, state, market, params, action)`` advances every environment in ``state`` by one
bar. ``ops`` is :class:`~marketsim.futures.ops.NumpyOps` (fields of ``state`` are arrays of
shape (N,)) or :class:`~marketsim.futures.ops.ScalarOps` (fields are Python floats): the same
source runs in both views. The costs are :mod:`marketsim.futures.costs`'s, the margin rules
:mod:`marketsim.futures.margin`'s. The order of events and every equation are in
docs/marketsim/futures.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from marketsim.futures import costs
from marketsim.futures.config import FuturesConfig
from marketsim.futures.margin import Brackets, liquidation_price, risk_notional

# Per-environment state. Books are split by side: *_long / *_short.
STATE_FIELDS: tuple[str, ...] = (
    "t", "steps", "price", "qty", "entry", "lev", "margin", "liq_price", "mmr", "cum",
    "wallet", "equity", "upnl", "min_equity", "margin_ratio",
    "realised_long", "realised_short", "fees_long", "fees_short", "funding_long",
    "funding_short", "slippage_long", "slippage_short", "upnl_long", "upnl_short",
    "reward", "liquidated", "trade_qty", "turnover", "drawdown_penalty", "turnover_penalty",
    "terminated", "truncated",
)
_INT_FIELDS = ("t", "steps")
_TINY = 1e-300  # guards a denominator whose numerator is 0 whenever it is 0
_FIT = 1.0 + 1e-12  # an order over eq. (19) by rounding only is not shrunk (the cap covers it)
_BOOL_FIELDS = ("liquidated", "terminated", "truncated")


class State:
    """Mutable state of N environments (arrays) or of one (Python scalars)."""

    __slots__ = STATE_FIELDS

    @classmethod
    def numpy(cls, n: int) -> State:
        """Zeroed state of ``n`` environments as numpy arrays."""
        state = cls()
        for name in STATE_FIELDS:
            dtype = np.int64 if name in _INT_FIELDS else bool if name in _BOOL_FIELDS else float
            setattr(state, name, np.zeros(n, dtype=dtype))
        return state

    @classmethod
    def scalar(cls) -> State:
        """Zeroed state of one environment as Python scalars."""
        state = cls()
        for name in STATE_FIELDS:
            setattr(state, name,
                    0 if name in _INT_FIELDS else False if name in _BOOL_FIELDS else 0.0)
        return state


@dataclass(frozen=True)
class KernelParams:
    """Constants of the kernel, derived once from a :class:`FuturesConfig` and the data."""

    cfg: FuturesConfig
    brackets: Brackets
    floors: Any
    mmr: Any
    cum: Any
    t_last: int
    max_steps: int
    floor_equity: float
    log_floor: float
    fee_rate: float
    full_position: float
    """Notional of a full position (|action| = 1) as a multiple of equity: ``max_leverage`` in
    leverage sizing; in risk sizing the first bracket's solution of eq. (9),
    ``risk_fraction / (d + MMR_0 - d MMR_0)``, capped at ``max_leverage``. It scales the no-trade
    band and the observed position, so both mean the same in every sizing mode."""

    @classmethod
    def build(cls, cfg: FuturesConfig, n_bars: int, as_numpy: bool) -> KernelParams:
        """Bracket tables as arrays (numpy view) or lists (scalar view)."""
        brackets = Brackets.from_table(cfg.brackets)
        conv = np.asarray if as_numpy else list
        e0 = cfg.initial_equity
        return cls(
            cfg=cfg,
            brackets=brackets,
            floors=conv(brackets.floors),
            mmr=conv(brackets.mmr),
            cum=conv(brackets.cum),
            t_last=n_bars - 1,
            max_steps=cfg.episode_length if cfg.episode_length is not None else 2**62,
            floor_equity=cfg.equity_floor * e0,
            log_floor=max(cfg.equity_floor * e0, 1e-12 * e0),
            fee_rate=costs.fee_rate(cfg.order_type, cfg.maker_fee, cfg.taker_fee),
            full_position=full_position(cfg, brackets.mmr[0]),
        )


def full_position(cfg: FuturesConfig, mmr0: float) -> float:
    """A full position's notional / equity (see :attr:`KernelParams.full_position`)."""
    if cfg.sizing != "risk":
        return float(cfg.max_leverage)
    d = cfg.stop_distance
    return float(min(cfg.max_leverage, cfg.risk_fraction / (d + mmr0 - d * mmr0)))


def reset_values(params: KernelParams) -> dict[str, float]:
    """Values of the non-index state fields at the start of an episode."""
    e0 = params.cfg.initial_equity
    values = {name: 0.0 for name in STATE_FIELDS if name not in _INT_FIELDS + _BOOL_FIELDS}
    values.update(lev=params.cfg.max_leverage, mmr=params.brackets.mmr[0], wallet=e0, equity=e0,
                  min_equity=e0)
    return values


def step(ops: Any, state: State, market: Any, params: KernelParams, action: Any) -> None:
    """Advance every environment of ``state`` by one bar with target fractions ``action``.

    ``action`` is in [-1, 1]. Order of events (docs/marketsim/futures.md, "One step"): size the
    target at the close of bar t; trade (fees, slippage); check liquidation against bar t+1's
    low/high; pay funding for events in (close time t, close time t+1]; mark to bar t+1's
    close; reward.
    """
    cfg = params.cfg
    t = state.t
    t_next = t + 1
    # per-bar inputs of bars t and t+1 (one gather each): docs "One step"
    price, _, _, sigma, mean_volume, _ = ops.row(market, t)
    close_next, high_next, low_next, _, _, funding_rates = ops.row(market, t_next)
    equity = state.equity
    qty = state.qty
    entry = state.entry
    # --8<-- [start:target-position]
    # 1. target position: docs/marketsim/futures.md, eqs. (8) and (9)
    if cfg.sizing == "risk":
        risk = ops.abs(action) * cfg.risk_fraction * equity
        notional = risk_notional(ops, risk, cfg.stop_distance, action > 0.0, params.brackets)
        notional = ops.minimum(notional, cfg.max_leverage * equity)
        lev_target = ops.where(risk > 0.0, notional / ops.where(risk > 0.0, risk, 1.0),
                               cfg.max_leverage)
        qty_target = ops.where(action < 0.0, -notional, notional) / price
    else:
        qty_target = action * cfg.max_leverage * equity / price
        lev_target = cfg.max_leverage
    delta = qty_target - qty
    delta_abs = ops.abs(delta)
    trade = (delta_abs * price >= (cfg.min_trade_fraction * params.full_position) * equity) | (
        (qty_target == 0.0) & (qty != 0.0)
    )
    if cfg.min_trade_fraction == 0.0:
        trade = trade & (delta_abs > 0.0)
    if cfg.order_type == "limit":
        buy = delta > 0.0
        exec_price = ops.where(buy, price * (1.0 - cfg.limit_offset),
                               price * (1.0 + cfg.limit_offset))
        filled = ops.where(buy, low_next < exec_price, high_next > exec_price)
        trade = trade & filled
    else:
        exec_price = price
    # --8<-- [end:target-position]
    # --8<-- [start:trade-at-exec-px]
    # 2. trade at exec_price: realised PnL of the closed part, fees eq. (1), slippage eq. (2).
    # Margin plus opening costs must fit in the balance, eq. (19): an order that does not fit
    # has its opening leg shrunk to fit and its costs priced again (a second pass, only then).
    qty_new = ops.where(trade, qty_target, qty)
    delta = qty_new - qty
    delta_abs = ops.abs(delta)
    qty_abs = ops.abs(qty)
    closing = ops.where(qty * delta < 0.0, ops.minimum(delta_abs, qty_abs), 0.0)
    opening = delta_abs - closing
    kept = qty_abs - closing
    was_long = qty > 0.0
    was_short = qty < 0.0
    move = exec_price - entry
    side = ops.where(was_long, 1.0, -1.0)
    realised = closing * move * side
    kept_upnl = kept * move * side  # the kept part's unrealised PnL at exec_price
    lev_new = ops.where(trade, lev_target, state.lev)
    fee_close = costs.trading_fee(closing, exec_price, params.fee_rate)
    cash = state.wallet + realised - fee_close
    for attempt in range(2):
        fee_open = costs.trading_fee(opening, exec_price, params.fee_rate)
        if cfg.order_type == "market":
            slip = costs.slippage(ops, delta_abs, price, sigma, mean_volume, cfg.half_spread,
                                  cfg.impact_coef)
        else:  # a resting limit order crosses no spread
            slip = 0.0 * delta_abs
        wallet = cash - fee_open - slip
        owes = wallet < 0.0
        if attempt:
            break
        # eq. (19): the position at exec_price over its leverage plus the opening costs fit
        # in the equity, and the costs in the cash (the wallet stays >= 0)
        over = (opening > 0.0) & (
            ((wallet + kept_upnl) * _FIT < (kept + opening) * exec_price / lev_new) | owes)
        if not ops.any(over):
            break
        fee_per_unit = exec_price * params.fee_rate
        fits = costs.affordable_opening(
            ops, closing, opening, slip, cash + kept_upnl - kept * exec_price / lev_new,
            exec_price / lev_new + fee_per_unit, cash, fee_per_unit)
        opening = ops.where(over, fits, opening)
        delta_abs = ops.where(over, closing + fits, delta_abs)
        qty_new = ops.where(over, qty + ops.where(delta > 0.0, delta_abs, -delta_abs), qty_new)
        delta = qty_new - qty
    slip_close = slip * closing / ops.maximum(delta_abs, _TINY)
    slip_open = slip - slip_close
    qty_new_abs = ops.abs(qty_new)
    entry_new = ops.where(
        opening > 0.0,
        (kept * entry + opening * exec_price) / ops.maximum(qty_new_abs, _TINY),
        ops.where(qty_new_abs > 0.0, entry, 0.0),
    )
    margin = qty_new_abs * entry_new / lev_new
    is_long = qty_new > 0.0
    is_short = qty_new < 0.0
    # the account never owes: a closing leg whose costs exceed the wallet (thin books) leaves
    # it at 0, the exchange takes the deficit (as it takes a gap through LP), eq. (19)
    if ops.any(owes):
        deficit = ops.maximum(-wallet, 0.0)
        realised = realised + deficit
        wallet = wallet + deficit
    # the isolated margin is money the wallet holds; unrealised profit counts through the
    # margin balance, not twice (eq. (19))
    margin = ops.minimum(margin, wallet)
    bracket = ops.bracket(params.floors, qty_new_abs * entry_new)
    mmr = params.mmr[bracket]
    cum = params.cum[bracket]
    liq_price = liquidation_price(ops, qty_new, entry_new, margin, mmr, cum)
    # --8<-- [end:trade-at-exec-px]
    # --8<-- [start:liquidation-against]
    # 3. liquidation against bar t+1's adverse extreme: eq. (7)
    liquidated = (is_long & (low_next <= liq_price)) | (is_short & (high_next >= liq_price))
    pnl_liq = qty_new * (liq_price - entry_new)
    liq_fee = costs.liquidation_fee(ops, cfg.liquidation_fee, qty_new_abs, liq_price,
                                    margin + pnl_liq)
    pnl_liq = ops.where(liquidated, pnl_liq, 0.0)
    liq_fee = ops.where(liquidated, liq_fee, 0.0)
    wallet = wallet + pnl_liq - liq_fee
    qty_end = ops.where(liquidated, 0.0, qty_new)
    entry_end = ops.where(liquidated, 0.0, entry_new)
    margin_end = ops.where(liquidated, 0.0, margin)
    # 4. funding for events in (close time t, close time t+1]: eq. (3)
    funding = costs.funding_payment(qty_end, close_next, funding_rates)
    wallet = wallet - funding
    # 5. mark to market: eq. (10)
    upnl = qty_end * (close_next - entry_end)
    equity_next = wallet + upnl
    # --8<-- [end:liquidation-against]
    held_long = qty_end > 0.0
    held_short = qty_end < 0.0
    state.realised_long = state.realised_long + realised * was_long + pnl_liq * is_long
    state.realised_short = state.realised_short + realised * was_short + pnl_liq * is_short
    state.fees_long = state.fees_long + fee_close * was_long + (fee_open + liq_fee) * is_long
    state.fees_short = state.fees_short + fee_close * was_short + (fee_open + liq_fee) * is_short
    state.slippage_long = state.slippage_long + slip_close * was_long + slip_open * is_long
    state.slippage_short = state.slippage_short + slip_close * was_short + slip_open * is_short
    state.funding_long = state.funding_long + funding * held_long
    state.funding_short = state.funding_short + funding * held_short
    state.upnl_long = upnl * held_long
    state.upnl_short = upnl * held_short
    maint = ops.abs(qty_end) * close_next * mmr - cum
    margin_balance = margin_end + upnl
    state.margin_ratio = ops.where(qty_end != 0.0, maint / ops.maximum(margin_balance, 1e-12),
                                   0.0)
    # --8<-- [start:reward]
    # 6. reward: eq. (11) change of log equity, minus the optional penalties eqs. (12), (13)
    e0 = cfg.initial_equity
    log_ret = ops.log(ops.maximum(equity_next, params.log_floor) / equity)
    turnover = delta_abs * exec_price / equity
    min_equity = ops.minimum(state.min_equity, equity_next)
    reward = log_ret
    if cfg.drawdown_coef != 0.0:
        short_old = ops.maximum(cfg.equity_threshold - state.min_equity / e0, 0.0)
        short_new = ops.maximum(cfg.equity_threshold - min_equity / e0, 0.0)
        state.drawdown_penalty = cfg.drawdown_coef * (short_new - short_old)
        reward = reward - state.drawdown_penalty
    else:
        state.drawdown_penalty = 0.0 * log_ret
    if cfg.turnover_coef != 0.0:
        state.turnover_penalty = cfg.turnover_coef * turnover
        reward = reward - state.turnover_penalty
    else:
        state.turnover_penalty = 0.0 * log_ret
    state.reward = reward
    # --8<-- [end:reward]
    state.turnover = turnover
    state.trade_qty = delta
    state.liquidated = liquidated
    state.qty = qty_end
    state.entry = entry_end
    state.margin = margin_end
    state.lev = ops.where(liquidated, cfg.max_leverage, lev_new)
    state.liq_price = ops.where(liquidated, 0.0, liq_price)
    state.mmr = mmr
    state.cum = cum
    state.wallet = wallet
    state.equity = equity_next
    state.upnl = upnl
    state.min_equity = min_equity
    steps = state.steps + 1
    state.steps = steps
    state.t = t_next
    state.price = close_next
    terminated = equity_next <= params.floor_equity
    state.terminated = terminated
    state.truncated = ops.not_(terminated) & ((t_next >= params.t_last) | (steps >= params.max_steps))
