"""Market-making backtest: one deterministic replay episode, AS and GLFT baselines."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from marketsim.evaluation.backtest_report import run_backtest
from marketsim.evaluation.mm_backtest import mm_frames
from marketsim.mm.baselines import make_strategy
from marketsim.mm.vector import MarketMakingVectorEnv
from marketsim.synthetic import gbm
from rlcore.config import resolve_configs
from rlcore.training import train


@pytest.fixture(scope="module")
def mm_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("mm")
    run, algo = resolve_configs({"algo": "ppo", "env": "marketsim/MarketMaking-v0",
                                 "steps": 256, "n_envs": 2, "n_steps": 64, "batch_size": 64,
                                 "n_epochs": 1, "progress": False, "eval_episodes": 1,
                                 "eval_envs": 1})
    train(run, algo, root / "run")
    return root / "run"


@pytest.fixture(scope="module")
def candles():
    return gbm(1400, sigma=0.001, s0=1800.0, seed=4, timeframe="1m", start="2024-02-01",
               volume=50.0)


def test_mm_backtest_report(mm_run, candles, tmp_path):
    p = run_backtest([mm_run], data=candles, out=tmp_path / "a")
    rep = json.loads(p.read_text())
    assert set(rep["baselines"]) == {"as_gamma0.1", "glft_gamma0.1"}
    for b in rep["baselines"].values():
        assert b["max_drawdown"] <= 0 and np.isfinite(b["sharpe"])
    eq = pd.read_csv(p.parent / "equity.csv", index_col="timestamp")
    calib = 1000
    assert len(eq) == len(candles) - calib - 1  # start row + n_steps = bars - calib - 2 steps
    assert pd.Timestamp(eq.index[0]) == candles.index[calib] + pd.Timedelta(minutes=1)
    assert eq["equity"].iloc[0] == pytest.approx(25 * candles["close"].iloc[calib])
    again = run_backtest([mm_run], data=candles, out=tmp_path / "b")
    assert again.read_bytes() == p.read_bytes()


def test_as_baseline_equals_direct_run(candles):
    """The AS frame equals a hand-written loop over the environment's quote API."""
    frames = mm_frames(candles, None, gamma=0.1)
    n = len(candles) - 1000 - 2
    env = MarketMakingVectorEnv(num_envs=1, mode="replay", candles=candles, n_steps=n)
    env.reset(seed=0)
    q = make_strategy("as", 0.1, env)
    pnl = []
    for _ in range(n):
        bid, ask = q(env)
        _, _, term, trunc, info = env.step_quotes(bid, ask)
        pnl.append(float(info["pnl"][0]))
    assert term[0] or trunc[0]
    f = frames["as_gamma0.1"]
    np.testing.assert_allclose(f["equity"].to_numpy()[1:] - f["equity"].iloc[0], pnl,
                               rtol=0, atol=1e-9)
    assert f["fills"].sum() > 0
    with pytest.raises(ValueError, match="calib_bars"):
        mm_frames(candles.iloc[:900], None)
