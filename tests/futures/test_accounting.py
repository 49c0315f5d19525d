"""Equity identity and long/short books over many random steps (docs/marketsim/futures.md)."""

from __future__ import annotations

import numpy as np
import pytest
from futures_helpers import LEVERAGE, random_candles

from marketsim.futures.env import CryptoFuturesEnv
from marketsim.futures.vector import CryptoFuturesVectorEnv

BOOKS = ("realised_pnl", "unrealised_pnl", "fees", "funding", "slippage")
CASES = {
    "leverage": dict(LEVERAGE, max_leverage=20.0),
    "risk": dict(sizing="risk", risk_fraction=0.02, stop_distance=0.01, max_leverage=50.0),
    "limit": dict(LEVERAGE, order_type="limit", limit_offset=0.001, max_leverage=15.0),
}


def _net(info, suffix: str = "") -> float:
    return (info["realised_pnl" + suffix] + info["unrealised_pnl" + suffix] - info["fees" + suffix]
            - info["funding" + suffix] - info["slippage" + suffix])


@pytest.mark.parametrize("case", sorted(CASES))
def test_equity_identity_over_10000_random_steps(case: str) -> None:
    df = random_candles(4000, seed=11, vol=0.02)
    env = CryptoFuturesEnv(data=df, funding=0.0003, episode_length=500, **CASES[case])
    rng = np.random.default_rng(5)
    env.reset(seed=5)
    e0 = 10000.0
    liquidations = 0
    a = np.zeros(1)
    for _ in range(10_000):
        if rng.random() < 0.3:  # hold the action most of the time, like a policy would
            a = rng.uniform(-1.0, 1.0, 1)
        _, reward, term, trunc, info = env.step(a)
        assert abs(info["equity"] - (e0 + _net(info))) <= 1e-7 * e0
        assert abs(_net(info, "_long") + _net(info, "_short") - _net(info)) <= 1e-7 * e0
        assert info["equity"] == pytest.approx(info["wallet"] + info["unrealised_pnl"], abs=1e-6)
        pos = info["position"]
        assert info["unrealised_pnl_long"] == 0.0 or pos > 0
        assert info["unrealised_pnl_short"] == 0.0 or pos < 0
        assert np.isfinite(reward)
        liquidations += bool(info["liquidated"])
        if term or trunc:
            env.reset()
    if case != "limit":
        assert liquidations > 0  # the test exercised liquidations too


def test_reward_sums_to_log_growth_of_equity() -> None:
    df = random_candles(1500, seed=2)
    env = CryptoFuturesEnv(data=df, episode_length=None, **LEVERAGE)  # no penalties
    env.reset(options={"start": 100})
    total, rng = 0.0, np.random.default_rng(0)
    for _ in range(300):
        _, r, term, trunc, info = env.step(rng.uniform(-0.3, 0.3, 1))
        total += r
        assert not (term or trunc)
    assert total == pytest.approx(np.log(info["equity"] / 10000.0), rel=1e-9)


def test_vector_env_identity_per_env() -> None:
    df = random_candles(3000, seed=1, vol=0.02)
    env = CryptoFuturesVectorEnv(num_envs=16, data=df, max_leverage=25.0, episode_length=200,
                                 **LEVERAGE)
    env.reset(seed=0)
    rng = np.random.default_rng(1)
    for _ in range(400):
        _, _, _, _, info = env.step(rng.uniform(-1, 1, (16, 1)))
        gap = info["equity"] - (10000.0 + _net(info))
        assert np.all(np.abs(gap) <= 1e-7 * 10000.0)


SOLVENCY_CASES = {
    "leverage-market": dict(LEVERAGE, max_leverage=20.0),
    "leverage-limit": dict(LEVERAGE, order_type="limit", limit_offset=0.001, max_leverage=20.0),
    "leverage-1x": dict(LEVERAGE, max_leverage=1.0),
    "risk": dict(sizing="risk", risk_fraction=0.5, stop_distance=0.01, max_leverage=50.0),
    "discrete": dict(LEVERAGE, action_type="discrete", discrete_sizes=(0.5, 1.0),
                     max_leverage=25.0),
}


@pytest.mark.parametrize("case", sorted(SOLVENCY_CASES))
def test_equity_never_negative_over_10000_random_steps(case: str) -> None:
    """Margin plus opening costs never exceed the equity (eq. (19)): all-in orders are shrunk,
    so even all-in positions liquidated by wild bars on thin volume leave equity >= 0."""
    kw = SOLVENCY_CASES[case]
    df = random_candles(4000, seed=13, vol=0.03)
    df["volume"] /= 50.0  # thin books: large square-root impact on every order
    env = CryptoFuturesEnv(data=df, funding=0.0003, episode_length=300, **kw)
    rng = np.random.default_rng(7)
    env.reset(seed=7)
    discrete = kw.get("action_type") == "discrete"
    a = 0 if discrete else np.zeros(1)
    liquidations = ruined = 0
    for _ in range(10_000):
        if rng.random() < 0.3:
            if discrete:
                a = int(rng.integers(0, 5))
            else:  # all in (either side) half the time
                a = rng.choice([-1.0, 1.0], 1) if rng.random() < 0.5 else rng.uniform(-1, 1, 1)
        _, reward, term, trunc, info = env.step(a)
        assert info["equity"] >= 0.0 and info["wallet"] + info["unrealised_pnl"] >= -1e-9
        assert abs(info["equity"] - (10000.0 + _net(info))) <= 1e-7 * 10000.0
        assert np.isfinite(reward)
        liquidations += bool(info["liquidated"])
        ruined += bool(term)
        if term or trunc:
            env.reset()
    if case != "leverage-1x":  # 1x is too little leverage to be liquidated by these bars
        assert liquidations > 0 and ruined > 0  # the walk went into liquidations and ruin
