"""Liquidation price, brackets, liquidation in the env, risk sizing (docs eqs. (4)-(9))."""

from __future__ import annotations

import numpy as np
import pytest
from futures_helpers import LEVERAGE, NO_FRICTION, flat_candles, set_bar

from marketsim.futures.env import CryptoFuturesEnv
from marketsim.futures.margin import BINANCE_BTCUSDT_BRACKETS, Brackets, liquidation_price
from marketsim.futures.ops import NumpyOps, ScalarOps

BR = Brackets.from_table(BINANCE_BTCUSDT_BRACKETS)


def test_ten_x_long_at_mmr_0_4_percent_liquidates_at_0_9036() -> None:
    q, ep = 1.0, 100.0
    lp = liquidation_price(ScalarOps, q, ep, q * ep / 10.0, 0.004, 0.0)
    assert lp == pytest.approx(100.0 * 0.9 / 0.996, rel=1e-14)
    assert round(lp / ep, 4) == 0.9036


def test_cum_matches_binance_table() -> None:
    # published Binance BTCUSDT maintenance amounts for this table
    assert BR.cum == pytest.approx((0, 50, 1300, 46300, 421300, 1921300, 3921300, 6421300,
                                    26421300, 101421300))


@pytest.mark.parametrize("lev", [2.0, 5.0, 10.0, 20.0, 50.0, 100.0])
@pytest.mark.parametrize("notional", [1_000.0, 120_000.0, 1_000_000.0, 20_000_000.0])
@pytest.mark.parametrize("side", [1.0, -1.0])
def test_at_the_liquidation_price_equity_equals_maintenance_margin(lev, notional, side) -> None:
    ep = 250.0
    q = side * notional / ep
    wb = notional / lev
    i = int(np.searchsorted(BR.floors, notional, side="right") - 1)
    mmr, cum = BR.mmr[i], BR.cum[i]
    lp = liquidation_price(ScalarOps, q, ep, wb, mmr, cum)
    # independent statement of the exchange rule: margin balance = maintenance margin at LP
    balance = wb + q * (lp - ep)
    maint = abs(q) * lp * mmr - cum
    if side > 0 and lp <= 0:
        assert wb - notional <= -cum  # cannot be liquidated: the loss never reaches the margin
    else:
        assert balance == pytest.approx(maint, rel=1e-9, abs=1e-6 * notional)
    lp_np = liquidation_price(NumpyOps, np.array([q]), np.array([ep]), np.array([wb]),
                              np.array([mmr]), np.array([cum]))
    assert lp_np[0] == lp


def test_maintenance_margin_is_continuous_across_bracket_floors() -> None:
    for i in range(1, len(BR.floors)):
        f = BR.floors[i]
        assert f * BR.mmr[i - 1] - BR.cum[i - 1] == pytest.approx(f * BR.mmr[i] - BR.cum[i])


def _liq_env(low: float, high: float, a: float, **kw):
    df = flat_candles(60)
    set_bar(df, 21, 100.0, high=high, low=low)
    env = CryptoFuturesEnv(data=df, funding=0.0, **dict(NO_FRICTION, **kw))
    env.reset(options={"start": 20})
    return env.step(np.array([a]))


def test_long_liquidated_at_formula_price_loses_exactly_its_margin() -> None:
    # long 400 units at 100 (notional 40,000, bracket 1), margin 4,000, LP = 36,000/398.4
    _, r, term, _, info = _liq_env(low=90.0, high=100.0, a=0.4)
    lp = (40000.0 - 4000.0) / (400.0 * 0.996)
    assert info["liquidated"] and info["position"] == 0.0
    assert info["realised_pnl_long"] == pytest.approx(400.0 * (lp - 100.0), rel=1e-12)
    # fee = min(0.5% of 400 * LP, what is left: the maintenance margin 400 * LP * 0.004)
    assert info["fees_long"] == pytest.approx(20.0 + 400.0 * lp * 0.004, rel=1e-12)
    assert info["equity"] == pytest.approx(10000.0 - 20.0 - 4000.0, rel=1e-12)
    assert not term


def test_long_not_liquidated_above_the_price() -> None:
    _, _, _, _, info = _liq_env(low=90.5, high=100.0, a=0.4)
    assert not info["liquidated"] and info["position"] == pytest.approx(400.0)
    assert info["liquidation_price"] == pytest.approx(36000.0 / 398.4)


def test_short_liquidated_against_the_high_in_bracket_two() -> None:
    # all in: margin q * 100 / 10 plus the fee q * 100 * 0.0005 is the equity 10,000, eq. (19),
    # so q = 10,000 / 10.05 units (notional 99,502: bracket 2, mmr 0.5%, cum 50)
    q = 10000.0 / 10.05
    lp = (q * 100.0 + q * 10.0 + 50.0) / (q * 1.005)
    _, _, _, _, info = _liq_env(low=100.0, high=lp - 0.01, a=-1.0)
    assert info["position"] == pytest.approx(-q, rel=1e-12)
    assert not info["liquidated"] and info["liquidation_price"] == pytest.approx(lp)
    _, _, term, _, info = _liq_env(low=100.0, high=lp + 0.01, a=-1.0)
    assert info["liquidated"]
    # all equity was margin and fee: it is gone, and no more (never below 0) -> terminated
    assert info["equity"] == pytest.approx(0.0, abs=1e-9) and info["equity"] >= 0.0 and term


@pytest.mark.parametrize("lev", [3.0, 10.0, 25.0])
def test_liquidation_price_at_several_leverages(lev: float) -> None:
    _, _, _, _, info = _liq_env(low=100.0, high=100.0, a=0.1, max_leverage=lev)
    notional = 0.1 * lev * 10000.0
    i = int(np.searchsorted(BR.floors, notional, side="right") - 1)
    q = notional / 100.0
    lp = (notional - notional / lev - BR.cum[i]) / (q * (1 - BR.mmr[i]))
    assert info["liquidation_price"] == pytest.approx(lp, rel=1e-12)


@pytest.mark.parametrize("a", [1.0, -1.0, 0.5])
def test_risk_sizing_puts_liquidation_at_the_stop(a: float) -> None:
    _, _, _, _, info = _liq_env(low=100.0, high=100.0, a=a, sizing="risk", risk_fraction=0.02,
                                stop_distance=0.03, max_leverage=100.0)
    stop = 100.0 * (1 - 0.03) if a > 0 else 100.0 * (1 + 0.03)
    assert info["liquidation_price"] == pytest.approx(stop, rel=1e-12)
    assert info["margin"] == pytest.approx(abs(a) * 0.02 * 10000.0, rel=1e-12)
    # at the stop the loss is the margin: 1-2% of equity
    _, _, _, _, hit = _liq_env(low=stop - 0.01, high=stop + 0.01, a=a, sizing="risk",
                               risk_fraction=0.02, stop_distance=0.03, max_leverage=100.0)
    assert hit["liquidated"]
    # loss = margin (the capped liquidation fee stays inside it) + the opening taker fee
    loss = abs(a) * 200.0 + _open_fee(info)
    assert 10000.0 - hit["equity"] == pytest.approx(loss, rel=1e-9)


def _open_fee(info) -> float:
    return abs(info["position"]) * 100.0 * 0.0005


@pytest.mark.parametrize("order", ["market", "limit"])
def test_all_in_order_is_shrunk_to_fit_and_a_liquidation_leaves_zero(order: str) -> None:
    """The issue's minimal case: 60 flat bars at 100, then a bar with low 89; long with action
    1.0 at bar 59 (all in at 10x). Margin plus fee plus slippage is exactly the equity
    (eq. (19)), so the liquidation takes everything and no more: equity 0, never below."""
    df = flat_candles(80)
    set_bar(df, 60, 100.0, low=89.0)
    env = CryptoFuturesEnv(data=df, order_type=order, **LEVERAGE)
    env.reset(options={"start": 59})
    _, _, term, _, info = env.step(np.array([1.0], np.float32))
    assert info["liquidated"] and term
    assert info["equity"] >= 0.0 and info["equity"] == pytest.approx(0.0, abs=1e-9)
    # the same order on a quiet bar (low 99.99: a limit at 100 fills): shrunk to fit
    df2 = flat_candles(80)
    set_bar(df2, 60, 100.0, low=99.99)
    env2 = CryptoFuturesEnv(data=df2, order_type=order, **LEVERAGE)
    env2.reset(options={"start": 59})
    _, _, _, _, opened = env2.step(np.array([1.0], np.float32))
    q = opened["position"]
    assert 0.0 < q < 10 * 10000.0 / 100.0
    assert q * 100.0 / 10.0 + opened["fees"] + opened["slippage"] == pytest.approx(10000.0,
                                                                                  rel=1e-12)
