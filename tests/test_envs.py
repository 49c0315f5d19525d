"""Vector environment building: frame stacking across autoresets, normaliser state, errors."""

import numpy as np
import pytest

from rlcore.envs import make_vector_env


def test_frame_stack_shifts_and_restarts_after_autoreset():
    b = make_vector_env("CartPole-v1", 2, env_kwargs={"max_episode_steps": 3}, frame_stack=4)
    env = b.env
    assert env.single_observation_space.shape == (4, 4)
    obs, _ = env.reset(seed=0)
    assert np.all(obs == obs[:, :1])  # padded with the reset observation
    history = [obs[:, -1].copy()]
    for t in range(5):
        obs, _, te, tr, _ = env.step(np.zeros(2, dtype=np.int64))
        history.append(obs[:, -1].copy())
        if t == 1:  # after 2 steps: [o0, o0, o1, o2]
            np.testing.assert_array_equal(obs[:, 0], history[0])
            np.testing.assert_array_equal(obs[:, 2], history[1])
        if t == 2:
            assert tr.all()  # truncated at 3 steps: stack holds the real final observation
            np.testing.assert_array_equal(obs[:, -1], history[3])
        if t == 3:  # the reset step: a fresh stack of the new first observation
            assert np.all(obs == obs[:, -1:])
    b.close()


def test_normaliser_state_roundtrip():
    b = make_vector_env("CartPole-v1", 2, normalize_obs=True, normalize_reward=True)
    b.env.reset(seed=0)
    for _ in range(20):
        b.env.step(np.ones(2, dtype=np.int64))
    st = b.norm_state()
    b2 = make_vector_env("CartPole-v1", 2, normalize_obs=True, normalize_reward=True)
    b2.load_norm_state(st)
    np.testing.assert_array_equal(b2.obs_norm.obs_rms.mean, b.obs_norm.obs_rms.mean)
    assert b2.rew_norm.return_rms.count == b.rew_norm.return_rms.count
    b.set_gamma(0.5)
    assert b.rew_norm.gamma == 0.5


def test_bad_arguments_name_the_problem():
    with pytest.raises(ValueError, match="n_envs"):
        make_vector_env("CartPole-v1", 0)
    with pytest.raises(ValueError, match="vec"):
        make_vector_env("CartPole-v1", 1, vec="threads")
    with pytest.raises(ValueError, match="NoSuch"):
        make_vector_env("NoSuch-v0", 1)
