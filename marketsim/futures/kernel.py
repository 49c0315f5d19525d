"""The one step kernel of the futures environment, over the state of N environments.

``step(o, s, m, p, a)`` advances every environment in ``s`` by one bar. ``o`` is
:class:`~marketsim.futures.ops.NumpyOps` (fields of ``s`` are arrays of shape (N,)) or
:class:`~marketsim.futures.ops.ScalarOps` (fields are Python floats): the same source runs in
both views. The order of events and every equation are in docs/marketsim/futures.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

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
_BOOL_FIELDS = ("liquidated", "terminated", "truncated")


class State:
    """Mutable state of N environments (arrays) or of one (Python scalars)."""

    __slots__ = STATE_FIELDS

    @classmethod
    def numpy(cls, n: int) -> State:
        """Zeroed state of ``n`` environments as numpy arrays."""
        s = cls()
        for name in STATE_FIELDS:
            dtype = np.int64 if name in _INT_FIELDS else bool if name in _BOOL_FIELDS else float
            setattr(s, name, np.zeros(n, dtype=dtype))
        return s

    @classmethod
    def scalar(cls) -> State:
        """Zeroed state of one environment as Python scalars."""
        s = cls()
        for name in STATE_FIELDS:
            setattr(s, name, 0 if name in _INT_FIELDS else False if name in _BOOL_FIELDS else 0.0)
        return s


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

    @classmethod
    def build(cls, cfg: FuturesConfig, n_bars: int, as_numpy: bool) -> KernelParams:
        """Bracket tables as arrays (numpy view) or lists (scalar view)."""
        br = Brackets.from_table(cfg.brackets)
        conv = np.asarray if as_numpy else list
        e0 = cfg.initial_equity
        return cls(
            cfg=cfg,
            brackets=br,
            floors=conv(br.floors),
            mmr=conv(br.mmr),
            cum=conv(br.cum),
            t_last=n_bars - 1,
            max_steps=cfg.episode_length if cfg.episode_length is not None else 2**62,
            floor_equity=cfg.equity_floor * e0,
            log_floor=max(cfg.equity_floor * e0, 1e-12 * e0),
        )


def reset_values(p: KernelParams) -> dict[str, float]:
    """Values of the non-index state fields at the start of an episode."""
    e0 = p.cfg.initial_equity
    values = {name: 0.0 for name in STATE_FIELDS if name not in _INT_FIELDS + _BOOL_FIELDS}
    values.update(lev=p.cfg.max_leverage, mmr=p.brackets.mmr[0], wallet=e0, equity=e0,
                  min_equity=e0)
    return values


def step(o: Any, s: State, m: Any, p: KernelParams, a: Any) -> None:
    """Advance every environment of ``s`` by one bar with target fractions ``a`` in [-1, 1].

    Order of events (docs/marketsim/futures.md, "One step"): size the target at the close of
    bar t; trade (fees, slippage); check liquidation against bar t+1's low/high; pay funding
    for events in (close time t, close time t+1]; mark to bar t+1's close; reward.
    """
    c = p.cfg
    t = s.t
    t1 = t + 1
    # per-bar inputs of bars t and t+1 (one gather each): docs "One step"
    px, _, _, sigma, vbar, _ = o.row(m, t)
    c1, hi1, lo1, _, _, fund_rate = o.row(m, t1)
    eq = s.equity
    q = s.qty
    entry = s.entry
    # --8<-- [start:target-position]
    # 1. target position: docs/marketsim/futures.md, eqs. (8) and (9)
    if c.sizing == "risk":
        risk = o.abs(a) * c.risk_fraction * eq
        notional = risk_notional(o, risk, c.stop_distance, a > 0.0, p.brackets)
        notional = o.minimum(notional, c.max_leverage * eq)
        lev_t = o.where(risk > 0.0, notional / o.where(risk > 0.0, risk, 1.0), c.max_leverage)
        q_t = o.where(a < 0.0, -notional, notional) / px
    else:
        q_t = a * c.max_leverage * eq / px
        lev_t = c.max_leverage
    dq = q_t - q
    adq = o.abs(dq)
    trade = (adq * px >= (c.min_trade_fraction * c.max_leverage) * eq) | (
        (q_t == 0.0) & (q != 0.0)
    )
    if c.min_trade_fraction == 0.0:
        trade = trade & (adq > 0.0)
    if c.order_type == "limit":
        buy = dq > 0.0
        exec_px = o.where(buy, px * (1.0 - c.limit_offset), px * (1.0 + c.limit_offset))
        filled = o.where(buy, lo1 < exec_px, hi1 > exec_px)
        trade = trade & filled
        fee_rate = c.maker_fee
    else:
        exec_px = px
        fee_rate = c.taker_fee
    # --8<-- [end:target-position]
    # --8<-- [start:trade-at-exec-px]
    # 2. trade at exec_px: realised PnL of the closed part, fees eq. (1), slippage eq. (2)
    q_new = o.where(trade, q_t, q)
    dq = q_new - q
    adq = o.abs(dq)
    aq = o.abs(q)
    closing = o.where(q * dq < 0.0, o.minimum(adq, aq), 0.0)
    opening = adq - closing
    old_l = q > 0.0
    old_s = q < 0.0
    new_l = q_new > 0.0
    new_s = q_new < 0.0
    realised = closing * (exec_px - entry) * o.where(old_l, 1.0, -1.0)
    fee_c = closing * exec_px * fee_rate
    fee_o = opening * exec_px * fee_rate
    if c.order_type == "market":
        impact = c.impact_coef * sigma * o.sqrt(adq / vbar)
        slip = adq * px * (c.half_spread + impact)
        slip_c = slip * closing / o.maximum(adq, _TINY)
        slip_o = slip - slip_c
    else:
        slip = slip_c = slip_o = 0.0 * adq
    aqn = o.abs(q_new)
    kept = aq - closing
    entry_new = o.where(
        opening > 0.0,
        (kept * entry + opening * exec_px) / o.maximum(aqn, _TINY),
        o.where(aqn > 0.0, entry, 0.0),
    )
    lev_new = o.where(trade, lev_t, s.lev)
    margin = aqn * entry_new / lev_new
    idx = o.bracket(p.floors, aqn * entry_new)
    mmr = p.mmr[idx]
    cum = p.cum[idx]
    lp = liquidation_price(o, q_new, entry_new, margin, mmr, cum)
    wallet = s.wallet + realised - fee_c - fee_o - slip
    # --8<-- [end:trade-at-exec-px]
    # --8<-- [start:liquidation-against]
    # 3. liquidation against bar t+1's adverse extreme: eq. (7)
    liq = (new_l & (lo1 <= lp)) | (new_s & (hi1 >= lp))
    pnl_liq = q_new * (lp - entry_new)
    liq_fee = o.minimum(c.liquidation_fee * aqn * lp, o.maximum(margin + pnl_liq, 0.0))
    pnl_liq = o.where(liq, pnl_liq, 0.0)
    liq_fee = o.where(liq, liq_fee, 0.0)
    wallet = wallet + pnl_liq - liq_fee
    q1 = o.where(liq, 0.0, q_new)
    entry1 = o.where(liq, 0.0, entry_new)
    margin1 = o.where(liq, 0.0, margin)
    # 4. funding for events in (close time t, close time t+1]: eq. (3)
    fund = q1 * c1 * fund_rate
    wallet = wallet - fund
    # 5. mark to market: eq. (10)
    upnl = q1 * (c1 - entry1)
    equity = wallet + upnl
    # --8<-- [end:liquidation-against]
    l1 = q1 > 0.0
    s1 = q1 < 0.0
    s.realised_long = s.realised_long + realised * old_l + pnl_liq * new_l
    s.realised_short = s.realised_short + realised * old_s + pnl_liq * new_s
    s.fees_long = s.fees_long + fee_c * old_l + (fee_o + liq_fee) * new_l
    s.fees_short = s.fees_short + fee_c * old_s + (fee_o + liq_fee) * new_s
    s.slippage_long = s.slippage_long + slip_c * old_l + slip_o * new_l
    s.slippage_short = s.slippage_short + slip_c * old_s + slip_o * new_s
    s.funding_long = s.funding_long + fund * l1
    s.funding_short = s.funding_short + fund * s1
    s.upnl_long = upnl * l1
    s.upnl_short = upnl * s1
    maint = o.abs(q1) * c1 * mmr - cum
    mbal = margin1 + upnl
    s.margin_ratio = o.where(q1 != 0.0, maint / o.maximum(mbal, 1e-12), 0.0)
    # --8<-- [start:reward]
    # 6. reward: eq. (11) change of log equity, minus the optional penalties eqs. (12), (13)
    e0 = c.initial_equity
    log_ret = o.log(o.maximum(equity, p.log_floor) / eq)
    turnover = adq * exec_px / eq
    min_eq = o.minimum(s.min_equity, equity)
    reward = log_ret
    if c.drawdown_coef != 0.0:
        short_old = o.maximum(c.equity_threshold - s.min_equity / e0, 0.0)
        short_new = o.maximum(c.equity_threshold - min_eq / e0, 0.0)
        s.drawdown_penalty = c.drawdown_coef * (short_new - short_old)
        reward = reward - s.drawdown_penalty
    else:
        s.drawdown_penalty = 0.0 * log_ret
    if c.turnover_coef != 0.0:
        s.turnover_penalty = c.turnover_coef * turnover
        reward = reward - s.turnover_penalty
    else:
        s.turnover_penalty = 0.0 * log_ret
    s.reward = reward
    # --8<-- [end:reward]
    s.turnover = turnover
    s.trade_qty = dq
    s.liquidated = liq
    s.qty = q1
    s.entry = entry1
    s.margin = margin1
    s.lev = o.where(liq, c.max_leverage, lev_new)
    s.liq_price = o.where(liq, 0.0, lp)
    s.mmr = mmr
    s.cum = cum
    s.wallet = wallet
    s.equity = equity
    s.upnl = upnl
    s.min_equity = min_eq
    steps = s.steps + 1
    s.steps = steps
    s.t = t1
    s.price = c1
    terminated = equity <= p.floor_equity
    s.terminated = terminated
    s.truncated = o.not_(terminated) & ((t1 >= p.t_last) | (steps >= p.max_steps))
