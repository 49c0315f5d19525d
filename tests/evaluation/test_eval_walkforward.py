"""Walk-forward: fold arithmetic, chaining, and an end-to-end run on the shared real data that
checks no test bar is ever used in its own fold's training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from marketsim.data import load_candles
from marketsim.evaluation.cli import walkforward
from marketsim.evaluation.walkforward import (
    algo_sets,
    chain_equity,
    fold_slices,
    make_folds,
    parse_duration,
)

ETH_1H = (Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
          / "binance-spot_ETHUSDT_1h_20170817_20230303.csv.gz")


def test_parse_duration():
    assert parse_duration("60d") == pd.Timedelta(days=60)
    assert parse_duration("12h") == pd.Timedelta(hours=12)
    assert parse_duration("2w") == pd.Timedelta(days=14)
    with pytest.raises(ValueError, match="--train '60 days'"):
        parse_duration("60 days", "--train")


def test_folds_hand_worked():
    idx = pd.date_range("2024-01-01", "2024-07-01", freq="1h", tz="UTC", inclusive="left")
    folds = make_folds(idx, pd.Timedelta(days=60), pd.Timedelta(days=30), pd.Timedelta(days=30))
    # data: 182 days; fold k tests [60 + 30k, 90 + 30k) days: k = 0..3 (last ends at day 180)
    assert len(folds) == 4
    assert folds[0].train_start == idx[0] and folds[0].test_start == idx[0] + pd.Timedelta(60, "D")
    assert folds[3].test_end == idx[0] + pd.Timedelta(days=180)
    for a, b in zip(folds, folds[1:]):
        assert a.test_end <= b.test_start  # test windows never overlap
    for f in folds:
        assert f.train_end <= f.test_start
    with pytest.raises(ValueError, match="overlap"):
        make_folds(idx, pd.Timedelta(days=60), pd.Timedelta(days=30), pd.Timedelta(days=10))
    with pytest.raises(ValueError, match="no fold fits"):
        make_folds(idx, pd.Timedelta(days=160), pd.Timedelta(days=30), pd.Timedelta(days=30))
    assert len(make_folds(idx, pd.Timedelta(days=60), pd.Timedelta(days=30),
                          pd.Timedelta(days=30), max_folds=2)) == 2


def test_fold_slices_warmup_only_before_test():
    idx = pd.date_range("2024-01-01", periods=24 * 40, freq="1h", tz="UTC")
    df = pd.DataFrame({"close": np.arange(len(idx), dtype=float)}, index=idx)
    f = make_folds(idx, pd.Timedelta(days=20), pd.Timedelta(days=10), pd.Timedelta(days=10))[0]
    train, test = fold_slices(df, f, warmup=48)
    assert train.index.max() < f.test_start
    assert len(test) == 48 + 240
    assert (test.index[:48] < f.test_start).all() and (test.index[48:] >= f.test_start).all()
    assert test.index[48] == f.test_start


def test_chain_equity():
    idx1 = pd.date_range("2024-01-01", periods=3, freq="1D", tz="UTC")
    idx2 = pd.date_range("2024-01-04", periods=2, freq="1D", tz="UTC")
    c = chain_equity([pd.Series([100.0, 110.0, 121.0], idx1), pd.Series([100.0, 50.0], idx2)],
                     1000.0)
    np.testing.assert_allclose(c.to_numpy(), [1000, 1100, 1210, 1210, 605])


def test_algo_prefixed_settings():
    s = {"n_envs": 2, "ppo.n_steps": 64, "sac.learning_starts": 10}
    assert algo_sets(s, "ppo") == {"n_envs": 2, "n_steps": 64}
    assert algo_sets(s, "sac") == {"n_envs": 2, "learning_starts": 10}


@pytest.mark.skipif(not ETH_1H.exists(), reason=f"shared data absent: {ETH_1H}")
def test_walkforward_real_data_end_to_end(tmp_path):
    """Two folds of PPO on Binance ETHUSDT 1h in two spawned processes, tiny budget."""
    out = tmp_path / "wf"
    res = CliRunner().invoke(walkforward, [
        "--algo", "ppo", "--data", str(ETH_1H), "--start", "2022-04-01", "--end", "2022-06-15",
        "--train", "20d", "--test", "10d", "--step", "10d", "--max-folds", "2",
        "--steps", "256", "--set", "n_envs=2", "--set", "ppo.n_steps=64",
        "--set", "ppo.batch_size=64", "--set", "ppo.n_epochs=1", "--workers", "2",
        "--out", str(out)])
    assert res.exit_code == 0, res.output
    path = res.output.strip().splitlines()[-1]
    rep = json.loads(open(path).read())
    assert rep["n_folds"] == 2 and len(rep["folds"]) == 2
    # progress: a line up front, one per training as it ends (stderr; the path stays last)
    assert "walk-forward: 2 folds x 1 algorithms = 2 trainings" in res.output
    assert "[1/2] fold" in res.output and "[2/2] fold" in res.output
    full = load_candles(ETH_1H)
    prev_test_end = None
    for row in rep["folds"]:
        train = load_candles(out / row["train_file"], clean=False)
        test = load_candles(out / row["test_file"], clean=False)
        t_start = pd.Timestamp(row["test_start"])
        traded = test[test.index >= t_start]
        # no test bar is used in its own fold's training
        assert not set(train.index) & set(traded.index)
        assert train.index.max() < t_start <= traded.index.min()
        assert traded.index.max() < pd.Timestamp(row["test_end"])
        # warm-up rows are features only and come from before the test window
        assert (test.index < t_start).sum() == row["warmup_bars"]
        # the files hold the real data
        pd.testing.assert_frame_equal(train[["close"]], full.loc[train.index, ["close"]],
                                      check_freq=False)
        if prev_test_end is not None:
            assert t_start >= prev_test_end  # test windows do not overlap
        prev_test_end = pd.Timestamp(row["test_end"])
        assert set(row["metrics"]) == {"ppo", "flat", "buy_and_hold"}
        # the run trained on exactly the fold's train file
        cfg = (out / f"fold_{row['fold']:03d}" / "ppo" / "config.yaml").read_text()
        assert str(out / row["train_file"]) in cfg
    oos = pd.read_csv(out / "oos_equity.csv", index_col="timestamp")
    assert {"equity_ppo", "equity_flat", "equity_buy_and_hold"} == set(oos.columns)
    assert rep["oos"]["ppo"]["final_equity"] == pytest.approx(oos["equity_ppo"].iloc[-1],
                                                              rel=1e-9)
    for f in ("walkforward.png", "folds.png", "walkforward.html"):
        assert (out / f).stat().st_size > 1000
    again = CliRunner().invoke(walkforward, ["--data", str(ETH_1H), "--out", str(out)])
    assert again.exit_code != 0 and "not empty" in again.output
