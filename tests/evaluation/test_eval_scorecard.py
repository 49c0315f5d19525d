"""A strategy's scorecard (metrics, ruin, Sharpe interval) on hand-computed curves, the chain's
ruin, the seed ensemble, folds aligned to the data's end, and a walk-forward whose folds are
ruined: reported per fold and strategy with the date, never a crash."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from marketsim.data.store import frame_to_parquet_bytes
from marketsim.evaluation.backtest import RunPolicy
from marketsim.evaluation.blend import FractionAgent, seed_ensemble
from marketsim.evaluation.scorecard import chain_ruin, scorecard
from marketsim.evaluation.walkforward import WalkForwardSpec, make_folds, run_walkforward
from marketsim.synthetic import gbm
from rlcore.agent import ActResult
from rlcore.io import atomic_write_bytes


def _frame(values, times):
    idx = pd.DatetimeIndex(pd.to_datetime(times, utc=True))
    return pd.DataFrame({"equity": values, "fees": [0.0, 1.0, 2.0, 0.0, 0.5],
                         "funding": [0.0, 0.25, -0.5, 0.0, 0.0]}, index=idx)


TIMES = ["2024-01-01 00:00", "2024-01-01 23:00", "2024-01-02 23:00", "2024-01-03 23:00",
         "2024-01-04 23:00"]


def test_scorecard_hand_computed():
    f = _frame([100.0, 110.0, 99.0, 99.0, 121.0], TIMES)
    m = scorecard(f, floor=1.0, n_boot=200)
    # daily returns +10%, -10%, 0, +22.2%: two of four days profitable (a flat day is not)
    assert m["profitable_days"] == 0.5
    assert m["max_drawdown"] == pytest.approx(99 / 110 - 1)
    annual = 1.21 ** (365 / 4) - 1
    assert m["annual_return"] == pytest.approx(annual)
    assert m["calmar"] == pytest.approx(annual / 0.1)
    assert m["fees"] == 3.5 and m["funding"] == -0.25
    assert m["ruined"] is False and m["ruined_at"] is None
    assert m["sharpe_lo"] <= m["sharpe"] <= m["sharpe_hi"]


def test_scorecard_of_a_ruined_curve_says_when():
    f = _frame([100.0, 60.0, 1.0, 1.0, 1.0], TIMES)
    m = scorecard(f, floor=1.0, n_boot=100)
    assert m["ruined"] is True and m["ruined_at"].startswith("2024-01-02T23:00")
    assert m["max_drawdown"] == pytest.approx(-0.99) and m["calmar"] == pytest.approx(-1 / 0.99)
    with pytest.raises(ValueError, match="equity"):
        scorecard(f.drop(columns="equity"), 1.0)


def test_chain_ruin_counts_folds():
    folds = [{"ruined": False, "ruined_at": None}, {"ruined": True, "ruined_at": "A"},
             {"ruined": True, "ruined_at": "B"}]
    assert chain_ruin(folds) == {"ruined": True, "ruined_at": "A", "ruined_folds": 2.0}
    assert chain_ruin(folds[:1])["ruined"] is False


def test_folds_aligned_to_the_data_end():
    idx = pd.date_range("2024-01-01", "2024-07-01", freq="1h", tz="UTC", inclusive="left")
    end = idx[-1] + pd.Timedelta(hours=1)
    d = pd.Timedelta(days=1)
    folds = make_folds(idx, 60 * d, 30 * d, 30 * d, align="end")
    # 182 days: tests end at day 182, 152, 122, 92 (the next would need a train start < day 0)
    assert [f.test_end for f in folds] == [end - k * 30 * d for k in (3, 2, 1, 0)]
    assert [f.index for f in folds] == [0, 1, 2, 3] and folds[0].train_start >= idx[0]
    last2 = make_folds(idx, 60 * d, 30 * d, 30 * d, max_folds=2, align="end")
    assert [f.test_end for f in last2] == [f.test_end for f in folds[-2:]]
    with pytest.raises(ValueError, match="align"):
        make_folds(idx, 60 * d, 30 * d, 30 * d, align="middle")


class _Fixed:
    """An acting agent that always returns the same action."""

    def __init__(self, action, dtype):
        self.action, self.dtype = action, dtype

    def initial_state(self, n):
        return None

    def act(self, obs, state=None, start=None, deterministic=False):
        n = len(obs)
        a = np.full((n,) if self.dtype == np.int64 else (n, 1), self.action, dtype=self.dtype)
        return ActResult(a)


def test_seed_ensemble_averages_target_fractions_of_discrete_and_continuous_members():
    long_ = RunPolicy(_Fixed(2, np.int64), 1, None, "discrete", {"action_type": "discrete"})
    short = RunPolicy(_Fixed(0, np.int64), 1, None, "discrete", {"action_type": "discrete"})
    cont = RunPolicy(_Fixed(0.4, np.float32), 1, None, "continuous",
                     {"action_type": "continuous"})
    assert FractionAgent(long_.agent, np.array([-1, 0, 1])).act(np.zeros((2, 3))).actions.tolist() \
        == [[1.0], [1.0]]
    pol = seed_ensemble([long_, long_, cont])
    assert pol.action_type == "continuous" and pol.env_kwargs["action_type"] == "continuous"
    a = pol.decider()(np.zeros(3, np.float32), {})
    assert a.shape == (1,) and a[0] == pytest.approx((1 + 1 + 0.4) / 3)
    assert seed_ensemble([long_, short]).decider()(np.zeros(3), {})[0] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="two or more"):
        seed_ensemble([long_])


def test_walkforward_reports_ruined_folds_per_strategy(tmp_path):
    """A floor at 99.9% of the starting equity ruins every trading account within hours: the
    report says so per fold and strategy, with the date, and counts ruined folds in the chain."""
    data = tmp_path / "candles.parquet"
    atomic_write_bytes(data, frame_to_parquet_bytes(
        gbm(1500, sigma=0.01, mu=0.0, s0=2000.0, seed=5, timeframe="1h", start="2024-01-01",
            volume=500.0)))
    spec = WalkForwardSpec(
        data=str(data), out=str(tmp_path / "wf"), algos=("ppo",), train="20d",
        test="10d", step="10d", steps=128, max_folds=2, seeds=(0, 1), ensemble=True,
        align="end", n_boot=100,
        sets=(("eval_episodes", 1), ("eval_envs", 1), ("n_envs", 2), ("n_steps", 64),
              ("batch_size", 64), ("n_epochs", 1)),
        env_args=(("equity_floor", 0.999), ("sizing", "leverage"), ("episode_length", 128)),
        algo_env_args=(("ppo", (("action_type", "discrete"),)),))
    rep = json.loads(run_walkforward(spec).read_text())
    names = {"ppo-s0", "ppo-s1", "ensemble", "flat", "buy_and_hold"}
    assert rep["n_folds"] == 2
    for row in rep["folds"]:
        assert set(row["metrics"]) == names
        for m in row["metrics"].values():
            assert isinstance(m["ruined"], bool) and "sharpe_lo" in m
            if m["ruined"]:
                assert row["test_start"] <= m["ruined_at"] < row["test_end"]
    assert rep["folds"][0]["metrics"]["flat"]["ruined"] is False
    ruined = [m for row in rep["folds"] for m in row["metrics"].values() if m["ruined"]]
    assert ruined, "a 99.9% floor must ruin some trading account"
    for name in names:
        o = rep["oos"][name]
        n = sum(r["metrics"][name]["ruined"] for r in rep["folds"])
        assert o["ruined_folds"] == n and o["ruined"] == (n > 0)
        assert math.isfinite(o["sharpe"])
    html = (tmp_path / "wf" / "walkforward.html").read_text()
    assert "(ruined at " in html and "ruined_folds" in html
