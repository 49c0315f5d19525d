"""Recurrent (LSTM) policies end to end: ``--net lstm`` for PPO and A2C, and CartPoleNoVel."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner

import cli as cli_module
from rlcore import toy_envs
from rlcore.config import resolve_configs
from rlcore.runs import RunDir
from rlcore.training import TrainingRun


@pytest.mark.parametrize("algo,extra", [
    ("ppo", ["--set", "n_steps=16", "--set", "batch_size=32", "--set", "n_epochs=2"]),
    ("a2c", ["--set", "n_steps=8"]),
])
def test_cli_net_lstm_smoke(tmp_path, algo, extra):
    res = CliRunner().invoke(cli_module.cli, [
        "train", "--algo", algo, "--env", "CartPole-v1", "--net", "lstm", "--steps", "640",
        "--n-envs", "4", "--set", "lstm_hidden=16", *extra, "--runs-dir", str(tmp_path),
        "--no-progress"])
    assert res.exit_code == 0, res.output
    path = Path(res.output.strip().splitlines()[-1])
    summary = json.loads(path.read_text())
    assert summary["status"] == "completed" and summary["algo"] == algo
    assert np.isfinite(summary["eval_return_mean"])
    cfg = yaml.safe_load((path.parent / "config.yaml").read_text())
    assert cfg["algo_config"]["net"] == "lstm" and cfg["algo_config"]["lstm_hidden"] == 16
    ckpt = torch.load(summary["checkpoint"], weights_only=False)
    keys = ckpt["agent"]["policy"].keys()
    assert "encoder.lstm.weight_hh_l0" in keys and not any(k.startswith("pi_enc") for k in keys)


def test_recurrent_a2c_runner_carries_state_between_rollouts(tmp_path):
    # Each rollout starts from the state the previous one ended with (not from zeros).
    run, cfg = resolve_configs({"algo": "a2c", "env": "CartPole-v1", "steps": 48, "n_envs": 2,
                                "n_steps": 8, "net": "lstm", "lstm_hidden": 8,
                                "progress": False, "eval_episodes": 1, "eval_envs": 1})
    r = TrainingRun(run, cfg, RunDir(tmp_path / "run").create())
    starts = []
    update = r.runner.agent.update

    def spy():
        starts.append(tuple(s.clone() for s in r.runner.agent.buffer.initial_state))
        return update()

    r.runner.agent.update = spy
    r.train()
    assert len(starts) == 3
    assert float(starts[0][0].abs().max()) == 0.0  # the first rollout starts from zeros
    assert float(starts[1][0].abs().max()) > 0.0  # later ones continue the episodes


def test_cartpole_novel_observation_and_registration():
    toy_envs.register_toy_envs()  # idempotent: a second registration must not raise or warn
    toy_envs.register_toy_envs()
    env = gym.make(toy_envs.CARTPOLE_NOVEL_ID)
    full = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=3)
    ref, _ = full.reset(seed=3)
    assert env.observation_space.shape == (2,)
    np.testing.assert_array_equal(obs, ref[[0, 2]])
    for _ in range(5):
        obs, r, term, trunc, _ = env.step(1)
        ref, r2, term2, trunc2, _ = full.step(1)
        np.testing.assert_array_equal(obs, ref[[0, 2]])
        assert (r, term, trunc) == (r2, term2, trunc2)
    # the 500-step limit is CartPole-v1's own: one TimeLimit, not a second one around it
    assert gym.spec(toy_envs.CARTPOLE_NOVEL_ID).max_episode_steps is None
    assert str(env).count("TimeLimit") == 1 and env.spec.max_episode_steps == 500
    with pytest.raises(ValueError, match="NoVelocityObservation"):
        toy_envs.NoVelocityObservation(gym.make("Pendulum-v1"))


@pytest.mark.parametrize("algo,n_envs,extra", [
    ("ppo", 1, {"batch_size": 64, "n_epochs": 1}),  # one env: the minibatch order is trivial
    ("a2c", 3, {}),
])
def test_training_replays_the_log_probs_of_acting(tmp_path, algo, n_envs, extra):
    # Replaying a rollout from its stored initial state, with resets at episode starts, must give
    # exactly the log-probabilities the policy had while acting (before the first gradient step).
    run, cfg = resolve_configs({"algo": algo, "env": "CartPole-v1", "steps": 16 * n_envs * 4,
                                "n_envs": n_envs, "n_steps": 16, "net": "lstm",
                                "lstm_hidden": 16, "progress": False, "eval_episodes": 1,
                                "eval_envs": 1, **extra})
    r = TrainingRun(run, cfg, RunDir(tmp_path / "run").create())
    agent = r.runner.agent
    inner, update = agent.policy.log_prob_entropy, agent.update
    gaps, starts = [], []

    def spy_update():
        seen = []

        def spy(params, actions):
            logp, ent = inner(params, actions)
            seen.append(logp.detach().clone())
            return logp, ent

        buf = agent.buffer
        stored, valid = buf.log_probs.copy(), buf.valid.copy()
        starts.append(int(buf.episode_start[1:].sum()))
        agent.policy.log_prob_entropy = spy
        try:
            out = update()
        finally:
            agent.policy.log_prob_entropy = inner
        gaps.append(float(np.abs(seen[0].numpy() - stored)[valid].max()))
        return out

    agent.update = spy_update
    r.train()
    assert len(gaps) == 4 and sum(starts) > 0  # episodes did start inside rollouts
    assert max(gaps) < 1e-5, gaps
