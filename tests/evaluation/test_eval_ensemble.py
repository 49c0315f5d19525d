"""rlcore.ensemble.Ensemble: exact endpoints, blending, votes, mutable weights, errors."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from rlcore.agent import ActResult, Agent
from rlcore.config import resolve_configs
from rlcore.ensemble import Ensemble, EnsembleError
from rlcore.hparams import HParamError
from rlcore.ppo import PPO
from rlcore.sac import SAC

OBS = gym.spaces.Box(-np.inf, np.inf, (6,), np.float32)
ACT = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)


def real_agents():
    _, pcfg = resolve_configs({"algo": "ppo"})
    _, scfg = resolve_configs({"algo": "sac", "learning_starts": 0})
    import torch

    torch.manual_seed(0)
    return PPO(pcfg, OBS, ACT, 1, 1000, "cpu"), SAC(scfg, OBS, ACT, 1, 1000, "cpu")


def obs_batch(n=5, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 6)).astype(np.float32)


def test_weight_one_is_first_agent_exactly_and_zero_the_second():
    ppo, sac = real_agents()
    x = obs_batch()
    a1 = ppo.act(x, deterministic=True).actions
    a2 = sac.act(x, deterministic=True).actions
    assert not np.allclose(a1, a2)  # otherwise the test could not fail
    ens = Ensemble([ppo, sac], [1.0, 0.0])
    assert ens.hparam_values() == {"a": 1.0}
    np.testing.assert_array_equal(ens.act(x, deterministic=True).actions, a1)
    ens.set_hparam("a", 0.0)
    np.testing.assert_array_equal(ens.act(x, deterministic=True).actions, a2)
    ens.set_hparam("a", 0.3)
    np.testing.assert_allclose(ens.act(x, deterministic=True).actions, 0.3 * a1 + 0.7 * a2,
                               rtol=1e-6)
    assert isinstance(ens, Agent)


class Const:
    """A stub agent that always answers the same action and counts its state."""

    name = "const"
    config = None

    def __init__(self, value, discrete=False):
        self.value, self.discrete = value, discrete

    def initial_state(self, n):
        return 0

    def act(self, obs, state=None, episode_start=None, deterministic=False):
        n = len(obs)
        if self.discrete:
            return ActResult(np.full(n, self.value, dtype=np.int64), (state or 0) + 1)
        return ActResult(np.full((n, 1), self.value, dtype=np.float32), (state or 0) + 1)

    def state_dict(self):
        return {"v": self.value}

    def load_state_dict(self, s):
        self.value = s["v"]


def test_three_members_normalised_weights_and_state_tuple():
    ens = Ensemble([Const(1.0), Const(-1.0), Const(0.5)], [2.0, 1.0, 1.0])
    assert set(ens.hparam_schedules()) == {"w0", "w1", "w2"}
    res = ens.act(obs_batch(2), ens.initial_state(2))
    # (2 * 1 - 1 + 0.5) / 4 = 0.375
    np.testing.assert_allclose(res.actions, 0.375)
    assert res.state == (1, 1, 1)
    ens.set_hparam("w0", 0.0)
    ens.set_hparam("w1", 0.0)
    np.testing.assert_array_equal(ens.act(obs_batch(2)).actions, np.full((2, 1), 0.5, np.float32))
    ens.set_hparam("w2", 0.0)
    with pytest.raises(EnsembleError, match="all are 0"):
        ens.act(obs_batch(2))


def test_discrete_weighted_vote():
    ens = Ensemble([Const(2, True), Const(0, True), Const(0, True)], [0.5, 0.3, 0.2])
    # 0.5 for action 2 against 0.3 + 0.2 for action 0: a tie goes to member 0's action
    np.testing.assert_array_equal(ens.act(obs_batch(3)).actions, [2, 2, 2])
    ens.set_hparam("w0", 0.4)  # 0.4 < 0.5
    np.testing.assert_array_equal(ens.act(obs_batch(3)).actions, [0, 0, 0])
    two = Ensemble([Const(2, True), Const(0, True)], [1.0, 0.0])
    np.testing.assert_array_equal(two.act(obs_batch(2)).actions, [2, 2])
    two.set_hparam("a", 0.0)
    np.testing.assert_array_equal(two.act(obs_batch(2)).actions, [0, 0])


def test_obs_transforms_per_member():
    seen = []

    class Spy(Const):
        def act(self, obs, state=None, episode_start=None, deterministic=False):
            seen.append(np.array(obs))
            return super().act(obs, state)

    ens = Ensemble([Spy(0.0), Spy(0.0)], None, [lambda o: o * 2, None])
    x = obs_batch(1)
    ens.act(x)
    np.testing.assert_array_equal(seen[0], x * 2)
    np.testing.assert_array_equal(seen[1], x)
    assert ens.hparam_values() == {"a": 0.5}


def test_errors_and_state_dict():
    with pytest.raises(EnsembleError, match="two or more"):
        Ensemble([Const(0.0)])
    with pytest.raises(EnsembleError, match="weights"):
        Ensemble([Const(0.0), Const(1.0)], [1.0])
    with pytest.raises(EnsembleError, match="weights"):
        Ensemble([Const(0.0), Const(1.0)], [-1.0, 2.0])
    ens = Ensemble([Const(0.0), Const(1.0)])
    with pytest.raises(HParamError, match="a"):
        ens.set_hparam("a", 1.5)
    assert ens.hparam_values()["a"] == 0.5
    with pytest.raises(EnsembleError, match="only acts"):
        ens.observe(None)
    with pytest.raises(EnsembleError, match="only acts"):
        ens.update()
    ens.set_hparam("a", 0.25)
    state = ens.state_dict()
    other = Ensemble([Const(9.0), Const(9.0)])
    other.load_state_dict(state)
    assert other.hparam_values()["a"] == 0.25
    assert [m.value for m in other.members] == [0.0, 1.0]


def test_schedule_of_a_advances():
    ens = Ensemble([Const(1.0), Const(0.0)])
    ens.hp.total_steps = 100
    ens.set_hparam("a", "lin:1->0")
    ens.advance(50)
    np.testing.assert_allclose(ens.act(obs_batch(1)).actions, 0.5)
