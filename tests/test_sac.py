"""SAC agent: spaces, gradient isolation, hyperparameter changes, checkpoints, learning."""

from __future__ import annotations

import io
import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlcore.agent import Transition
from rlcore.hparams import Change, HParamError
from rlcore.sac import SAC, QEnsemble, SACConfig

BOX = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
ACT = gym.spaces.Box(np.array([-2.0, 0.0], np.float32), np.array([2.0, 1.0], np.float32))


def _transition(n: int, obs_dim: int, actions: np.ndarray, rng: np.random.Generator,
                valid: np.ndarray | None = None, step: int = 0) -> Transition:
    obs = rng.normal(size=(n, obs_dim)).astype(np.float32)
    return Transition(obs, actions, rng.normal(size=n).astype(np.float32),
                      rng.normal(size=(n, obs_dim)).astype(np.float32), np.zeros(n, bool),
                      np.zeros(n, bool), np.ones(n, bool) if valid is None else valid,
                      np.zeros(n, bool), step=step)


def _agent(discrete: bool = False, **kw) -> SAC:
    torch.manual_seed(0)
    space = gym.spaces.Discrete(3) if discrete else ACT
    # one gradient step per update (the default -1 makes one per environment): the tests
    # below check what a single step does
    kw = {"hidden": (16, 16), "batch_size": 8, "learning_starts": 0, "gradient_steps": 1, **kw}
    cfg = SACConfig(**kw)
    return SAC(cfg, BOX, space, 2, total_steps=1000)


def _fill(agent: SAC, steps: int = 20, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(steps):  # the runner's clock advances by the 2 environments per step
        res = agent.act(rng.normal(size=(2, 3)).astype(np.float32))
        agent.observe(_transition(2, 3, res.actions, rng, step=agent.clock + 2))


def test_check_spaces_and_lstm_errors() -> None:
    with pytest.raises(ValueError, match="finite bounds"):
        SAC.check_spaces(BOX, gym.spaces.Box(-np.inf, np.inf, (1,)))
    with pytest.raises(ValueError, match="Box or Discrete"):
        SAC.check_spaces(BOX, gym.spaces.MultiBinary(3))
    with pytest.raises(ValueError, match="observation space"):
        SAC.check_spaces(gym.spaces.Discrete(4), ACT)
    with pytest.raises(ValueError, match="--frame-stack"):
        SAC(SACConfig(net="lstm"), BOX, ACT, 1)


def test_actions_are_in_bounds_and_stored_unscaled() -> None:
    agent = _agent(learning_starts=1000)
    rng = np.random.default_rng(1)
    for warm in (True, False):
        agent.clock = 0 if warm else 10_000
        a = agent.act(rng.normal(size=(2, 3)).astype(np.float32)).actions
        assert a.shape == (2, 2) and np.all(a >= ACT.low) and np.all(a <= ACT.high)
    agent.observe(_transition(2, 3, np.array([[2.0, 0.0], [-2.0, 0.5]], np.float32), rng))
    # env action low..high maps to -1..1 in the buffer
    np.testing.assert_allclose(agent.replay.actions[agent.replay.ptr - 1, [0, 1]],
                               [[1.0, -1.0], [-1.0, 0.0]])


def test_invalid_transitions_are_not_stored() -> None:
    agent = _agent()
    rng = np.random.default_rng(2)
    agent.observe(_transition(2, 3, np.zeros((2, 2), np.float32), rng, np.array([True, False])))
    assert agent.replay.size == 1


@pytest.mark.parametrize("discrete", [False, True])
def test_critic_and_actor_gradients_reach_only_their_networks(discrete: bool) -> None:
    """At the critic step only the critic has gradients; the actor loss adds none to it."""
    agent = _agent(discrete)
    _fill(agent)
    log: dict[str, object] = {}
    orig_c, orig_a = agent.critic_opt.step, agent.actor_opt.step

    def c_step(*a, **k):
        log["actor_at_critic_step"] = [p.grad for p in agent.actor.parameters()]
        log["critic_grads"] = [p.grad.clone() for p in agent.critic.parameters()]
        return orig_c(*a, **k)

    def a_step(*a, **k):
        log["actor_grads"] = [p.grad for p in agent.actor.parameters()]
        log["critic_at_actor_step"] = [p.grad.clone() for p in agent.critic.parameters()]
        return orig_a(*a, **k)

    agent.critic_opt.step, agent.actor_opt.step = c_step, a_step
    agent.update()
    assert all(g is None for g in log["actor_at_critic_step"])
    assert any(g.abs().sum() > 0 for g in log["critic_grads"])
    assert all(g is not None for g in log["actor_grads"])
    for before, after in zip(log["critic_grads"], log["critic_at_actor_step"]):
        torch.testing.assert_close(before, after, rtol=0, atol=0)
    assert all(p.grad is None for p in agent.critic_target.parameters())


def test_fused_ensemble_equals_two_separate_mlps() -> None:
    torch.manual_seed(0)
    ens = QEnsemble(5, 1, 2, "mlp", (7, 6), "relu")
    x = torch.randn(4, 5)
    out = ens(x)
    for k in range(2):
        h = x
        for i, (w, b) in enumerate(zip(ens.weights, ens.biases)):
            h = h @ w[k] + b[k, 0]
            if i < len(ens.weights) - 1:
                h = torch.relu(h)
        torch.testing.assert_close(out[k], h)
    # detached weights: same values, no gradient to the parameters
    y = ens(x.requires_grad_(True), detach_params=True).sum()
    y.backward()
    assert all(p.grad is None for p in ens.parameters()) and x.grad is not None


def test_set_hparam_applies_side_effects_and_rejects_bad_values() -> None:
    agent = _agent()
    ch = agent.set_hparam("learning_rate", 1e-3, "control")
    assert isinstance(ch, Change) and ch.field == "learning_rate" and ch.new == 1e-3
    assert ch.old == 3e-4 and ch.source == "control"
    for opt in (agent.actor_opt, agent.critic_opt, agent.alpha_opt):
        assert opt.param_groups[0]["lr"] == 1e-3
    with pytest.raises(HParamError, match="learning_rate"):
        agent.set_hparam("learning_rate", -1.0)
    assert agent.hparam_values()["learning_rate"] == 1e-3
    agent.set_hparam("alpha", 0.25)
    assert agent.alpha == pytest.approx(0.25)
    with pytest.raises(HParamError, match="schedule"):
        agent.set_hparam("alpha", "lin:0.2->0.1")  # autotuned alpha takes no schedule
    agent.set_hparam("gamma", "lin:0.9->0.99@100")
    changed = agent.advance(50)
    assert changed["gamma"][1] == pytest.approx(0.945)
    agent.set_hparam("target_entropy", -0.5)
    assert agent.hparam_values()["target_entropy"] == -0.5
    with pytest.raises(HParamError, match="unknown"):
        agent.set_hparam("clip_range", 0.1)


def _through_disk(state: dict) -> dict:
    """Save and load with torch (as a checkpoint does), so nothing is shared with the source."""
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=False)


def test_state_dict_round_trip_restores_training_exactly() -> None:
    a = _agent()
    _fill(a, 30)
    a.update()
    a.set_hparam("tau", 0.01)
    b = _agent()
    b.load_state_dict(_through_disk(a.state_dict()))
    b.load_replay_state_dict(_through_disk(a.replay_state_dict()))
    assert b.hparam_values() == a.hparam_values()
    assert (b.clock, b.n_updates) == (a.clock, a.n_updates) == (60, 1)
    torch.manual_seed(3)
    ma = a.update()
    torch.manual_seed(3)
    mb = b.update()
    assert ma == mb
    for pa, pb in zip(a.critic_target.parameters(), b.critic_target.parameters()):
        torch.testing.assert_close(pa, pb, rtol=0, atol=0)
    assert a.alpha == b.alpha


def test_observe_signals_updates_on_train_freq_after_learning_starts() -> None:
    agent = _agent(learning_starts=6, train_freq=2)
    rng = np.random.default_rng(4)
    due = [agent.observe(_transition(2, 3, np.zeros((2, 2), np.float32), rng, step=2 * i))
           for i in range(1, 7)]
    # steps 2, 4, 6, ...: learning starts at 6 env steps (3rd call); due on even calls
    assert due == [False, False, False, True, False, True]


def _run(algo_cfg, env: str, steps: int, seed: int, tmp_path) -> dict:
    from rlcore.config import RunConfig
    from rlcore.training import train

    run = RunConfig(algo="sac", env=env, steps=steps, n_envs=1, seed=seed, progress=False,
                    runs_dir=str(tmp_path), eval_episodes=5, log_every=500, torch_threads=1)
    summary, _ = train(run, algo_cfg)
    return summary


@pytest.mark.slow
def test_sac_learns_pendulum(tmp_path) -> None:
    """Random policy scores about -1200 on Pendulum; SAC should reach > -700 in 3,000 steps."""
    s = _run(SACConfig(learning_rate=3e-3, hidden=(64, 64)), "Pendulum-v1", 3000, 0, tmp_path)
    assert s["eval_return_mean"] > -700, s


def test_discrete_sac_runs_and_losses_are_finite(tmp_path) -> None:
    s = _run(SACConfig(hidden=(32, 32), learning_starts=200, batch_size=64), "CartPole-v1",
             600, 0, tmp_path)
    assert math.isfinite(s["eval_return_mean"])


def _documented_metrics(page: str) -> set[str]:
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / page).read_text()
    return set(re.findall(r"^\|\s*`([a-z_]+/[a-z_]+)`\s*\|", text, flags=re.M))


def test_documented_metrics_are_logged(tmp_path) -> None:
    """Every metric in the table of docs/algorithms/sac.md appears in TensorBoard."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from rlcore.config import RunConfig
    from rlcore.training import train

    run = RunConfig(algo="sac", env="Pendulum-v1", steps=400, n_envs=1, seed=0, progress=False,
                    runs_dir=str(tmp_path), eval_episodes=1, log_every=200, torch_threads=1)
    _, path = train(run, SACConfig(hidden=(16, 16), learning_starts=100, batch_size=32))
    acc = EventAccumulator(str(path.parent / "tb"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    documented = _documented_metrics("docs/algorithms/sac.md")
    assert len(documented) >= 8
    assert documented <= tags, documented - tags


def test_every_mutable_field_takes_effect_at_the_next_update() -> None:
    """What the control file does for each field: set_hparam, then the next update uses it."""
    agent = _agent()
    _fill(agent, 10)
    new = {"learning_rate": 1e-3, "gamma": 0.95, "tau": 0.02, "alpha": 0.3,
           "target_entropy": -0.5, "batch_size": 4, "train_freq": 3, "gradient_steps": 2}
    assert set(new) == set(agent.hparam_schedules())
    for k, v in new.items():
        agent.set_hparam(k, v, "control")
    assert agent.hparam_values() == {**new, "alpha": pytest.approx(0.3)}
    calls = []
    orig = agent.replay.sample
    agent.replay.sample = lambda b, g, n: calls.append((b, g)) or orig(b, g, n)
    before = agent.critic_target.weights[0].detach().clone()
    agent.update()
    assert calls == [(4, 0.95), (4, 0.95)]  # batch_size, gamma, gradient_steps
    assert agent.actor_opt.param_groups[0]["lr"] == 1e-3
    assert not torch.equal(before, agent.critic_target.weights[0].detach())  # Polyak moved it
    rng = np.random.default_rng(0)
    due = [agent.observe(_transition(2, 3, np.zeros((2, 2), np.float32), rng, step=20 + 2 * (i + 1)))
           for i in range(6)]  # the clock at 22..32: vector steps 11..16
    assert [i for i, d in enumerate(due) if d] == [i for i in range(6) if (10 + i + 1) % 3 == 0]


@pytest.mark.parametrize("n_envs", [1, 4])
def test_default_learns_one_gradient_step_per_environment_step(n_envs: int) -> None:
    """gradient_steps=-1 (the default) makes one gradient step per environment in each update,
    so 64 environment steps give 64 gradient steps whatever --n-envs is (SB3 with one env)."""
    from rlcore.config import resolve_configs
    from rlcore.runner import Runner, build_agent, build_envs
    from rlcore.sinks import MemorySink

    run, cfg = resolve_configs({"algo": "sac", "env": "Pendulum-v1", "n_envs": n_envs,
                                "steps": 64, "learning_starts": 0, "batch_size": 8,
                                "hidden": [16, 16], "progress": False, "log_every": 32})
    assert cfg.gradient_steps == -1
    envs = build_envs(run, cfg)
    agent = build_agent(run, cfg, envs)
    Runner(agent, envs, MemorySink(), run).run(64)
    envs.close()
    p = next(agent.critic.parameters())
    assert int(agent.critic_opt.state[p]["step"]) == 64
