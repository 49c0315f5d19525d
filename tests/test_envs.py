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


@pytest.mark.parametrize("env_id, kwargs, reports_metrics", [
    ("CartPole-v1", {}, False),
    ("marketsim/CryptoFutures-v0", {"episode_length": 40}, True),
    ("marketsim/MarketMaking-v0", {}, False),
    ("marketsim/FuturesObservedSignal-v0", {}, True),
])
def test_one_environment_is_the_plain_env_with_the_batched_envs_trajectory(env_id, kwargs,
                                                                          reports_metrics):
    """With n_envs = 1 the plain gymnasium.Env runs in a SyncVectorEnv (batching one environment
    only adds overhead); it steps the same observations, rewards, ends and finished episodes,
    metrics included, as the natively batched env of one (``batched=True``)."""
    from gymnasium.vector import SyncVectorEnv

    from rlcore.stepping import finished_episodes

    plain = make_vector_env(env_id, 1, env_kwargs=kwargs).env
    assert isinstance(plain.unwrapped, SyncVectorEnv)
    batched = make_vector_env(env_id, 1, env_kwargs=kwargs, batched=True).env
    assert not isinstance(batched.unwrapped, SyncVectorEnv)
    o1, _ = plain.reset(seed=3)
    o2, _ = batched.reset(seed=3)
    np.testing.assert_array_equal(o1, o2)
    plain.single_action_space.seed(0)
    episodes, with_metrics = 0, 0
    for _ in range(600):
        a = np.stack([plain.single_action_space.sample()])
        s1, s2 = plain.step(a), batched.step(a)
        for x, y in zip(s1[:4], s2[:4]):
            np.testing.assert_array_equal(np.asarray(x, np.float64), np.asarray(y, np.float64))
        e1, e2 = finished_episodes(s1[4]), finished_episodes(s2[4])
        assert [(e.ret, e.length, e.metrics) for e in e1] == [(e.ret, e.length, e.metrics)
                                                               for e in e2]
        episodes += len(e1)
        with_metrics += sum(bool(e.metrics) for e in e1)
    assert episodes >= 2
    assert with_metrics == (episodes if reports_metrics else 0)
    plain.close()
    batched.close()
