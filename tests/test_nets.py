"""Networks: residual LayerNorm MLP structure and init, LSTM resets, recurrent minibatches."""

from __future__ import annotations

import copy
import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

from rlcore.a2c import A2C, A2CConfig
from rlcore.agent import Transition
from rlcore.nets import LSTMEncoder, ResidualMLP, make_encoder, mlp
from rlcore.ppo import PPO, PPOConfig


def _orthogonal_gain(w: torch.Tensor) -> float:
    """The gain g of an orthogonally initialised matrix: W W^T = g^2 I or W^T W = g^2 I."""
    w = w.detach().double()
    gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
    g2 = float(gram.diagonal().mean())
    torch.testing.assert_close(gram, g2 * torch.eye(gram.shape[0], dtype=torch.float64),
                               atol=1e-5, rtol=1e-5)
    return math.sqrt(g2)


def test_residual_mlp_default_widths_and_shapes():
    net = ResidualMLP(10)
    assert [b.fc.out_features for b in net.blocks] == [128, 256, 256, 128]
    assert [b.fc.in_features for b in net.blocks] == [10, 128, 256, 256]
    assert net.out_dim == 128
    assert net(torch.randn(7, 10)).shape == (7, 128)
    assert make_encoder("resmlp", 5, (32, 32)).out_dim == 32


def test_projection_only_where_widths_change():
    net = ResidualMLP(128)  # 128->128 (identity), 128->256, 256->256 (identity), 256->128
    kinds = [type(b.proj) for b in net.blocks]
    assert kinds == [nn.Identity, nn.Linear, nn.Identity, nn.Linear]
    assert (net.blocks[1].proj.in_features, net.blocks[1].proj.out_features) == (128, 256)


def test_block_is_layernorm_after_relu_plus_skip():
    torch.manual_seed(0)
    net = ResidualMLP(6, (8, 8))
    with torch.no_grad():  # non-trivial LayerNorm affine parameters
        for b in net.blocks:
            b.norm.weight.uniform_(0.5, 1.5)
            b.norm.bias.uniform_(-0.5, 0.5)
    x = torch.randn(5, 6)
    seen = []
    for b in net.blocks:
        b.norm.register_forward_hook(lambda m, inp, out: seen.append(inp[0].detach()))
    y = net(x)
    # the LayerNorm input is a ReLU output: non-negative, and exactly zero somewhere
    assert all(float(s.min()) == 0.0 for s in seen)
    h = x
    for b in net.blocks:  # reference: y = LN(ReLU(W h + b)) + P h (docs/networks.md, eq. (1))
        z = torch.relu(h @ b.fc.weight.T + b.fc.bias)
        mu, var = z.mean(-1, keepdim=True), z.var(-1, unbiased=False, keepdim=True)
        ln = (z - mu) / torch.sqrt(var + b.norm.eps) * b.norm.weight + b.norm.bias
        skip = h if isinstance(b.proj, nn.Identity) else h @ b.proj.weight.T + b.proj.bias
        h = ln + skip
    torch.testing.assert_close(y, h)


def test_orthogonal_init_gains():
    net = ResidualMLP(10)
    for b in net.blocks:
        assert _orthogonal_gain(b.fc.weight) == pytest.approx(math.sqrt(2.0), rel=1e-5)
        assert float(b.fc.bias.detach().abs().max()) == 0.0
        if isinstance(b.proj, nn.Linear):
            assert _orthogonal_gain(b.proj.weight) == pytest.approx(1.0, rel=1e-5)
        assert torch.equal(b.norm.weight, torch.ones_like(b.norm.weight))
    plain = mlp(4, (64, 64), out_dim=2, out_gain=0.01)
    assert _orthogonal_gain(plain[0].weight) == pytest.approx(math.sqrt(2.0), rel=1e-5)
    assert _orthogonal_gain(plain[-1].weight) == pytest.approx(0.01, rel=1e-5)
    agent = PPO(PPOConfig(net="resmlp"), gym.spaces.Box(-1, 1, (4,)), gym.spaces.Discrete(3), 1)
    assert _orthogonal_gain(agent.policy.pi_head.fc.weight) == pytest.approx(0.01, rel=1e-5)
    assert _orthogonal_gain(agent.policy.v_head.fc.weight) == pytest.approx(1.0, rel=1e-5)
    lstm = LSTMEncoder(5, 16).lstm
    for name, p in lstm.named_parameters():
        if "weight" in name:
            assert _orthogonal_gain(p) == pytest.approx(1.0, rel=1e-5)
        else:
            assert float(p.detach().abs().max()) == 0.0


def _lstm_ref(enc: LSTMEncoder, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor):
    """Reference: torch's LSTM over one sequence (T, 1, D) from (h, c) each (1, 1, H), then the
    encoder's LayerNorm."""
    out, (h, c) = enc.lstm(x, (h, c))
    return enc.norm(out), (h, c)


def test_lstm_state_is_reset_at_episode_starts():
    torch.manual_seed(0)
    enc = LSTMEncoder(3, 8)
    T, B = 7, 3
    x = torch.randn(T, B, 3)
    h0, c0 = torch.randn(1, B, 8), torch.randn(1, B, 8)
    starts = torch.zeros(T, B, dtype=torch.bool)
    starts[4, 0] = True  # env 0: a new episode at t = 4
    starts[2, 1] = True  # env 1: at t = 2 ...
    starts[5, 1] = True  # ... and at t = 5; env 2: no reset
    with torch.no_grad():
        out, (hT, cT) = enc(x, (h0, c0), starts)
        zero = torch.zeros(1, 1, 8)
        pieces = {0: [(0, 4, False), (4, 7, True)], 1: [(0, 2, False), (2, 5, True),
                                                         (5, 7, True)], 2: [(0, 7, False)]}
        for b, segs in pieces.items():
            for t0, t1, fresh in segs:  # each piece alone, from zero state if it starts an episode
                h, c = (zero, zero) if fresh else (h0[:, b : b + 1], c0[:, b : b + 1])
                ref, (rh, rc) = _lstm_ref(enc, x[t0:t1, b : b + 1], h, c)
                torch.testing.assert_close(out[t0:t1, b : b + 1], ref)
            torch.testing.assert_close(hT[:, b : b + 1], rh)
            torch.testing.assert_close(cT[:, b : b + 1], rc)
    # the reset matters: without it, env 0's second episode sees the first one
    with torch.no_grad():
        out_noreset, _ = enc(x, (h0, c0), torch.zeros(T, B, dtype=torch.bool))
    assert float((out_noreset[4:, 0] - out[4:, 0]).abs().max()) > 1e-4


def _fill_recurrent(agent, obs: np.ndarray, start_t: int) -> None:
    """Fill a (T, 2) rollout: env 0 terminates at start_t - 2 and restarts at start_t."""
    T, n = obs.shape[:2]
    state = agent.initial_state(n)
    start, autoreset = np.ones(n, bool), np.zeros(n, bool)
    rng = np.random.default_rng(0)
    for t in range(T):
        res = agent.act(obs[t], state, start)
        term = np.zeros(n, bool)
        term[0] = t == start_t - 2
        nxt = obs[t + 1] if t + 1 < T else obs[t]
        agent.observe(Transition(obs[t], res.actions, rng.normal(size=n), nxt, term,
                                 np.zeros(n, bool), ~autoreset, start, state, res.state,
                                 res.extras))
        start, autoreset = autoreset, term
        state = res.state


def _first_update_log_probs(agent) -> torch.Tensor:
    """Run update() and return the log-probs of its first minibatch (before any step)."""
    seen: list[torch.Tensor] = []
    inner = agent.policy.log_prob_entropy

    def spy(params, actions):
        logp, ent = inner(params, actions)
        seen.append(logp.detach().clone())
        return logp, ent

    agent.policy.log_prob_entropy = spy
    agent.update()
    return seen[0]


@pytest.mark.parametrize("algo", ["ppo", "a2c"])
def test_recurrent_training_never_mixes_episodes(algo):
    T, n, start_t = 10, 2, 6
    obs_space, act_space = gym.spaces.Box(-5, 5, (3,)), gym.spaces.Discrete(2)

    def make():
        torch.manual_seed(0)
        if algo == "ppo":
            return PPO(PPOConfig(n_steps=T, batch_size=T * n, n_epochs=1, net="lstm",
                                 lstm_hidden=16), obs_space, act_space, n)
        return A2C(A2CConfig(n_steps=T, net="lstm", lstm_hidden=16), obs_space, act_space, n)

    obs = np.random.default_rng(1).normal(size=(T, n, 3)).astype(np.float32)
    a, b = make(), make()
    _fill_recurrent(a, obs, start_t)
    b.buffer = copy.deepcopy(a.buffer)  # same actions and stored states in both
    assert a.buffer.episode_start[start_t, 0] and not a.buffer.valid[start_t - 1, 0]
    b.buffer.obs[:start_t, 0] += 3.0  # perturb env 0's earlier episode only
    torch.manual_seed(5)
    la = _first_update_log_probs(a)
    torch.manual_seed(5)  # same minibatch order in both
    lb = _first_update_log_probs(b)
    assert la.shape == (T, n)
    # after the episode start nothing changes; before it, the perturbation shows (test can fail)
    torch.testing.assert_close(la[start_t:], lb[start_t:])
    assert float((la[:start_t] - lb[:start_t]).abs().max()) > 1e-4


@pytest.mark.parametrize("discrete", [True, False])
def test_one_copy_to_the_host_gives_the_same_arrays(discrete):
    """Acting on a GPU packs actions, log-probabilities and values into one device-to-host copy;
    it must give what three separate copies give (run here on CPU tensors)."""
    from rlcore.actor_critic import to_host

    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 5, (6,), generator=g) if discrete else torch.randn(6, 2, 3, generator=g)
    logp, v = torch.randn(6, generator=g), torch.randn(6, generator=g)
    for got, want in zip(to_host(a, logp, v, one_copy=True), to_host(a, logp, v, one_copy=False)):
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)
