"""The validation gate (eqs. (17)-(18)): the split lies inside the training window and before the
test window, the gate stays flat when every candidate loses on validation and otherwise picks
the best; end to end, a tiny walk-forward on synthetic candles reports each fold's pick."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from marketsim.data.store import frame_to_parquet_bytes
from marketsim.evaluation.validation import (
    gate,
    split_validation,
    validation_score,
    validation_slices,
)
from marketsim.evaluation.walkforward import (
    WalkForwardSpec,
    fold_slices,
    make_folds,
    run_walkforward,
)
from marketsim.synthetic import gbm
from rlcore.io import atomic_write_bytes


def _s(ret: float, sharpe: float = 0.0) -> dict[str, float]:
    return {"total_return": ret, "sharpe": sharpe, "max_drawdown": 0.0, "fees": 0.0}


def test_gate_stays_flat_when_every_candidate_loses():
    assert gate({"ppo-s0": _s(-0.01), "sac-s0": _s(-0.20), "ppo-ns-s0": _s(0.0)}) is None
    assert gate({}) is None
    assert gate({"ppo-s0": _s(float("nan"))}) is None
    assert gate({"ppo-s0": _s(0.004)}, margin=0.005) is None  # must beat flat by the margin


def test_gate_picks_the_best_validation_score():
    scores = {"ppo-s0": _s(0.02, 3.0), "sac-s1": _s(0.05, 1.0), "ppo-ns-s2": _s(-0.1)}
    assert gate(scores) == "sac-s1"  # ranked by return after costs, not by Sharpe
    assert gate({"b": _s(0.03), "a": _s(0.03)}) == "a"  # ties: first name, order-free
    assert gate({"x": _s(float("nan")), "y": _s(0.01)}) == "y"


def test_validation_score_of_a_backtest_frame():
    idx = pd.date_range("2024-01-01", periods=24 * 10, freq="1h", tz="UTC")
    frame = pd.DataFrame({"equity": np.linspace(100.0, 90.0, len(idx)), "fees": 0.1}, index=idx)
    s = validation_score(frame)
    assert s["total_return"] == pytest.approx(-0.1)
    assert s["fees"] == pytest.approx(0.1 * len(idx))
    assert gate({"a": s}) is None


def test_split_inside_training_window_before_test_no_lookahead():
    idx = pd.date_range("2024-01-01", periods=24 * 200, freq="1h", tz="UTC")
    df = pd.DataFrame({"close": np.arange(len(idx), dtype=float)}, index=idx)
    folds = make_folds(idx, pd.Timedelta(days=90), pd.Timedelta(days=30), pd.Timedelta(days=30))
    warmup = 48
    for f in folds:
        sp = split_validation(f.train_start, f.train_end, pd.Timedelta(days=20))
        # eq. (17): fit then validation, both inside [train_start, train_end), ending at the test
        assert f.train_start == sp.fit_start < sp.fit_end == sp.val_start < sp.val_end
        assert sp.val_end == f.train_end <= f.test_start
        fit, val = validation_slices(df, sp, warmup)
        train, test = fold_slices(df, f, warmup)
        traded_val = val[val.index >= sp.val_start]
        traded_test = test[test.index >= f.test_start]
        assert len(traded_val) == 20 * 24 and len(val) == 20 * 24 + warmup
        # validation's history rows are fit bars; nothing returned reaches the test window
        assert (val.index[:warmup] < sp.val_start).all()
        assert val.index.min() >= f.train_start and val.index.max() < f.test_start
        assert fit.index.max() < sp.val_start and fit.index.min() >= f.train_start
        # fit and traded validation bars are disjoint, both subsets of the training bars
        assert not set(fit.index) & set(traded_val.index)
        assert set(fit.index) | set(traded_val.index) == set(train.index)
        assert not (set(fit.index) | set(val.index)) & set(traded_test.index)
    with pytest.raises(ValueError, match="shorter than the training window"):
        split_validation(folds[0].train_start, folds[0].train_end, pd.Timedelta(days=90))
    with pytest.raises(ValueError, match="positive"):
        split_validation(folds[0].train_start, folds[0].train_end, pd.Timedelta(0))


def test_walkforward_with_gate_end_to_end(tmp_path):
    """Two folds of a tiny PPO (two candidates, one seed each) on synthetic candles: each
    fold reports its validation window, every candidate's score and the pick, and the strategy
    ``validated`` trades exactly the pick's test frame or stays flat."""
    data = tmp_path / "candles.parquet"
    atomic_write_bytes(data, frame_to_parquet_bytes(
        gbm(24 * 40, sigma=0.01, mu=0.0002, s0=2000.0, seed=3, timeframe="1h",
            start="2024-01-01", volume=500.0)))
    tiny = (("n_envs", 2), ("ppo.n_steps", 64), ("ppo.batch_size", 64), ("ppo.n_epochs", 1),
            ("eval_episodes", 1), ("eval_envs", 1))
    spec = WalkForwardSpec(data=str(data), out=str(tmp_path / "wf"), algos=("ppo",),
                           train="20d", test="8d", step="8d", steps=256, sets=tiny,
                           max_folds=2, variants=(("ppo-ns", "ppo", (("gamma", 0.5),)),),
                           validation="5d", n_boot=50,
                           env_args=(("episode_length", 128),))
    rep = json.loads(run_walkforward(spec).read_text())
    assert rep["n_folds"] == 2
    for row in rep["folds"]:
        v = row["validation"]
        assert set(v["scores"]) == {"ppo", "ppo-ns"}
        assert pd.Timestamp(v["val_end"]) == pd.Timestamp(row["train_end"])
        assert pd.Timestamp(v["val_start"]) == pd.Timestamp(row["train_end"]) - pd.Timedelta(days=5)
        assert v["picked"] == gate(v["scores"])
        want = row["metrics"][v["picked"]] if v["picked"] else row["metrics"]["flat"]
        assert row["metrics"]["validated"]["total_return"] == pytest.approx(
            want["total_return"], abs=1e-12)
        # the candidates trained on the fit file, which ends where validation starts
        fit = pd.read_parquet(tmp_path / "wf" / v["fit_file"])
        assert fit.index.max() < pd.Timestamp(v["val_start"])
        cfg = (tmp_path / "wf" / f"fold_{row['fold']:03d}" / "ppo-ns" / "config.yaml").read_text()
        assert v["fit_file"] in cfg and "gamma: 0.5" in cfg
    assert "validated" in rep["oos"]
    assert "id='gate'" in (tmp_path / "wf" / "walkforward.html").read_text()


def test_cli_validation_longer_than_training_window_is_refused(tmp_path):
    from click.testing import CliRunner

    from marketsim.evaluation.cli import walkforward

    data = tmp_path / "candles.parquet"
    atomic_write_bytes(data, frame_to_parquet_bytes(
        gbm(24 * 40, sigma=0.01, s0=2000.0, seed=3, timeframe="1h", start="2024-01-01")))
    res = CliRunner().invoke(walkforward, ["--data", str(data), "--train", "20d", "--test",
                                           "8d", "--step", "8d", "--validation", "20d",
                                           "--out", str(tmp_path / "wf")])
    assert res.exit_code != 0 and "shorter than the training window" in res.output
