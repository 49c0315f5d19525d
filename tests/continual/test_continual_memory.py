"""Window reservoir (Algorithm R) and the PER recency switch."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from rlcore.continual.memory import WindowReservoir, configure_recency


def test_reservoir_keeps_every_item_with_probability_k_over_n():
    # 2000 independent reservoirs of K = 5 over n = 20 items: each item is kept with p = 1/4,
    # so its count is Binomial(2000, 0.25) (mean 500); chi-square over the 20 items, alpha 0.001.
    K, n, runs = 5, 20, 2000
    counts = np.zeros(n)
    for seed in range(runs):
        r = WindowReservoir(K, seed)
        for i in range(n):
            r.add(i)
        assert len(r) == K and len(set(r.items)) == K
        counts[r.items] += 1
    chi2 = ((counts - runs * K / n) ** 2 / (runs * K / n * (1 - K / n))).sum()
    assert chi2 < stats.chi2.ppf(0.999, n)
    # the newest item is no more likely than the oldest (within 5 binomial std)
    assert abs(counts[0] - counts[-1]) < 5 * np.sqrt(2 * runs * 0.25 * 0.75)


def test_reservoir_state_round_trip_continues_identically():
    a = WindowReservoir(3, 1)
    for i in range(10):
        a.add(i)
    b = WindowReservoir(3, 99)
    b.load_state_dict(a.state_dict())
    for i in range(10, 30):
        a.add(i)
        b.add(i)
    assert a.items == b.items and a.seen == b.seen == 30
    with pytest.raises(ValueError, match="reservoir_size"):
        WindowReservoir(0)
    with pytest.raises(IndexError):
        WindowReservoir(2).sample(np.random.default_rng(0))


def test_configure_recency_sets_the_per_mixture():
    import gymnasium as gym

    from rlcore.dqn import DQN, DQNConfig
    from rlcore.hparams import HParamError

    box, disc = gym.spaces.Box(-1, 1, (2,), np.float32), gym.spaces.Discrete(2)
    ag = DQN(DQNConfig(buffer_size=64), box, disc, 1)
    assert configure_recency(ag, 0.5, 32)
    assert ag.replay.recent_frac == 0.5 and ag.replay.recent_window == 32
    assert not configure_recency(DQN(DQNConfig(buffer_size=64, per=False), box, disc, 1), 0.5, 32)
    with pytest.raises(HParamError, match="per_recent_frac"):
        configure_recency(ag, 1.0, 32)
    assert ag.replay.recent_frac == 0.5  # a refused value leaves the old one
