"""Calibration of the A/B rule on replayed real bars: reference policies and one A/B replay.

``benchmarks/bench_ab.py`` and ``tests/deploy/test_ab.py`` both call :func:`ab_replay`. The
policies read only the observation's bar returns (the first feature of each bar in the window,
in percent), so the experiment needs no trained network:

* :func:`momentum_policy`: the target fraction 0.5 tanh(sum of the window's returns), plus
  seeded Gaussian noise, on levels 0.25 apart. Two of them with different seeds are *equal* in
  distribution: same rule, same expected costs, independent noise (the false-rollback
  experiment);
* :func:`churn_policy`: flips between +f and -f every bar, paying the taker fee and slippage
  on 2f of notional per bar (the deliberately bad challenger).
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from marketsim.deploy.ab import ABRule
from marketsim.deploy.deployment import ABDeployment, paper_variant
from marketsim.futures.config import FuturesConfig
from marketsim.live.feeds import ReplayFeed
from marketsim.live.journal import Journal

__all__ = ["momentum_policy", "churn_policy", "experiment_config", "ab_replay"]


def experiment_config(**over: Any) -> FuturesConfig:
    """Futures settings of the experiment: a 4-bar window, leverage sizing at most 2x."""
    return FuturesConfig(**{"window": 4, "vol_window": 8, "sizing": "leverage",
                            "max_leverage": 2.0, **over})


def momentum_policy(noise: float = 0.05, seed: int = 0, window: int = 4, n_feat: int = 5,
                    step: float = 0.25):
    """0.5 tanh(sum of the window's % returns) + N(0, noise), clipped to [-1, 1] and rounded
    to a multiple of ``step`` (discrete levels, as a policy over discrete actions: the target
    changes, and a trade is paid, only when the level changes)."""
    rng = np.random.default_rng(seed)

    def decide(obs: np.ndarray) -> np.ndarray:
        momentum = float(np.sum(obs[: window * n_feat : n_feat]))
        a = 0.5 * np.tanh(momentum) + noise * rng.standard_normal()
        return np.array([np.clip(step * np.round(a / step), -1.0, 1.0)], np.float32)

    return decide


def churn_policy(fraction: float = 1.0):
    """+fraction, -fraction, +fraction, ... one flip per bar."""
    box = {"i": 0}

    def decide(obs: np.ndarray) -> np.ndarray:
        box["i"] += 1
        return np.array([fraction if box["i"] % 2 else -fraction], np.float32)

    return decide


def ab_replay(candles: pd.DataFrame, champion: Any, challenger: Any, folder: str | Path,
              rule: ABRule | None = None, cfg: FuturesConfig | None = None,
              registry: Any = None, metrics: Any = None, speed: float | None = None,
              symbol: str = "ETH/USDT", bar_ms: int = 60_000) -> dict[str, Any]:
    """Paper-trade ``champion`` and ``challenger`` (``decide(obs)``) side by side over
    ``candles``; journals in ``folder``; returns the deployment's summary."""
    rule = rule or ABRule()
    cfg = dataclasses.replace(cfg or experiment_config(), episode_length=None)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    b = paper_variant("champion", champion, cfg, 1.0 - rule.share, bar_ms, symbol,
                      folder / "champion.jsonl")
    c = paper_variant("challenger", challenger, cfg, rule.share, bar_ms, symbol,
                      folder / "challenger.jsonl", window=b.trader.window)
    dep = ABDeployment(b, c, rule, Journal(folder / "ab.jsonl", fsync=False), registry, metrics)
    return asyncio.run(dep.run(ReplayFeed(candles, bar_ms, speed=speed)))
