"""gymnasium's checker, registration, make_vec and the vector NormalizeObservation wrapper."""

from __future__ import annotations

import gymnasium
import numpy as np
from futures_helpers import random_candles
from gymnasium.utils.env_checker import check_env

import marketsim
from marketsim.futures.env import CryptoFuturesEnv
from marketsim.futures.vector import CryptoFuturesVectorEnv


def test_env_checker_passes_continuous_and_discrete() -> None:
    check_env(CryptoFuturesEnv(data=random_candles(400)), skip_render_check=True)
    check_env(CryptoFuturesEnv(data=random_candles(400), action_type="discrete"),
              skip_render_check=True)


def test_make_and_make_vec_through_the_registry() -> None:
    df = random_candles(400)
    env = gymnasium.make(marketsim.FUTURES_ID, data=df, action_type="discrete")
    obs, _ = env.reset(seed=1)
    assert env.observation_space.contains(obs)
    env.step(env.action_space.sample())
    venv = gymnasium.make_vec(marketsim.FUTURES_ID, num_envs=4,
                              vectorization_mode="vector_entry_point", data=df)
    assert isinstance(venv.unwrapped, CryptoFuturesVectorEnv) and venv.num_envs == 4
    wrapped = gymnasium.wrappers.vector.NormalizeObservation(venv)
    wrapped.reset(seed=0)
    for _ in range(30):
        obs, *_ = wrapped.step(wrapped.action_space.sample())
    assert obs.shape == (4, venv.single_observation_space.shape[0])
    assert np.all(np.isfinite(obs))


def test_real_eth_hourly_data_runs_and_keeps_the_identity(real_eth_1h) -> None:
    env = CryptoFuturesVectorEnv(num_envs=8, data=real_eth_1h, max_leverage=20.0)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(500):
        obs, r, _, _, info = env.step(rng.uniform(-1, 1, (8, 1)))
        assert np.all(np.isfinite(obs)) and np.all(np.isfinite(r))
        net = (info["realised_pnl"] + info["unrealised_pnl"] - info["fees"] - info["funding"]
               - info["slippage"])
        assert np.all(np.abs(info["equity"] - 10000.0 - net) <= 1e-6)


def test_default_data_and_path_data() -> None:
    import pytest

    pytest.importorskip("marketsim.synthetic")
    env = CryptoFuturesEnv()  # the embedded default candles, no network
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    pytest.importorskip("marketsim.data")
    from futures_helpers import DATA_DIR

    path = DATA_DIR / "binance-spot_ETHUSDT_5m_20200210_20200331.csv.gz"
    if not path.exists():
        pytest.skip(f"shared data not found: {path}")
    env = CryptoFuturesEnv(data=str(path))
    env.reset(seed=0)
    _, r, *_ = env.step(np.array([0.5]))
    assert np.isfinite(r)
