"""Fees, slippage and the round trip, worked by hand (docs/marketsim/futures.md, eqs. (1), (2))."""

from __future__ import annotations

import math

import numpy as np
import pytest
from futures_helpers import NO_FRICTION, flat_candles, random_candles, set_bar

from marketsim.futures import costs
from marketsim.futures.config import FuturesConfig
from marketsim.futures.env import CryptoFuturesEnv
from marketsim.futures.ops import NumpyOps, ScalarOps


def test_round_trip_pays_exactly_the_two_fees() -> None:
    df = flat_candles(60)
    set_bar(df, 21, 110.0)  # bar after the entry: close 110, low 100 (no liquidation)
    env = CryptoFuturesEnv(data=df, funding=0.0, **NO_FRICTION)
    env.reset(options={"start": 20})
    # long 0.5 * 10x * 10,000 = 50,000 notional at 100 -> 500 units; taker fee 25
    _, r1, _, _, info = env.step(np.array([0.5], np.float32))
    assert info["position"] == pytest.approx(500.0, rel=1e-12)
    assert info["fees"] == pytest.approx(25.0, rel=1e-12)
    assert info["unrealised_pnl"] == pytest.approx(5000.0, rel=1e-12)
    assert info["equity"] == pytest.approx(14975.0, rel=1e-12)
    assert r1 == pytest.approx(math.log(14975.0 / 10000.0), rel=1e-12)
    # close at 110: fee 500 * 110 * 0.0005 = 27.5; realised 5,000
    _, r2, _, _, info = env.step(np.array([0.0], np.float32))
    assert info["position"] == 0.0
    assert info["fees"] == pytest.approx(52.5, rel=1e-12)
    assert info["fees_long"] == pytest.approx(52.5, rel=1e-12) and info["fees_short"] == 0.0
    assert info["realised_pnl_long"] == pytest.approx(5000.0, rel=1e-12)
    assert info["equity"] == pytest.approx(10000.0 + 5000.0 - 52.5, rel=1e-12)
    assert r2 == pytest.approx(math.log(14947.5 / 14975.0), rel=1e-9)


def test_short_round_trip_and_maker_fee_limit_orders() -> None:
    df = flat_candles(60)
    set_bar(df, 21, 100.0, high=100.5, low=99.0)  # trades through 99.5 (the limit buy price)
    env = CryptoFuturesEnv(data=df, funding=0.0, order_type="limit", limit_offset=0.005,
                           **NO_FRICTION)
    env.reset(options={"start": 20})
    _, _, _, _, info = env.step(np.array([0.5], np.float32))
    # target 50,000 / 100 = 500 units, bought at 99.5 with maker fee 0.02%
    assert info["position"] == pytest.approx(500.0)
    assert info["entry_price"] == pytest.approx(99.5)
    assert info["fees"] == pytest.approx(500 * 99.5 * 0.0002)
    assert info["slippage"] == 0.0
    # next bar (22) is flat at 100: a sell limit at 100.5 does not fill
    _, _, _, _, info = env.step(np.array([0.0], np.float32))
    assert info["position"] == pytest.approx(500.0) and info["trade_qty"] == 0.0


def test_short_round_trip_books_on_the_short_side() -> None:
    df = flat_candles(60)
    set_bar(df, 21, 90.0)
    env = CryptoFuturesEnv(data=df, funding=0.0, **NO_FRICTION)
    env.reset(options={"start": 20})
    env.step(np.array([-0.2], np.float32))  # short 200 units at 100, fee 10
    _, _, _, _, info = env.step(np.array([0.0], np.float32))  # buy back at 90, fee 9
    assert info["realised_pnl_short"] == pytest.approx(2000.0)
    assert info["fees_short"] == pytest.approx(19.0)
    assert info["realised_pnl_long"] == 0.0 and info["fees_long"] == 0.0
    assert info["equity"] == pytest.approx(10000.0 + 2000.0 - 19.0)


def test_flip_splits_fee_between_books() -> None:
    df = flat_candles(60)
    env = CryptoFuturesEnv(data=df, funding=0.0, **NO_FRICTION)
    env.reset(options={"start": 20})
    env.step(np.array([0.3]))  # long 300 units: fee 15 to the long book
    # equity is now 10,000 - 15: target -0.1 * 10 * 9,985 / 100 = -99.85 units
    _, _, _, _, info = env.step(np.array([-0.1], np.float64))  # sell 399.85: close 300, open 99.85
    assert info["position"] == pytest.approx(-99.85, rel=1e-12)
    assert info["fees_long"] == pytest.approx(15.0 + 15.0, rel=1e-12)
    assert info["fees_short"] == pytest.approx(99.85 * 100 * 0.0005, rel=1e-12)


def _reference_sigma_vbar(df, t: int, w: int) -> tuple[float, float]:
    close = df["close"].to_numpy()
    r = np.log(close[t - w + 1 : t + 1] / close[t - w : t])
    return math.sqrt(np.mean(r * r)), float(df["volume"].to_numpy()[t - w + 1 : t + 1].mean())


def test_slippage_is_half_spread_plus_square_root_impact() -> None:
    df = random_candles(400, seed=3)
    kw = dict(NO_FRICTION, half_spread=0.0001, impact_coef=0.5, vol_window=20, window=8)
    env = CryptoFuturesEnv(data=df, funding=0.0, **kw)
    env.reset(options={"start": 100})
    _, _, _, _, info = env.step(np.array([0.7], np.float32))
    sigma, vbar = _reference_sigma_vbar(df, 100, 20)
    px = float(df["close"].iloc[100])
    q = float(np.float32(0.7)) * 10 * 10000.0 / px
    expected = q * px * (0.0001 + 0.5 * sigma * math.sqrt(q / vbar))
    assert info["slippage"] == pytest.approx(expected, rel=1e-9)
    assert info["slippage_long"] == info["slippage"]


def test_slippage_per_unit_notional_rises_with_size() -> None:
    df = random_candles(400, seed=4)
    kw = dict(NO_FRICTION, half_spread=0.0001, impact_coef=0.7)
    per_notional = []
    for a in (0.05, 0.1, 0.2, 0.5, 1.0):
        env = CryptoFuturesEnv(data=df, funding=0.0, **kw)
        env.reset(options={"start": 150})
        _, _, _, _, info = env.step(np.array([a], np.float32))
        per_notional.append(info["slippage"] / (a * 10 * 10000.0))
    assert all(b > a for a, b in zip(per_notional, per_notional[1:]))
    # the impact part grows like sqrt(size): quadrupling size doubles it
    imp = [p - 0.0001 for p in per_notional]
    assert imp[3] / imp[1] == pytest.approx(math.sqrt(5.0), rel=1e-6)


@pytest.mark.parametrize("ops", [NumpyOps, ScalarOps], ids=["numpy", "scalar"])
def test_cost_rules_reproduce_the_worked_example(ops) -> None:
    """docs/marketsim/futures.md section 4: 400 units at 100, sigma 0.5%, Vbar 8,000."""
    def v(x):
        return np.array([x]) if ops is NumpyOps else x

    def one(x):
        return float(np.asarray(x).reshape(-1)[0])

    assert one(costs.trading_fee(v(400.0), v(100.0), 0.0005)) == pytest.approx(20.0)
    slip = costs.slippage(ops, v(400.0), v(100.0), v(0.005), v(8000.0), 0.00005, 0.7)
    assert one(slip) == pytest.approx(400 * 100 * (0.00005 + 0.7 * 0.005 * math.sqrt(0.05)))
    assert one(slip) == pytest.approx(33.3, abs=0.05)
    assert one(costs.funding_payment(v(400.0), v(100.0), v(0.0001))) == pytest.approx(4.0)
    assert one(costs.funding_payment(v(-400.0), v(100.0), v(0.0001))) == pytest.approx(-4.0)
    # liquidation fee: min(0.005 * 36,144.6, 144.58) takes what is left of the margin
    lp = 36000.0 / (400 * 0.996)
    left = 4000.0 + 400.0 * (lp - 100.0)
    fee = costs.liquidation_fee(ops, 0.005, v(400.0), v(lp), v(left))
    assert one(fee) == pytest.approx(left) and left == pytest.approx(144.58, abs=0.01)
    assert one(costs.liquidation_fee(ops, 0.005, v(400.0), v(lp), v(-5.0))) == 0.0
    assert costs.fee_rate("limit", 0.0002, 0.0005) == 0.0002
    assert costs.fee_rate("market", 0.0002, 0.0005) == 0.0005


def test_funding_is_a_config_field_checked_once() -> None:
    assert FuturesConfig().funding == 0.0001
    with pytest.raises(ValueError, match="funding"):
        FuturesConfig(funding=float("inf"))
    with pytest.raises(TypeError, match="funding"):
        FuturesConfig(funding="high")
    events = costs.funding_event_times(5, 3 * costs.FUNDING_PERIOD_NS)
    assert events.tolist() == [costs.FUNDING_PERIOD_NS * k for k in (1, 2, 3)]
