"""Shared pieces of the continual-learning tests: regime candles and a tiny trained PPO run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from marketsim import TREND_TOY_ID
from marketsim.synthetic import candles_from_log_returns
from rlcore.config import resolve_configs
from rlcore.training import train

SIGMA = 0.001


def ar1_returns(n: int, phi: float, rng: np.random.Generator, sigma: float = SIGMA) -> np.ndarray:
    """``r_t = phi r_{t-1} + e_t`` with stationary std ``sigma`` (phi > 0 trends, < 0 reverts)."""
    e = rng.normal(0.0, sigma * np.sqrt(1 - phi * phi), n)
    r = np.empty(n)
    prev = 0.0
    for i in range(n):
        prev = phi * prev + e[i]
        r[i] = prev
    return r


def regime_candles(phis: list[float], bars: int, seed: int) -> pd.DataFrame:
    """Candles whose AR(1) coefficient switches through ``phis``, ``bars`` bars each."""
    rng = np.random.default_rng(seed)
    r = np.concatenate([ar1_returns(bars, p, rng) for p in phis])
    return candles_from_log_returns(r, SIGMA, rng)


def train_base(root: Path, data_path: Path, steps: int = 8192, seed: int = 0) -> Path:
    """Train PPO on TrendToy over ``data_path``; returns the run folder."""
    run, algo = resolve_configs({
        "algo": "ppo", "env": TREND_TOY_ID, "steps": steps, "n_envs": 4, "seed": seed,
        "env_kwargs": {"data": str(data_path), "episode_length": 32, "scale": SIGMA},
        "progress": False, "n_steps": 64, "batch_size": 64, "n_epochs": 4,
        "learning_rate": 1e-3, "eval_episodes": 4, "runs_dir": str(root), "run_id": "base"})
    train(run, algo)
    return root / "base"


def write_candles(df: pd.DataFrame, path: Path) -> Path:
    """Parquet file readable by ``marketsim.data.read_candles``."""
    df.to_parquet(path)
    return path
