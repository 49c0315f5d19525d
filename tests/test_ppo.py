"""PPO behaviour: live gamma changes, truncation bootstrap, resume, CLI smoke, CartPole learning."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import cli as cli_module
from rlcore.agent import Transition
from rlcore.config import resolve_configs
from rlcore.envs import make_vector_env
from rlcore.ppo import PPO, PPOConfig


def reference_gae(r, v, nv, done_cut, term, gamma, lam):
    T, N = r.shape
    adv = np.zeros((T, N))
    for n in range(N):
        nxt = 0.0
        for t in reversed(range(T)):
            d = r[t, n] + gamma * (0.0 if term[t, n] else nv[t, n]) - v[t, n]
            nxt = d + gamma * lam * (0.0 if done_cut[t, n] else nxt)
            adv[t, n] = nxt
    return adv


def fill_rollout(agent, bundle, seed=0):
    env = bundle.env
    obs, _ = env.reset(seed=seed)
    n = env.num_envs
    es, auto = np.ones(n, bool), np.zeros(n, bool)
    while True:
        res = agent.act(obs, None, es)
        nobs, rew, te, tr, _ = env.step(res.actions)
        done = agent.observe(Transition(obs, res.actions, rew, nobs, te, tr, ~auto, es,
                                        None, None, res.extras))
        es, auto = auto, te | tr
        obs = nobs
        if done:
            return


@pytest.fixture
def ppo_and_env():
    torch.manual_seed(0)
    bundle = make_vector_env("CartPole-v1", 3, env_kwargs={"max_episode_steps": 7},
                             normalize_reward=True, gamma=0.99)
    cfg = PPOConfig(n_steps=20)
    agent = PPO(cfg, bundle.env.single_observation_space, bundle.env.single_action_space, 3, 1000)
    fill_rollout(agent, bundle)
    yield agent, bundle
    bundle.close()


def test_rollout_marks_truncation_and_the_reset_step(ppo_and_env):
    agent, _ = ppo_and_env
    b = agent.buffer
    # episodes of 7 steps, then one ignored reset step: truncation at rows 6 and 14
    assert b.truncated[:, 0].nonzero()[0].tolist() == [6, 14]
    assert (~b.valid[:, 0]).nonzero()[0].tolist() == [7, 15]
    # the truncated row bootstraps from V(real final observation), which is the next row's value
    np.testing.assert_allclose(b.next_values[6], b.values[7])
    adv6 = b.rewards[6] + 0.99 * b.values[7] - b.values[6]  # lambda cut: A = delta
    np.testing.assert_allclose(b.advantages[6], adv6, rtol=1e-6)


def test_gamma_change_recomputes_unconsumed_advantages(ppo_and_env):
    agent, bundle = ppo_and_env
    b = agent.buffer
    before = b.advantages.copy()
    ch = agent.set_hparam("gamma", 0.9, "test")
    assert (ch.field, ch.old, ch.new, ch.source) == ("gamma", 0.99, 0.9, "test")
    cut = b.terminated | b.truncated | ~b.valid
    term = b.terminated | ~b.valid
    fresh = reference_gae(b.rewards, b.values, b.next_values, cut, term, 0.9, 0.95)
    np.testing.assert_allclose(b.advantages, fresh, atol=1e-10)
    assert not np.allclose(before, b.advantages)
    np.testing.assert_allclose(b.returns, fresh + b.values, atol=1e-6)
    agent.set_hparam("gae_lambda", 0.5)
    fresh = reference_gae(b.rewards, b.values, b.next_values, cut, term, 0.9, 0.5)
    np.testing.assert_allclose(b.advantages, fresh, atol=1e-10)


def test_gamma_change_after_update_leaves_consumed_buffer(ppo_and_env):
    agent, _ = ppo_and_env
    agent.update()
    assert agent.buffer.consumed
    adv = agent.buffer.advantages.copy()
    agent.set_hparam("gamma", 0.5)
    np.testing.assert_array_equal(agent.buffer.advantages, adv)


def test_learning_rate_change_reaches_the_optimiser(ppo_and_env):
    agent, _ = ppo_and_env
    agent.set_hparam("learning_rate", "lin:1e-3->1e-4")
    assert agent.optimizer.param_groups[0]["lr"] == pytest.approx(1e-3)
    agent.advance(1000)
    assert agent.optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)


def test_resume_restores_parameters_and_continues_step_count(make_runner):
    r = make_runner(steps=512, checkpoint_every=256)
    r.runner.agent.set_hparam("ent_coef", 0.01, "test")
    s1 = r.train()
    assert s1["steps"] == 512
    saved = {k: v.clone() for k, v in r.runner.agent.policy.state_dict().items()}
    run_dir = r.rd.path
    r2 = make_runner(resume_dir=run_dir, steps=1024)
    for k, v in r2.runner.agent.policy.state_dict().items():
        torch.testing.assert_close(v, saved[k], rtol=0, atol=0)
    assert r2.runner.step == 512
    assert r2.runner.agent.hparam_values()["ent_coef"] == 0.01
    opt_state = r2.runner.agent.optimizer.state_dict()["state"]
    opt_before = r.runner.agent.optimizer.state_dict()["state"]
    assert opt_state and all(int(s["step"]) == opt_before[i]["step"]
                             for i, s in opt_state.items())
    s2 = r2.train()
    assert s2["steps"] == 1024
    assert json.loads((run_dir / "summary.json").read_text())["steps"] == 1024


def test_cli_smoke_1000_steps(tmp_path):
    res = CliRunner().invoke(cli_module.cli, [
        "train", "--algo", "ppo", "--env", "CartPole-v1", "--steps", "1000", "--n-envs", "2",
        "--runs-dir", str(tmp_path), "--run-id", "smoke", "--no-progress",
        "--set", "n_steps=50", "--set", "learning_rate=lin:0.001->0", "--set", "eval_episodes=2"])
    assert res.exit_code == 0, res.output
    last = res.output.strip().splitlines()[-1]
    summary = json.loads(open(last).read())
    for k in ("algo", "env", "steps", "wall_s", "sps", "eval_return_mean", "eval_return_std",
              "run_id", "checkpoint"):
        assert k in summary
    assert summary["steps"] == 1000 and summary["run_id"] == "smoke"
    run = tmp_path / "smoke"
    for name in ("config.yaml", "control.yaml", "summary.json", "checkpoints/latest"):
        assert (run / name).exists(), name
    assert list((run / "tb").glob("events.out.tfevents.*"))
    # evaluate and runs commands chain on the run folder
    ev = CliRunner().invoke(cli_module.cli, ["evaluate", str(run), "--episodes", "2"])
    assert ev.exit_code == 0, ev.output
    assert json.loads(open(ev.output.strip().splitlines()[-1]).read())["eval_episodes"] == 2
    ls = CliRunner().invoke(cli_module.cli, ["runs", "--runs-dir", str(tmp_path), "--json"])
    assert json.loads(ls.output)[0]["run"] == "smoke"


def test_cli_errors_are_clear(tmp_path):
    res = CliRunner().invoke(cli_module.cli, ["train", "--env", "CartPole-v1", "--set", "gama=1",
                                              "--runs-dir", str(tmp_path)])
    assert res.exit_code != 0 and "gama" in res.output and "valid:" in res.output
    res = CliRunner().invoke(cli_module.cli, ["train", "--env", "NoSuchEnv-v9",
                                              "--runs-dir", str(tmp_path), "--steps", "10"])
    assert res.exit_code != 0 and "NoSuchEnv-v9" in res.output


@pytest.mark.slow
def test_ppo_solves_cartpole_within_100k_steps(tmp_path):
    from rlcore.training import train

    run, algo = resolve_configs({
        "algo": "ppo", "env": "CartPole-v1", "steps": 100_000, "n_envs": 8, "seed": 1,
        "n_steps": 32, "batch_size": 256, "gae_lambda": 0.8, "gamma": 0.98, "n_epochs": 20,
        "ent_coef": 0.0, "learning_rate": "lin:0.001->0", "clip_range": "lin:0.2->0",
        "progress": False, "runs_dir": str(tmp_path), "eval_episodes": 10})
    summary, _ = train(run, algo)
    assert summary["eval_return_mean"] >= 475, summary
