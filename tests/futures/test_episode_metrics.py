"""An episode in money: the futures environments report final equity, return, max drawdown,
trades, fees, funding, turnover, liquidations and ruin at each episode's end
(marketsim/futures/episode.py), the same in the single and the batched view."""

from __future__ import annotations

import numpy as np
import pytest
from futures_helpers import LEVERAGE, flat_candles, random_candles, set_bar

from marketsim.futures.env import CryptoFuturesEnv
from marketsim.futures.vector import CryptoFuturesVectorEnv


def test_metrics_follow_the_equity_path_and_the_accounts():
    env = CryptoFuturesEnv(data=random_candles(600, seed=3), episode_length=40)
    rng = np.random.default_rng(0)
    env.reset(seed=1)
    path, trades, liquidations, done, info = [10_000.0], 0, 0, False, {}
    while not done:
        _, _, term, trunc, info = env.step(rng.uniform(-1, 1, 1).astype(np.float32))
        path.append(info["equity"])
        trades += info["trade_qty"] != 0
        liquidations += info["liquidated"]
        done = term or trunc
    m = info["episode_metrics"]
    e = np.array(path)
    assert m["final_equity"] == info["equity"]
    assert m["return_pct"] == pytest.approx(100 * (info["equity"] / 10_000 - 1))
    assert m["max_drawdown_pct"] == pytest.approx(100 * np.max(1 - e / np.maximum.accumulate(e)))
    assert m["max_drawdown_pct"] > 0 and m["trades"] == trades > 0
    assert m["fees"] == info["fees"] > 0 and m["funding"] == info["funding"]
    # risk sizing (the default): a liquidation is the stop being hit, 1% of equity, never ruin
    assert m["liquidations"] == liquidations and m["ruined"] == 0 and m["final_equity"] > 5_000
    assert set(m) == set(env.metadata["episode_metric_units"])


def test_a_liquidated_all_in_account_is_ruined():
    df = flat_candles(80)
    set_bar(df, 60, 100.0, low=89.0)
    env = CryptoFuturesEnv(data=df, **LEVERAGE)  # all in at 10x
    env.reset(options={"start": 59})
    _, _, term, _, info = env.step(np.array([1.0], np.float32))
    m = info["episode_metrics"]
    assert term and m["ruined"] == 1 and m["liquidations"] == 1
    assert m["return_pct"] == pytest.approx(-100.0) and m["max_drawdown_pct"] == pytest.approx(100)


def test_batched_metrics_equal_single_environments():
    df = random_candles(800, seed=5)
    n, steps = 3, 300
    vec = CryptoFuturesVectorEnv(num_envs=n, data=df, episode_length=25)
    singles = [CryptoFuturesEnv(data=df, episode_length=25) for _ in range(n)]
    vec.reset(seed=7)
    for i, s in enumerate(singles):
        s.reset(seed=7 + i)
    rng = np.random.default_rng(1)
    pending = [False] * n
    ended = 0
    for _ in range(steps):
        a = rng.uniform(-1, 1, (n, 1)).astype(np.float32)
        _, _, _, _, info = vec.step(a)
        for i, s in enumerate(singles):
            if pending[i]:  # NEXT_STEP autoreset: this step only reset env i
                s.reset()
                pending[i] = False
                continue
            _, _, term, trunc, sinfo = s.step(a[i])
            if term or trunc:
                pending[i] = True
                ended += 1
                assert info["_episode_metrics"][i]
                for k, v in sinfo["episode_metrics"].items():
                    assert info["episode_metrics"][k][i] == pytest.approx(v, rel=1e-12, abs=1e-9), k
            else:
                assert "_episode_metrics" not in info or not info["_episode_metrics"][i]
    assert ended >= 3 * n
