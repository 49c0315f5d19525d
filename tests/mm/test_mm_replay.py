"""Replay mode: candles drive the mid and fills, without look-ahead."""

import numpy as np
import pandas as pd
import pytest

from marketsim.mm.env import MarketMakingEnv
from marketsim.mm.vector import MarketMakingVectorEnv

from .conftest import DATA_DIR, walk_candles


def _run(candles, steps, seed=9, **kw):
    env = MarketMakingEnv(mode="replay", candles=candles, calib_bars=500, n_steps=60, **kw)
    obs, _ = env.reset(seed=seed)
    rows = [(obs, 0.0)]
    for t in range(steps):
        obs, r, *_ = env.step(t % 6)
        rows.append((obs, r))
    return env, rows


def test_no_look_ahead():
    candles = walk_candles()
    env, base = _run(candles, 60)
    start = int(env.kernel.start[0])
    for t in (0, 10, 30):
        future = candles.copy()
        rows = future.index[start + t + 1:]
        rng = np.random.default_rng(t)
        shift = rng.normal(0, 50, len(rows))
        for col in ("open", "high", "low", "close"):
            future.loc[rows, col] = future.loc[rows, col] + shift
        _, pert = _run(future, t)
        for (o1, r1), (o2, r2) in zip(base[:t + 1], pert, strict=True):
            np.testing.assert_array_equal(o1, o2)
            assert r1 == r2
        # and the future does matter once it is reached
        _, pert_next = _run(future, t + 1)
        assert not np.array_equal(pert_next[-1][0], base[t + 1][0])


def test_fills_trade_through_by_hand():
    n = 700
    close = np.full(n, 100.0)
    close[::2] += 0.5  # some variance for the calibration
    high, low = close + 1.0, close - 1.0
    idx = pd.date_range("2023-01-01", periods=n, freq="1min", tz="UTC", name="timestamp")
    candles = pd.DataFrame({"open": close, "high": high, "low": low, "close": close,
                            "volume": 1.0}, index=idx)
    env = MarketMakingEnv(mode="replay", candles=candles, calib_bars=500, n_steps=50,
                          action_type="quotes", quote_scale=2.0, A=10.0, k=1.0)
    env.reset(seed=0)
    k = env.kernel
    i = int(k.start[0])
    mid = k.mid[0]
    # half spread 0.5*(a1 + 1)*scale = 0.5*0.25*2 = 0.25; next bar spans its close +- 1
    _, r, _, _, info = env.step(np.array([0.0, -0.75], dtype=np.float32))
    assert info["bid"] == pytest.approx(mid - 0.25) and info["ask"] == pytest.approx(mid + 0.25)
    assert low[i + 1] < info["bid"] and high[i + 1] > info["ask"]
    assert info["bid_fill"] and info["ask_fill"] and info["inventory"] == 0
    assert info["cash"] == pytest.approx(0.5)
    assert info["mid"] == close[i + 1]
    # quotes wider than the bar range never fill: half spread 2, bars span close +- 1
    _, _, _, _, info = env.step(np.array([0.0, 1.0], dtype=np.float32))
    assert not info["bid_fill"] and not info["ask_fill"]


def test_fill_probability_thins_fills():
    candles = walk_candles(seed=3)
    def fills(p):
        vec = MarketMakingVectorEnv(num_envs=64, mode="replay", candles=candles, calib_bars=500,
                                    n_steps=60, fill_prob=p)
        vec.reset(seed=0)
        return sum(vec.step(np.full(64, 2))[4]["fills"].sum() for _ in range(60))
    full, half = fills(1.0), fills(0.5)
    assert full > 0 and abs(half / full - 0.5) < 0.1


def test_nan_candles_raise_with_row():
    candles = walk_candles()
    candles.iloc[700, candles.columns.get_loc("close")] = np.nan
    with pytest.raises(ValueError, match=r"close.*700"):
        MarketMakingEnv(mode="replay", candles=candles, calib_bars=500)
    with pytest.raises(ValueError, match="rows"):
        MarketMakingEnv(mode="replay", candles=walk_candles(n=600), calib_bars=500)


def test_real_eth_candles_units():
    path = DATA_DIR / "binance-spot_ETHUSDT_1m_20230316_20230501.csv.gz"
    if not path.exists():
        pytest.skip(f"shared data not found at {path}")
    raw = pd.read_csv(path, nrows=3000)
    candles = raw[["open", "high", "low", "close", "volume"]].astype(float)
    # gamma is per price unit: for a ~1,800 USDT asset it is ~1e-3, not the model's 0.1
    env = MarketMakingEnv(mode="replay", candles=candles, calib_bars=1000, n_steps=200,
                          gammas=(0.001, 0.003, 0.01))
    m = env.kernel.market
    sigma_bar = m.sigma * np.sqrt(env.config.dt)
    # ETH near 1,700-1,800 USDT: a 1-minute move is about a dollar, not 0.0006 (a relative vol)
    assert 0.2 < sigma_bar < 10.0
    assert m.k > 0 and m.A > 0
    # quotes a few dollars wide fill
    obs, _ = env.reset(seed=0)
    total = 0
    for _ in range(200):
        obs, r, te, tr, info = env.step(2)
        total += info["fills"]
        assert np.all(np.isfinite(obs))
        assert 0.1 < info["spread"] < 20.0
    assert te and total > 10


def test_data_path_reads_through_load_candles():
    path = DATA_DIR / "binance-spot_ETHUSDT_1m_20230316_20230501.csv.gz"
    if not path.exists():
        pytest.skip(f"shared data not found at {path}")
    pytest.importorskip("marketsim.data")
    env = MarketMakingEnv(mode="replay", data_path=str(path), gammas=(0.001, 0.003, 0.01))
    obs, _ = env.reset(seed=1)
    for _ in range(200):
        obs, r, te, tr, info = env.step(1)
        assert np.all(np.isfinite(obs)) and np.isfinite(r)
    assert te and info["fills"] >= 0
    assert env.kernel.market.close.size > 60_000
