"""A market study scores trials on walk-forward folds inside the training window, never on the
test window, and reports the tuned configuration's test result apart."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.conftest import SHARED_DATA
from tests.tune.tune_helpers import invoke

DATA = SHARED_DATA / "binance-spot_ETHUSDT_5m_20200210_20200331.csv.gz"


def test_fold_study_stays_inside_the_training_window(tmp_path):
    if not DATA.exists():
        pytest.skip(f"{DATA}: shared data not present")
    space = tmp_path / "space.yaml"
    space.write_text("learning_rate: {type: float, low: 1.0e-4, high: 3.0e-3, log: true}\n")
    res = invoke("tune", "--env", "marketsim/CryptoFutures-v0", "--data", str(DATA),
                 "--train-start", "2020-02-12", "--train-end", "2020-03-20", "--folds", "2",
                 "--val", "5d", "--test-end", "2020-03-31", "--trials", "2", "--steps", "256",
                 "--startup-trials", "1", "--space", str(space), "--out", str(tmp_path),
                 "--study", "s", "--set", "n_envs=2", "--set", "n_steps=64", "--set",
                 "batch_size=64", "--set", "n_epochs=1", "--set", "eval_episodes=1", "--set",
                 "eval_envs=1", "--set", "torch_threads=1", "--env-arg", "episode_length=128")
    assert res.exit_code == 0, res.output + repr(res.exception)
    folder = tmp_path / "s"
    folds = json.loads((folder / "folds.json").read_text())
    end = pd.Timestamp("2020-03-20", tz="UTC")
    for f in folds["folds"]:
        train = pd.read_parquet(f["train"])
        assert pd.Timestamp(f["val_end"]) <= end
        assert train.index.max() < pd.Timestamp(f["val_start"])
        assert pd.read_parquet(f["val"]).index.max() < end
    assert pd.read_parquet(folds["full_train"]).index.max() < end
    assert folds["test_window"][0] == end.isoformat()
    import optuna

    from rlcore.tune.study import make_storage

    study = optuna.load_study(study_name="s", storage=make_storage("", folder))
    for t in study.trials:  # one reported value per fold, at steps 0 and 1
        assert sorted(t.intermediate_values) == [0, 1] and len(t.user_attrs["fold_scores"]) == 2
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["pruner"] == "wilcoxon"
    oos = json.loads((folder / "out_of_sample.json").read_text())
    assert oos["params"] == summary["best_params"] and "score" in oos
