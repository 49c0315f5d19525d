"""DQN agent: spaces, double-DQN step, PER wiring, hyperparameter changes, checkpoints, learning."""

from __future__ import annotations

import io

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

from rlcore.agent import Transition
from rlcore.dqn import DQN, DQNConfig, QNetwork
from rlcore.hparams import HParamError
from rlcore.per import PrioritizedReplayBuffer
from rlcore.replay import ReplayBuffer

BOX = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
DISC = gym.spaces.Discrete(3)


def _agent(**kw) -> DQN:
    torch.manual_seed(0)
    # one gradient step per update (the default -1 makes one per environment): the tests
    # below check what a single step does
    kw = {"hidden": (16, 16), "batch_size": 8, "learning_starts": 0, "gradient_steps": 1, **kw}
    return DQN(DQNConfig(**kw), BOX, DISC, 2, total_steps=1000)


def _fill(agent: DQN, steps: int = 20, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        obs = rng.normal(size=(2, 4)).astype(np.float32)
        a = agent.act(obs).actions
        agent.observe(Transition(obs, a, rng.normal(size=2).astype(np.float32),
                                 rng.normal(size=(2, 4)).astype(np.float32),
                                 rng.random(2) < 0.1, np.zeros(2, bool), np.ones(2, bool),
                                 np.zeros(2, bool), step=agent.clock + 2))


def test_check_spaces_names_the_mismatch() -> None:
    with pytest.raises(ValueError, match="Discrete action space"):
        DQN.check_spaces(BOX, gym.spaces.Box(-1, 1, (2,)))
    with pytest.raises(ValueError, match="observation space"):
        DQN.check_spaces(gym.spaces.Discrete(2), DISC)
    with pytest.raises(ValueError, match="--frame-stack"):
        DQN(DQNConfig(net="lstm"), BOX, DISC, 1)
    with pytest.raises(ValueError, match="huber or mse"):
        DQN(DQNConfig(loss="l1"), BOX, DISC, 1)


def test_dueling_head_is_v_plus_centred_advantage() -> None:
    torch.manual_seed(0)
    net = QNetwork(4, 3, hidden=(8,), dueling=True)
    x = torch.randn(5, 4)
    z = net.encoder(x)
    a = net.head(z)
    torch.testing.assert_close(net(x), net.value(z) + a - a.mean(-1, keepdim=True))


def test_per_is_default_and_can_be_turned_off() -> None:
    assert isinstance(_agent().replay, PrioritizedReplayBuffer)
    plain = _agent(per=False)
    assert isinstance(plain.replay, ReplayBuffer)
    _fill(plain)
    m = plain.update()
    assert np.isfinite(m["losses/td"]) and "charts/per_beta" not in m


def test_update_refreshes_priorities_with_td_errors() -> None:
    agent = _agent(batch_size=16)
    _fill(agent, 20)
    assert np.all(agent.replay.p[agent.replay.buffer.valid_slots_mask()] == 1.0)
    m = agent.update()
    for k in ("losses/td", "charts/q_mean", "charts/epsilon", "charts/per_beta"):
        assert k in m and np.isfinite(m[k])
    stored = agent.replay.p[agent.replay.buffer.valid_slots_mask()]
    assert np.any(stored != 1.0)  # the sampled slots now hold |td| + eps


def test_update_matches_a_hand_written_double_dqn_step() -> None:
    """One gradient step equals the same step written out here with plain torch."""
    agent = _agent(per=False, batch_size=6, gamma=0.9, max_grad_norm=1e5)
    _fill(agent, 10)
    agent.replay.rng = np.random.default_rng(11)
    b = ReplayBuffer.sample(agent.replay, 6, 0.9, 1)
    agent.replay.rng = np.random.default_rng(11)
    q_ref = QNetwork(4, 3, hidden=(16, 16))
    q_ref.load_state_dict(agent.q.state_dict())
    opt = torch.optim.Adam(q_ref.parameters(), lr=agent.hp["learning_rate"])
    obs, nobs = torch.from_numpy(b.obs), torch.from_numpy(b.next_obs)
    with torch.no_grad():
        a_star = q_ref(nobs).argmax(1)                       # online selects
        v = agent.q_target(nobs)[torch.arange(6), a_star]    # target evaluates
        y = torch.from_numpy(b.rewards) + 0.9 * (1 - torch.from_numpy(b.terminated)) * v
    q = q_ref(obs)[torch.arange(6), torch.from_numpy(b.actions)]
    loss = torch.nn.functional.smooth_l1_loss(q, y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    m = agent.update()
    assert m["losses/td"] == pytest.approx(loss.item(), rel=1e-6)
    for p, r in zip(agent.q.parameters(), q_ref.parameters()):
        torch.testing.assert_close(p, r)


def test_epsilon_schedule_and_greedy_acting() -> None:
    agent = _agent(epsilon="lin:1.0->0.1@100", learning_starts=0)
    assert agent.hparam_values()["epsilon"] == 1.0
    agent.advance(50)
    assert agent.hparam_values()["epsilon"] == pytest.approx(0.55)
    agent.advance(500)
    assert agent.hparam_values()["epsilon"] == pytest.approx(0.1)
    obs = np.random.default_rng(0).normal(size=(2, 4)).astype(np.float32)
    greedy = agent.q(torch.from_numpy(obs)).argmax(-1).numpy()
    np.testing.assert_array_equal(agent.act(obs, deterministic=True).actions, greedy)
    agent.set_hparam("epsilon", 0.0)
    np.testing.assert_array_equal(agent.act(obs).actions, greedy)
    agent.set_hparam("epsilon", 1.0)
    acts = np.concatenate([agent.act(obs).actions for _ in range(300)])
    assert set(np.unique(acts)) == {0, 1, 2}


def test_default_epsilon_anneals_over_a_tenth_of_the_run() -> None:
    agent = DQN(DQNConfig(hidden=(8,)), BOX, DISC, 1, total_steps=10_000)
    assert agent.hparam_schedules()["epsilon"] == "lin:1.0->0.05@1000"


def test_set_hparam_side_effects() -> None:
    agent = _agent()
    _fill(agent, 10)
    agent.set_hparam("learning_rate", 5e-3)
    assert agent.optimizer.param_groups[0]["lr"] == 5e-3
    agent.set_hparam("per_alpha", 1.0)
    assert agent.replay.alpha == 1.0
    agent.set_hparam("per_beta", 0.7)
    assert agent.replay.beta == 0.7
    agent.set_hparam("per_eps", 0.01)
    assert agent.replay.eps == 0.01
    with pytest.raises(HParamError, match="per_alpha"):
        agent.set_hparam("per_alpha", 2.0)
    assert agent.replay.alpha == 1.0 and agent.hparam_values()["per_alpha"] == 1.0
    ch = agent.set_hparam("per_beta", "lin:0.5->1.0", "schedule")
    assert ch.field == "per_beta" and ch.old == 0.7 and ch.new == "lin:0.5->1.0"
    agent.advance(1000)
    assert agent.replay.beta == 1.0


def test_hard_and_polyak_target_updates() -> None:
    agent = _agent(target_update_interval=4, tau=1.0)
    with torch.no_grad():
        for p in agent.q.parameters():
            p.add_(1.0)
    _fill(agent, 1)  # 2 env steps: no target update yet
    assert not torch.equal(agent.q.head.weight, agent.q_target.head.weight)
    _fill(agent, 1)  # 4 env steps: hard copy
    assert torch.equal(agent.q.head.weight, agent.q_target.head.weight)
    agent.set_hparam("tau", 0.5)
    before = agent.q_target.head.weight.detach().clone()
    with torch.no_grad():
        agent.q.head.weight.add_(2.0)
    _fill(agent, 2)
    torch.testing.assert_close(agent.q_target.head.weight, before + 1.0)
    assert agent.q_target.head.weight.grad_fn is None


def test_state_dict_round_trip() -> None:
    a = _agent()
    _fill(a, 30)
    a.update()
    a.set_hparam("per_alpha", 0.9)
    buf = io.BytesIO()
    torch.save({"agent": a.state_dict(), "replay": a.replay_state_dict()}, buf)
    buf.seek(0)
    st = torch.load(buf, weights_only=False)
    b = _agent()
    b.load_state_dict(st["agent"])
    b.load_replay_state_dict(st["replay"])
    assert b.hparam_values() == a.hparam_values() and b.replay.alpha == 0.9
    assert (b.clock, b.n_updates) == (a.clock, a.n_updates) == (60, 1)
    obs = np.random.default_rng(1).normal(size=(2, 4)).astype(np.float32)
    np.testing.assert_array_equal(a.act(obs).actions, b.act(obs).actions)  # exploration RNG
    assert a.update() == b.update()
    for p, q in zip(a.q.parameters(), b.q.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


@pytest.mark.slow
def test_dqn_learns_cartpole(tmp_path) -> None:
    """A random policy averages about 22 on CartPole; DQN should pass 100 in 10k steps."""
    from rlcore.config import RunConfig
    from rlcore.training import train

    cfg = DQNConfig(learning_rate=2.3e-3, batch_size=64, learning_starts=1000,
                    target_update_interval=10, train_freq=64, gradient_steps=32,
                    epsilon="lin:1.0->0.04@3000", hidden=(64, 64))
    run = RunConfig(algo="dqn", env="CartPole-v1", steps=10_000, n_envs=1, seed=0,
                    progress=False, runs_dir=str(tmp_path), eval_episodes=10, log_every=1000,
                    torch_threads=1)
    summary, _ = train(run, cfg)
    assert summary["eval_return_mean"] > 100, summary


def test_documented_metrics_are_logged(tmp_path) -> None:
    """Every metric in the table of docs/algorithms/dqn.md appears in TensorBoard."""
    import re
    from pathlib import Path

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from rlcore.config import RunConfig
    from rlcore.training import train

    run = RunConfig(algo="dqn", env="CartPole-v1", steps=600, n_envs=2, seed=0, progress=False,
                    runs_dir=str(tmp_path), eval_episodes=1, log_every=200, torch_threads=1)
    _, path = train(run, DQNConfig(hidden=(16, 16), learning_starts=100))
    acc = EventAccumulator(str(path.parent / "tb"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    text = (Path(__file__).resolve().parents[1] / "docs/algorithms/dqn.md").read_text()
    documented = set(re.findall(r"^\|\s*`([a-z_]+/[a-z_]+)`\s*\|", text, flags=re.M))
    assert len(documented) >= 8
    assert documented <= tags, documented - tags


def test_every_mutable_field_takes_effect() -> None:
    """What the control file does for each field: set_hparam, then acting/updating use it."""
    agent = _agent()
    _fill(agent, 10)
    new = {"learning_rate": 1e-3, "gamma": 0.95, "epsilon": 0.0, "batch_size": 4,
           "train_freq": 3, "gradient_steps": 2, "target_update_interval": 6, "tau": 0.5,
           "max_grad_norm": 1.0, "per_alpha": 0.5, "per_beta": 0.9, "per_eps": 0.001,
           "per_recent_frac": 0.25, "per_recent_window": 7}
    assert set(new) == set(agent.hparam_schedules())
    for k, v in new.items():
        agent.set_hparam(k, v, "control")
    assert agent.hparam_values() == new
    calls = []
    orig = agent.replay.sample
    agent.replay.sample = lambda b, g, n: calls.append((b, g)) or orig(b, g, n)
    m = agent.update()
    assert calls == [(4, 0.95), (4, 0.95)]
    assert m["losses/grad_norm"] >= 0 and m["charts/epsilon"] == 0.0
    assert agent.optimizer.param_groups[0]["lr"] == 1e-3
    assert (agent.replay.alpha, agent.replay.beta, agent.replay.eps) == (0.5, 0.9, 0.001)
    assert (agent.replay.recent_frac, agent.replay.recent_window) == (0.25, 7)
    targets = []
    update_target = agent._update_target
    agent._update_target = lambda tau: targets.append(agent.clock) or update_target(tau)
    rng = np.random.default_rng(0)
    due = []
    for _ in range(6):
        obs = rng.normal(size=(2, 4)).astype(np.float32)
        np.testing.assert_array_equal(agent.act(obs).actions,
                                      agent.q(torch.from_numpy(obs)).argmax(-1).numpy())
        due.append(agent.observe(Transition(obs, np.zeros(2, np.int64), np.zeros(2), obs,
                                            np.zeros(2, bool), np.zeros(2, bool),
                                            np.ones(2, bool), np.zeros(2, bool),
                                            step=agent.clock + 2)))
    assert [i for i, d in enumerate(due) if d] == [i for i in range(6) if (10 + i + 1) % 3 == 0]
    assert targets == [24, 30]  # the clock went 20 -> 32: a target update every 6 env steps


@pytest.mark.parametrize("n_envs", [1, 4])
def test_default_learns_one_gradient_step_per_train_freq_environment_steps(n_envs: int) -> None:
    """gradient_steps=-1 (the default) makes one gradient step per environment in each update:
    one per train_freq = 4 environment steps whatever --n-envs is (SB3 with one env)."""
    from rlcore.config import resolve_configs
    from rlcore.runner import Runner, build_agent, build_envs
    from rlcore.sinks import MemorySink

    run, cfg = resolve_configs({"algo": "dqn", "env": "CartPole-v1", "n_envs": n_envs,
                                "steps": 64, "learning_starts": 0, "batch_size": 8,
                                "hidden": [16, 16], "progress": False, "log_every": 32})
    assert cfg.gradient_steps == -1 and cfg.train_freq == 4
    envs = build_envs(run, cfg)
    agent = build_agent(run, cfg, envs)
    Runner(agent, envs, MemorySink(), run).run(64)
    envs.close()
    p = next(agent.q.parameters())
    assert int(agent.optimizer.state[p]["step"]) == 64 // 4


def test_init_torch_is_nn_linear_default_and_orthogonal_is_the_default():
    """``init=torch`` gives nn.Linear's own initialisation (uniform within 1/sqrt(fan_in), as
    SB3's DQN); the default is orthogonal with gain sqrt(2) on hidden layers."""
    torch.manual_seed(0)
    ortho = QNetwork(4, 3, hidden=(64, 64))
    w = ortho.encoder.net[2].weight
    assert torch.allclose(w @ w.T, 2.0 * torch.eye(64), atol=1e-4)
    plain = QNetwork(4, 3, hidden=(64, 64), init="torch").requires_grad_(False)
    for m in plain.modules():
        if isinstance(m, nn.Linear):
            bound = 1.0 / m.in_features ** 0.5
            assert float(m.weight.abs().max()) <= bound and float(m.bias.abs().max()) <= bound
            assert float(m.bias.abs().max()) > 0.0  # not the orthogonal recipe's zero bias
    w = plain.encoder.net[2].weight
    assert not torch.allclose(w @ w.T, 2.0 * torch.eye(64), atol=0.1)
    with pytest.raises(ValueError, match="init 'xavier'"):
        QNetwork(4, 3, init="xavier")
