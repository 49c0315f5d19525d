"""SAC's closed-form gradients (rlcore/sac_hand.py) against autograd on rlcore/losses/sac.py."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlcore.agent import Transition
from rlcore.sac import SAC, SACConfig

OBS = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
ACT = gym.spaces.Box(np.array([-2.0, 0.0], np.float32), np.array([2.0, 1.0], np.float32))


def _pair(activation: str, **kw) -> tuple[SAC, SAC]:
    """Two agents with the same weights and replay contents: closed form and autograd."""
    agents = []
    for hand in (True, False):
        torch.manual_seed(0)
        cfg = SACConfig(hidden=(16, 12), batch_size=32, learning_starts=0, gradient_steps=1,
                        activation=activation, hand_gradients=hand, **kw)
        agents.append(SAC(cfg, OBS, ACT, 2, total_steps=1000))
    hand, auto = agents
    assert hand.hand is not None and auto.hand is None
    with torch.no_grad():  # a wide log-std head: some rows above the clamp's upper bound 2
        for a in agents:  # (not near -20: there autograd's z terms of size 1/sigma = e^20
            a.actor.log_std.weight.mul_(8.0)  # cancel only to float rounding, far above the
            a.actor.log_std.bias.fill_(1.5)  # gradient; the closed form drops them exactly)
    rng = np.random.default_rng(1)
    for i in range(40):
        obs = rng.normal(size=(2, 3)).astype(np.float32)
        act = rng.uniform(ACT.low, ACT.high, size=(2, 2)).astype(np.float32)
        tr = Transition(obs, act, rng.normal(size=2).astype(np.float32),
                        rng.normal(size=(2, 3)).astype(np.float32), rng.random(2) < 0.2,
                        np.zeros(2, bool), np.ones(2, bool), np.zeros(2, bool), step=2 * i + 2)
        for a in agents:
            a.observe(tr)
    return hand, auto


def _captured(agent: SAC) -> dict[str, list[torch.Tensor]]:
    """Run one update, keeping each network's gradients as its optimiser sees them."""
    seen: dict[str, list[torch.Tensor]] = {}
    for name, opt in (("critic", agent.critic_opt), ("actor", agent.actor_opt),
                      ("alpha", agent.alpha_opt)):
        def step(*a, _opt=opt, _name=name, _orig=opt.step, **k):
            seen[_name] = [p.grad.clone() for g in _opt.param_groups for p in g["params"]]
            return _orig(*a, **k)
        opt.step = step
    torch.manual_seed(5)
    seen["metrics"] = agent.update()
    return seen


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_gradients_equal_autograd(activation: str) -> None:
    hand, auto = _pair(activation)
    raw = auto.actor.log_std(auto.actor.encoder(torch.from_numpy(auto.replay.obs[:40, 0])))
    assert (raw > 2.0).any() and (raw < 2.0).any()  # the clamp's zero gradient is exercised
    assert (raw > -8.0).all()
    for _ in range(3):  # three updates: the later ones on parameters moved by flat Adam
        gh, ga = _captured(hand), _captured(auto)
        for name in ("critic", "actor", "alpha"):
            assert len(gh[name]) == len(ga[name])
            for x, y in zip(gh[name], ga[name]):
                scale = float(y.abs().max()) + 1e-6
                torch.testing.assert_close(x, y, rtol=1e-4, atol=2e-5 * scale)
        for k, v in ga["metrics"].items():
            assert gh["metrics"][k] == pytest.approx(v, rel=1e-4, abs=1e-5), k
        for p, q in zip(hand.actor.parameters(), auto.actor.parameters()):
            torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)


def test_fixed_alpha_and_gradient_isolation() -> None:
    """Without autotuning alpha stays put; the actor step adds nothing to the critics' grads."""
    hand, auto = _pair("relu", autotune=False, alpha=0.3)
    gh, ga = _captured(hand), _captured(auto)
    assert "alpha" not in gh and "losses/alpha" not in gh["metrics"]
    assert hand.alpha == pytest.approx(0.3)
    for x, y in zip(gh["actor"], ga["actor"]):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=2e-5 * (float(y.abs().max()) + 1e-6))
    critic_grads = [p.grad.clone() for p in hand.critic.parameters()]
    hand.hand.actor_gradients(hand.replay.obs[:8, 0], 0.3)
    for before, p in zip(critic_grads, hand.critic.parameters()):
        torch.testing.assert_close(p.grad, before, rtol=0, atol=0)


def test_acting_matches_the_module() -> None:
    hand, auto = _pair("relu")
    obs = np.random.default_rng(2).normal(size=(5, 3)).astype(np.float32)
    hand.clock = auto.clock = 10_000
    np.testing.assert_allclose(hand.act(obs, deterministic=True).actions,
                               auto.act(obs, deterministic=True).actions, rtol=1e-5, atol=1e-6)
    torch.manual_seed(7)
    sampled = hand.act(obs).actions
    torch.manual_seed(7)
    np.testing.assert_allclose(sampled, auto.act(obs).actions, rtol=1e-5, atol=1e-5)
    assert np.all(sampled >= ACT.low) and np.all(sampled <= ACT.high)


def test_closed_form_only_where_supported() -> None:
    assert SAC.hand_form(SACConfig(), "cpu")
    assert not SAC.hand_form(SACConfig(hand_gradients=False), "cpu")
    assert not SAC.hand_form(SACConfig(net="resmlp"), "cpu")
    assert not SAC.hand_form(SACConfig(activation="elu"), "cpu")
    assert not SAC.hand_form(SACConfig(), "cuda")
    discrete = SAC(SACConfig(hidden=(8,)), OBS, gym.spaces.Discrete(3), 1)
    assert discrete.hand is None  # discrete actions: autograd


def test_products_run_on_the_runs_torch_threads() -> None:
    """SAC's closed form gives NumPy's BLAS the run's torch_threads (autograd's products would
    use them); PPO's, A2C's and DQN's set it back to one."""
    import os

    from threadpoolctl import threadpool_info

    from rlcore.handgrad import one_blas_thread

    def numpy_blas_threads() -> set[int]:
        blas = [i for i in threadpool_info() if i["user_api"] == "blas"]
        own = [i for i in blas if "numpy" in os.path.basename(os.path.dirname(i["filepath"]))]
        return {i["num_threads"] for i in own or blas}

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        _pair("relu")
        assert numpy_blas_threads() == {2}
        one_blas_thread()
        assert numpy_blas_threads() == {1}
    finally:
        torch.set_num_threads(before)
        one_blas_thread()
