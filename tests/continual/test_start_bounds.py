"""The hold-out evaluation asks a windowed environment for its start bars (no attribute probing)."""

from __future__ import annotations

import gymnasium as gym
import pytest

import marketsim  # noqa: F401  (registers the env ids)
from marketsim.synthetic import gbm
from rlcore.continual.holdout import make_single_env, start_bounds


def test_futures_and_toy_envs_state_their_start_bars() -> None:
    candles = gbm(300, sigma=0.01, seed=0)
    for env_id, kw in [("marketsim/CryptoFutures-v0", {"window": 8}),
                       ("marketsim/TrendToy-v0", {"k": 4})]:
        env = make_single_env(env_id, kw, candles)
        first, last = start_bounds(env, env_id)
        assert 0 < first < last == len(candles) - 2
        env.reset(options={"start": first})
        env.reset(options={"start": last})
        with pytest.raises(ValueError):
            env.reset(options={"start": last + 1})
        with pytest.raises(ValueError):
            env.reset(options={"start": first - 1})
        env.close()


def test_an_env_without_windows_gets_a_clear_error() -> None:
    env = gym.make("CartPole-v1")
    with pytest.raises(TypeError, match="CartPole-v1: cannot be evaluated on a data window"):
        start_bounds(env, "CartPole-v1")
    env.close()
