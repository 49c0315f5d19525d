"""Fixtures: tiny PPO and SAC runs on synthetic hourly candles, and their backtest folders."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from marketsim.data.store import frame_to_parquet_bytes
from marketsim.synthetic import gbm
from rlcore.config import resolve_configs
from rlcore.io import atomic_write_bytes
from rlcore.training import train

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
ETH_1H = SHARED_DATA / "binance-spot_ETHUSDT_1h_20170817_20230303.csv.gz"


def synthetic_candles(n: int = 1500, seed: int = 3):
    """Hourly GBM candles (1% hourly volatility) starting 2024-01-01 UTC."""
    return gbm(n, sigma=0.01, mu=0.0002, s0=2000.0, seed=seed, timeframe="1h",
               start="2024-01-01", volume=500.0)


@pytest.fixture(scope="session")
def eval_root(tmp_path_factory) -> Path:
    """Session folder holding the train data file and the trained runs."""
    root = tmp_path_factory.mktemp("evaluation")
    atomic_write_bytes(root / "train.parquet", frame_to_parquet_bytes(synthetic_candles()))
    return root


def _train(root: Path, name: str, **over) -> Path:
    base = {"env": "marketsim/CryptoFutures-v0", "steps": 512, "n_envs": 2, "seed": 1,
            "progress": False, "eval_episodes": 1,
            "eval_envs": 1, "env_kwargs": {"data": str(root / "train.parquet"),
                                           "episode_length": 256}}
    base.update(over)
    run, algo = resolve_configs(base)
    train(run, algo, root / name)
    return root / name


@pytest.fixture(scope="session")
def ppo_run(eval_root) -> Path:
    """PPO, 512 steps, observation normalisation on (its statistics are in the checkpoint)."""
    return _train(eval_root, "ppo", algo="ppo", n_steps=128, batch_size=64, n_epochs=1,
                  normalize_obs=True)


@pytest.fixture(scope="session")
def sac_run(eval_root) -> Path:
    """SAC, 300 steps (learning starts at 100), no normalisation."""
    return _train(eval_root, "sac", algo="sac", steps=300, learning_starts=100, batch_size=32)


@pytest.fixture(scope="session")
def test_candles():
    """Out-of-sample synthetic candles (another seed, later dates)."""
    df = synthetic_candles(400, seed=11)
    df.index = df.index + pd.Timedelta(days=90)
    return df


@pytest.fixture(scope="session")
def ppo_backtest(ppo_run, test_candles, tmp_path_factory) -> Path:
    """A backtest folder of the PPO run on the test candles; returns report.json's path."""
    from marketsim.evaluation.backtest_report import run_backtest

    out = tmp_path_factory.mktemp("bt") / "ppo"
    return run_backtest([ppo_run], data=test_candles, out=out)
