"""The closed-form gradients of rlcore/handgrad.py against autograd over rlcore/losses.

Two agents built from the same seed (same weights), one with ``hand_gradients`` and one without,
get the same rollout; every parameter's gradient and every logged loss term must agree to float
rounding, for discrete and Gaussian policies, tanh and ReLU, PPO (with and without value
clipping, entropy bonus, advantage standardisation) and A2C.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlcore.a2c import A2C, A2CConfig
from rlcore.dqn import DQN, DQNConfig
from rlcore.handgrad import HandMLP
from rlcore.on_policy import OnPolicyLossSpec
from rlcore.ppo import PPO, PPOConfig

T, N = 16, 8


def _spaces(kind: str):
    obs = gym.spaces.Box(-np.inf, np.inf, (5,), np.float32)
    act = gym.spaces.Discrete(3) if kind == "discrete" else gym.spaces.Box(-1, 1, (2,), np.float32)
    return obs, act


def _pair(kind: str, activation: str, cls=PPO, cfg_cls=PPOConfig, **cfg):
    """Two agents with identical weights and rollouts: hand gradients on, and off."""
    obs_space, act_space = _spaces(kind)
    agents = []
    for hand in (True, False):
        torch.manual_seed(3)
        agents.append(cls(cfg_cls(n_steps=T, activation=activation, hand_gradients=hand,
                                  log_std_init=-0.3, **cfg), obs_space, act_space, N))
    hand, auto = agents
    assert hand.hand is not None and auto.hand is None
    rng = np.random.default_rng(7)
    src = hand.buffer
    src.obs[:] = rng.standard_normal(src.obs.shape)
    if kind == "discrete":
        src.actions[:] = rng.integers(0, 3, src.actions.shape)
    else:
        src.actions[:] = rng.standard_normal(src.actions.shape)
    src.log_probs[:] = rng.normal(-1.0, 0.3, src.log_probs.shape)
    src.values[:] = rng.standard_normal(src.values.shape)
    src.advantages[:] = rng.normal(0.4, 1.5, src.advantages.shape)
    src.returns[:] = rng.standard_normal(src.returns.shape)
    src.valid[:] = True
    for name in ("obs", "actions", "log_probs", "values", "advantages", "returns", "valid"):
        getattr(auto.buffer, name)[:] = getattr(src, name)
    return hand, auto


def _log_probs_at_init(agent) -> None:
    """Store the current policy's log-probabilities as the rollout's, plus noise, so that PPO's
    ratios sit on both sides of the clip range."""
    cols = agent.columns()
    with torch.no_grad():
        z, _, _ = agent.policy.features(cols["obs"])
        logp, _ = agent.policy.log_prob_entropy(agent.policy.dist_params(z), cols["actions"])
    noise = np.random.default_rng(1).normal(0.0, 0.25, agent.buffer.log_probs.shape)
    agent.buffer.log_probs[:] = logp.numpy().reshape(T, N) + noise
    agent._cols = None


def _assert_same_gradients(hand, auto, spec, sel):
    th, ta = hand.gradients(spec, sel), auto.gradients(spec, sel)
    assert th.keys() == ta.keys()
    for k in th:
        assert float(th[k]) == pytest.approx(float(ta[k]), rel=1e-5, abs=1e-6), k
    for (name, p), q in zip(hand.policy.named_parameters(), auto.policy.parameters()):
        assert p.grad is not None and q.grad is not None, name
        scale = float(q.grad.abs().max()) + 1e-8
        assert float((p.grad - q.grad).abs().max()) <= 1e-5 * scale + 1e-9, name


@pytest.mark.parametrize("kind", ["discrete", "continuous"])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("clip_vf,ent_coef,normalize", [(None, 0.0, True), (0.2, 0.01, True),
                                                        (None, 0.05, False)])
def test_ppo_gradients_equal_autograd(kind, activation, clip_vf, ent_coef, normalize):
    hand, auto = _pair(kind, activation, normalize_advantage=normalize)
    for ag in (hand, auto):
        _log_probs_at_init(ag)
    spec = OnPolicyLossSpec(0.2, clip_vf, 0.5, ent_coef, normalize)
    clipped = hand.gradients(spec, torch.arange(T * N))["clip_fraction"]
    assert 0.05 < float(clipped) < 0.95  # both branches of the min are exercised
    sel = torch.randperm(T * N)[:64]
    _assert_same_gradients(hand, auto, spec, sel)


@pytest.mark.parametrize("kind", ["discrete", "continuous"])
def test_a2c_gradients_equal_autograd(kind):
    hand, auto = _pair(kind, "tanh", A2C, A2CConfig)
    spec = OnPolicyLossSpec(None, None, 1.0, 0.01, False)
    _assert_same_gradients(hand, auto, spec, torch.arange(T * N))


@pytest.mark.parametrize("kind", ["discrete", "continuous"])
def test_one_ppo_update_moves_the_weights_as_autograd_does(kind):
    """A whole update (epochs, shuffles, clip, Adam) lands on the same weights either way."""
    hand, auto = _pair(kind, "tanh", batch_size=32, n_epochs=3, ent_coef=0.01)
    for ag in (hand, auto):
        _log_probs_at_init(ag)
        ag.buffer.pos = T  # a full rollout, ready to train on
    before = [p.detach().clone() for p in hand.policy.parameters()]
    torch.manual_seed(11)
    out_h = hand.update()
    torch.manual_seed(11)
    out_a = auto.update()
    for k in ("losses/policy", "losses/value", "losses/entropy", "losses/approx_kl"):
        assert out_h[k] == pytest.approx(out_a[k], rel=1e-4, abs=1e-6), k
    for p, q, p0 in zip(hand.policy.parameters(), auto.policy.parameters(), before):
        assert not torch.equal(p, p0)  # the update moved it
        assert torch.allclose(p, q, rtol=1e-4, atol=1e-6)


def test_other_networks_use_autograd():
    obs_space, act_space = _spaces("discrete")
    for cfg in (PPOConfig(net="resmlp"), PPOConfig(net="lstm", lstm_hidden=8),
                PPOConfig(activation="gelu"), PPOConfig(hand_gradients=False)):
        assert PPO(cfg, obs_space, act_space, 2).hand is None, cfg


@pytest.mark.parametrize("kind", ["discrete", "continuous"])
def test_gradients_are_views_of_one_buffer_also_in_a_deep_copy(kind):
    """Every parameter's .grad tiles one flat buffer (the clip reads it at once); a deep copy
    of the agent writes into its own buffer and leaves the original's weights alone."""
    import copy

    hand, _ = _pair(kind, "tanh")
    spec = OnPolicyLossSpec(0.2, None, 0.5, 0.01, True)
    hand.gradients(spec, torch.arange(T * N))
    grads = [p.grad for p in hand.policy.parameters()]
    base = grads[0]._base
    assert base is not None and all(g._base is base for g in grads)
    assert sum(g.numel() for g in grads) == base.numel()
    before = [p.detach().clone() for p in hand.policy.parameters()]
    cand = copy.deepcopy(hand)
    cand.gradients(spec, torch.arange(T * N))
    cgrads = [p.grad for p in cand.policy.parameters()]
    assert cgrads[0]._base is not base and all(g._base is cgrads[0]._base for g in cgrads)
    for g, cg in zip(grads, cgrads):
        assert torch.allclose(g, cg, atol=1e-7)
    cand.optimizer.step()
    assert all(torch.equal(p, q) for p, q in zip(before, hand.policy.parameters()))
    assert not all(torch.equal(p, q) for p, q in zip(before, cand.policy.parameters()))


def test_closed_form_is_for_the_cpu_only():
    assert HandMLP.supports("mlp", "tanh", "cpu")
    assert not HandMLP.supports("mlp", "tanh", "cuda")  # autograd on a GPU
    assert not HandMLP.supports("resmlp", "tanh", "cpu")


def test_numpy_blas_runs_on_one_thread():
    """NumPy's own BLAS (``numpy.libs`` in a wheel install; every BLAS where none is NumPy's by
    its folder), the one the closed form's products call. A BLAS another library loads later
    (SciPy's, through Optuna in the tuning tests) is not limited: checking it made the test
    depend on which tests ran first in its worker."""
    import os

    from threadpoolctl import threadpool_info

    _pair("discrete", "tanh")
    blas = [i for i in threadpool_info() if i["user_api"] == "blas"]
    own = [i for i in blas if "numpy" in os.path.basename(os.path.dirname(i["filepath"]))]
    assert (own or blas) and all(i["num_threads"] == 1 for i in own or blas), blas


@pytest.mark.parametrize("kind", ["discrete", "continuous"])
def test_acting_mode_equals_the_module_forward(kind):
    hand, _ = _pair(kind, "tanh")
    obs = np.random.default_rng(0).standard_normal((32, 5)).astype(np.float32)
    res = hand.act(obs, deterministic=True)
    with torch.no_grad():
        z_pi, z_v, _ = hand.policy.features(torch.from_numpy(obs))
        params = hand.policy.dist_params(z_pi)
        values = hand.policy.value(z_v)
        mode = params.argmax(1) if kind == "discrete" else params[0]
        logp, _ = hand.policy.log_prob_entropy(params, mode)
    np.testing.assert_allclose(res.extras["values"], values.numpy(), atol=1e-5)
    if kind == "discrete":
        np.testing.assert_array_equal(res.actions, mode.numpy())
    else:
        np.testing.assert_allclose(res.extras["raw_actions"], mode.numpy(), atol=1e-5)
        np.testing.assert_array_equal(res.actions, np.clip(res.extras["raw_actions"], -1, 1))
    np.testing.assert_allclose(res.extras["log_probs"], logp.numpy(), atol=1e-5)


@pytest.mark.parametrize("kind", ["discrete", "continuous"])
def test_acting_samples_pi_and_reports_its_log_probability(kind):
    """Samples follow the module's distribution (frequencies within 5 standard errors, or
    standardised noise with mean 0 and deviation 1) and carry its log-probabilities."""
    hand, _ = _pair(kind, "tanh")
    n = 20_000
    obs = np.repeat(np.random.default_rng(1).standard_normal((1, 5)).astype(np.float32), n, 0)
    torch.manual_seed(0)
    res = hand.act(obs)
    raw = torch.from_numpy(np.asarray(res.extras["raw_actions"]))
    with torch.no_grad():
        params = hand.policy.dist_params(hand.policy.features(torch.from_numpy(obs))[0])
        logp, _ = hand.policy.log_prob_entropy(params, raw)
    np.testing.assert_allclose(res.extras["log_probs"], logp.numpy(), atol=1e-4)
    if kind == "discrete":
        p = torch.softmax(params[0], 0).numpy()
        freq = np.bincount(res.actions, minlength=3) / n
        assert np.all(np.abs(freq - p) <= 5 * np.sqrt(p * (1 - p) / n) + 1e-9)
    else:
        mean, log_std = params[0][0].numpy(), params[1][0].detach().numpy()
        eps = (raw.numpy() - mean) / np.exp(log_std)
        assert np.all(np.abs(eps.mean(0)) < 5 / np.sqrt(n))
        assert np.all(np.abs(eps.std(0) - 1.0) < 0.03)


@pytest.mark.parametrize("loss,per,double,activation", [("huber", True, True, "relu"),
                                                        ("mse", False, False, "tanh"),
                                                        ("huber", False, True, "tanh")])
def test_dqn_gradients_equal_autograd(loss, per, double, activation):
    """DQN's closed-form TD gradient (eq. (9)) against autograd over dqn_td_loss, on a batch
    whose TD errors fall on both sides of the Huber threshold."""
    obs_space = gym.spaces.Box(-np.inf, np.inf, (5,), np.float32)
    agents = []
    for hand in (True, False):
        torch.manual_seed(5)
        agents.append(DQN(DQNConfig(loss=loss, per=per, double=double, activation=activation,
                                    hidden=(32, 32), hand_gradients=hand),
                          obs_space, gym.spaces.Discrete(4), 1))
    hand, auto = agents
    assert hand.hand is not None and auto.hand is None
    g = torch.Generator().manual_seed(2)
    b = 64
    obs, nobs = torch.randn(b, 5, generator=g), torch.randn(b, 5, generator=g)
    act = torch.randint(0, 4, (b,), generator=g)
    rew = torch.randn(b, generator=g) * 3.0
    term = (torch.rand(b, generator=g) < 0.2).float()
    disc = torch.full((b,), 0.99)
    w = torch.rand(b, generator=g) if per else None
    loss_h, info_h = hand._hand_gradients(*(None if t is None else t.numpy()
                                            for t in (obs, nobs, act, rew, term, disc, w)))
    loss_a, info_a = auto._autograd_gradients(obs, nobs, act, rew, term, disc, w)
    td = info_a["td_abs"]
    assert bool((td > 1.0).any()) and bool((td < 1.0).any())
    assert float(loss_h) == pytest.approx(float(loss_a), rel=1e-6)
    assert float(info_h["q_mean"]) == pytest.approx(float(info_a["q_mean"]), rel=1e-5, abs=1e-7)
    assert np.allclose(info_h["td_abs"], td.numpy(), atol=1e-6)
    for p, q in zip(hand.q.parameters(), auto.q.parameters()):
        scale = float(q.grad.abs().max()) + 1e-8
        assert float((p.grad - q.grad).abs().max()) <= 1e-5 * scale + 1e-9


def test_dqn_dueling_uses_autograd():
    obs_space = gym.spaces.Box(-np.inf, np.inf, (5,), np.float32)
    assert DQN(DQNConfig(dueling=True), obs_space, gym.spaces.Discrete(3), 1).hand is None


@pytest.mark.parametrize("overrides, threads", [
    ({"algo": "ppo"}, 1), ({"algo": "a2c"}, 1), ({"algo": "dqn"}, 1),
    ({"algo": "a2c", "device": "auto"}, 1),
    ({"algo": "sac"}, 4), ({"algo": "ppo", "net": "lstm"}, 4), ({"algo": "dqn", "dueling": True}, 4),
    ({"algo": "ppo", "hand_gradients": False}, 4), ({"algo": "ppo", "device": "cuda"}, 4),
    ({"algo": "ppo", "torch_threads": 3}, 3),
])
def test_default_threads_are_one_where_the_closed_form_runs(monkeypatch, overrides, threads):
    """On 16 usable cores the default is half, at most 4, except for the closed form, whose
    products run in NumPy on one BLAS thread (torch's threads would only spin); a value given
    is kept."""
    import os

    import torch

    from rlcore.config import resolve_configs

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    run, _ = resolve_configs(overrides)
    assert run.torch_threads == threads


@pytest.mark.parametrize("shape, bias_shape", [((3, 5), (5,)), ((64, 256), (256,)),
                                               ((2, 256, 64), (2, 1, 64))])
@pytest.mark.parametrize("tanh", [False, True])
def test_bias_and_activation_give_numpys_numbers_on_either_path(shape, bias_shape, tanh):
    """bias_activate runs large ReLU layers through torch's in-place kernels: every bit, the
    sign of zero included, equals NumPy's h + b followed by the activation."""
    from rlcore.handgrad import bias_activate

    rng = np.random.default_rng(0)
    h = rng.standard_normal(shape).astype(np.float32)
    h.reshape(-1)[::5] = -0.0
    b = rng.standard_normal(bias_shape).astype(np.float32)
    expected = h + b
    expected = np.tanh(expected) if tanh else np.maximum(expected, 0.0)
    bias_activate(h, b, tanh)
    np.testing.assert_array_equal(h, expected)
    np.testing.assert_array_equal(np.signbit(h), np.signbit(expected))
