"""The batched env with seed s equals N single envs seeded s, s+1, ... (autoresets included)."""

from __future__ import annotations

import numpy as np
import pytest
from futures_helpers import LEVERAGE, random_candles

from marketsim.futures.env import CryptoFuturesEnv
from marketsim.futures.vector import CryptoFuturesVectorEnv

CASES = {
    "continuous": dict(LEVERAGE, max_leverage=30.0, episode_length=25),
    "discrete": dict(LEVERAGE, action_type="discrete", discrete_sizes=(0.5, 1.0),
                     max_leverage=40.0, episode_length=40),
    "defaults": dict(episode_length=30),
    "risk-limit": dict(sizing="risk", order_type="limit", limit_offset=0.0005,
                       stop_distance=0.01, max_leverage=50.0, episode_length=30),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_trajectories_match_exactly(case: str) -> None:
    kw = CASES[case]
    df = random_candles(800, seed=21, vol=0.02)
    n, seed = 5, 7
    vec = CryptoFuturesVectorEnv(num_envs=n, data=df, **kw)
    singles = [CryptoFuturesEnv(data=df, **kw) for _ in range(n)]
    vobs, vinfo = vec.reset(seed=seed)
    for i, env in enumerate(singles):
        obs, info = env.reset(seed=seed + i)
        np.testing.assert_array_equal(vobs[i], obs)
    rng = np.random.default_rng(0)
    done = np.zeros(n, bool)
    resets = terms = 0
    for _ in range(150):
        if kw.get("action_type") == "discrete":
            actions = rng.integers(0, 5, n)
        else:
            actions = rng.uniform(-1, 1, (n, 1)).astype(np.float32)
        vobs, vr, vterm, vtrunc, vinfo = vec.step(actions)
        for i, env in enumerate(singles):
            if done[i]:  # NEXT_STEP autoreset: this step is the reset
                obs, info = env.reset()
                r, term, trunc = 0.0, False, False
                resets += 1
            else:
                obs, r, term, trunc, info = env.step(actions[i])
            np.testing.assert_array_equal(vobs[i], obs)
            assert (vr[i], vterm[i], vtrunc[i]) == (r, term, trunc)
            for key, value in info.items():
                if key == "episode_metrics":  # the episode's figures: a dict at its last step
                    assert vinfo["_episode_metrics"][i]
                    for name, v in value.items():
                        assert vinfo[key][name][i] == v, name
                else:
                    assert vinfo[key][i] == value, key
            done[i] = term or trunc
            terms += term
    assert resets >= n  # autoresets happened in every env
    if case == "continuous":
        assert terms > 0  # and terminations (equity gone) too


def test_vector_info_is_arrays_of_shape_n_and_rewards_float() -> None:
    vec = CryptoFuturesVectorEnv(num_envs=3, data=random_candles(500))
    obs, info = vec.reset(seed=0)
    assert obs.shape == (3, vec.single_observation_space.shape[0]) and obs.dtype == np.float32
    _, r, term, trunc, info = vec.step(np.zeros((3, 1), np.float32))
    assert r.shape == term.shape == trunc.shape == (3,)
    assert all(np.asarray(v).shape == (3,) for v in info.values())
    assert vec.observation_space.contains(obs)


def test_info_and_obs_arrays_handed_out_never_change_later() -> None:
    vec = CryptoFuturesVectorEnv(num_envs=4, data=random_candles(500), episode_length=3)
    vec.reset(seed=0)
    held = []
    for _ in range(10):  # autoresets every 4th step
        out = vec.step(np.full((4, 1), 0.5, np.float32))
        held.append((out, {k: np.copy(v) for k, v in out[4].items()}, out[0].copy()))
    for (obs, _, _, _, info), snapshot, obs_copy in held:
        np.testing.assert_array_equal(obs, obs_copy)
        for key, value in snapshot.items():
            np.testing.assert_array_equal(info[key], value, err_msg=key)
