"""Trading costs of the futures market: fees, slippage, funding and the liquidation fee.

Every cost rule of the environment lives here, once; the step kernel calls these functions and
so will anything else that fills orders with the environment's rules. Their rates are fields of
:class:`~marketsim.futures.config.FuturesConfig` (``maker_fee``, ``taker_fee``, ``half_spread``,
``impact_coef``, ``liquidation_fee``, ``funding``), the one place they are set. Formulas are in
``docs/marketsim/futures.md`` (section "The equations"). Like :mod:`marketsim.futures.margin`,
the functions use only arithmetic and the ``ops`` namespace of :mod:`marketsim.futures.ops`, so
the same code runs on numpy arrays (N environments) and on Python floats (one).
"""

from __future__ import annotations

from typing import Any

import numpy as np

_TINY = 1e-300  # guards a denominator whose numerator is 0 whenever it is 0
FUNDING_PERIOD_NS = 8 * 3600 * 10**9
"""Funding every 8 hours: multiples of 8 h since the epoch are 00:00, 08:00, 16:00 UTC."""


# --8<-- [start:cost-rules]
def fee_rate(order_type: str, maker_fee: float, taker_fee: float) -> float:
    """Fee rate of an order: the taker fee for a market order, the maker fee for a limit one."""
    return maker_fee if order_type == "limit" else taker_fee


def trading_fee(qty_abs: Any, price: Any, rate: float) -> Any:
    """Fee on a trade of ``qty_abs`` units at ``price`` (docs/marketsim/futures.md, eq. (1))."""
    return qty_abs * price * rate


def slippage(ops: Any, qty_abs: Any, price: Any, sigma: Any, mean_volume: Any,
             half_spread: float, impact_coef: float) -> Any:
    """Cost of a market order: half the spread plus square-root impact ``Y sigma sqrt(Q / V)``.

    docs/marketsim/futures.md, eq. (2); ``sigma`` is the per-bar realised volatility and
    ``mean_volume`` the mean bar volume (eqs. (15), (17)).
    """
    impact = impact_coef * sigma * ops.sqrt(qty_abs / mean_volume)
    return qty_abs * price * (half_spread + impact)


def funding_payment(qty: Any, price: Any, rate_sum: Any) -> Any:
    """Funding paid by a signed position over events whose rates sum to ``rate_sum``.

    docs/marketsim/futures.md, eq. (3): positive is paid (a long with a positive rate),
    negative is received.
    """
    return qty * price * rate_sum


def liquidation_fee(ops: Any, rate: float, qty_abs: Any, liq_price: Any,
                    margin_balance: Any) -> Any:
    """Clearance fee of a liquidation, capped so an isolated position loses at most its margin.

    docs/marketsim/futures.md, eq. (7): ``min(rate |q| LP, max(0, WB + q (LP - EP)))`` with
    ``margin_balance`` = ``WB + q (LP - EP)``.
    """
    return ops.minimum(rate * qty_abs * liq_price, ops.maximum(margin_balance, 0.0))
# --8<-- [end:cost-rules]


# --8<-- [start:affordable-opening]
def affordable_opening(ops: Any, closing: Any, opening: Any, slip: Any, equity_room: Any,
                       per_unit_margin_and_fee: Any, cash_room: Any, per_unit_fee: Any) -> Any:
    """Largest opening quantity ``x`` in ``[0, opening]`` that fits eq. (19).

    An order trades ``closing + opening`` units and pays ``slip`` (eq. (2)). With ``S(s)`` the
    slippage of ``s`` units, the shrunk order must satisfy
    ``x * per_unit_margin_and_fee + S(closing + x) <= equity_room`` (margin and fee fit in the
    equity) and ``x * per_unit_fee + S(closing + x) <= cash_room`` (fee and slippage fit in
    the wallet). ``S`` is convex with ``S(0) = 0``, so ``S(s) <= s * slip / (closing +
    opening)`` for ``s`` up to the order: solving with that line gives an ``x`` that always
    fits, and is the largest that does up to the line's distance from ``S`` (nothing for the
    usual small shrink). docs/marketsim/futures.md, eq. (19).
    """
    per_unit_slip = slip / ops.maximum(closing + opening, _TINY)
    room_equity = equity_room - closing * per_unit_slip
    room_cash = cash_room - closing * per_unit_slip
    by_equity = room_equity / (per_unit_margin_and_fee + per_unit_slip)
    by_cash = room_cash / (per_unit_fee + per_unit_slip)
    return ops.maximum(ops.minimum(ops.minimum(by_equity, by_cash), opening), 0.0)
# --8<-- [end:affordable-opening]


def funding_event_times(first_ns: int, last_ns: int) -> np.ndarray:
    """Funding event times (ns since the epoch, every 8 h) in ``[first_ns, last_ns]``."""
    first = -(-int(first_ns) // FUNDING_PERIOD_NS) * FUNDING_PERIOD_NS
    return np.arange(first, int(last_ns) + 1, FUNDING_PERIOD_NS, dtype=np.int64)


def funding_per_bar(close_ns: np.ndarray, event_ns: np.ndarray,
                    event_rates: np.ndarray) -> np.ndarray:
    """Sum of the rates of funding events in ``(close_{t-1}, close_t]`` for every bar ``t``.

    Bar 0 gets 0. This is the ``rate_sum`` that :func:`funding_payment` charges when the
    environment steps onto bar ``t`` (docs/marketsim/futures.md, eq. (3)).
    """
    # --8<-- [start:cumulative-funding]
    cum = np.concatenate([[0.0], np.cumsum(event_rates)])
    upto = np.searchsorted(event_ns, close_ns, side="right")  # events <= close time
    per_bar = np.zeros(close_ns.shape)
    per_bar[1:] = cum[upto[1:]] - cum[upto[:-1]]
    # --8<-- [end:cumulative-funding]
    return per_bar
