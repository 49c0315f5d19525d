"""The runner without modes: any caller passes its own sink; the runner owns the one clock and
the environment side of a change (a new gamma reaches the reward normaliser, every algorithm)."""

from pathlib import Path

import numpy as np
import pytest
import yaml

from rlcore.config import resolve_configs
from rlcore.runner import Runner, build_agent, build_envs
from rlcore.runs import RunDir
from rlcore.sinks import MemorySink
from rlcore.training import TrainingRun

CASES = [("ppo", "CartPole-v1", {"n_steps": 16, "batch_size": 32, "n_epochs": 1}),
         ("a2c", "CartPole-v1", {}),
         ("sac", "Pendulum-v1", {"learning_starts": 40, "batch_size": 16, "hidden": [16, 16]}),
         ("dqn", "CartPole-v1", {"learning_starts": 40, "batch_size": 16, "hidden": [16, 16]})]


def _runner(algo, env, extra, **run):
    cfg = {"algo": algo, "env": env, "n_envs": 2, "steps": 200, "normalize_reward": True,
           "progress": False, "log_every": 20, **extra, **run}
    run_cfg, algo_cfg = resolve_configs(cfg)
    envs = build_envs(run_cfg, algo_cfg)
    sink = MemorySink()
    return Runner(build_agent(run_cfg, algo_cfg, envs), envs, sink, run_cfg), sink


@pytest.mark.parametrize("algo,env,extra", CASES, ids=[c[0] for c in CASES])
def test_gamma_change_reaches_the_reward_normaliser(algo, env, extra):
    r, sink = _runner(algo, env, extra)
    norm = r.envs.rew_norm
    assert norm is not None and norm.gamma == 0.99
    ch = r.apply_change("gamma", 0.9, "test")
    assert norm.gamma == 0.9 and sink.changes == [ch] and ch.field == "gamma"
    # a schedule moves gamma at every boundary; the normaliser follows the agent's value
    r.apply_change("gamma", "lin:0.9->0.5@200", "test")
    out = r.run(200)
    gamma = r.agent.hparam_values()["gamma"]
    assert out["steps"] == r.step == 200
    assert gamma < 0.9 and norm.gamma == pytest.approx(gamma)
    r.envs.close()


@pytest.mark.parametrize("algo,env,extra", CASES[2:], ids=["sac", "dqn"])
def test_off_policy_agents_read_the_runners_clock(algo, env, extra):
    r, _ = _runner(algo, env, extra, normalize_reward=False)
    r.run(60)
    assert r.agent.clock == r.step == 60  # no second step counter in the agent
    freq = r.agent.hparam_values()["train_freq"]  # in vector steps: 2 env steps each here
    assert r.agent.n_updates == sum(1 for s in range(40, 61, 2) if (s // 2) % freq == 0) > 0
    r.envs.close()


def test_gamma_change_through_the_control_file_reaches_the_normaliser(tmp_path):
    run, cfg = resolve_configs({"algo": "sac", "env": "Pendulum-v1", "n_envs": 1, "steps": 100,
                                "normalize_reward": True, "progress": False, "log_every": 50,
                                "learning_starts": 1000, "eval_episodes": 1,
                                "control_settle_s": 0.0})
    tr = TrainingRun(run, cfg, RunDir(tmp_path / "run").create())
    data = yaml.safe_load(tr.rd.control.read_text())
    data["hparams"]["gamma"] = 0.95
    tr.rd.control.write_text(yaml.safe_dump(data))
    tr.train()
    assert tr.runner.envs.rew_norm.gamma == 0.95
    assert '"new": 0.95' in tr.rd.changes.read_text()


def test_evaluation_and_training_share_one_stepper():
    """Evaluation runs whole episodes through the same VectorStepper: the reset step after an
    episode is ignored, so CartPole's deterministic episodes have their true lengths."""
    from rlcore.stepping import evaluate_agent

    r, _ = _runner("ppo", "CartPole-v1", CASES[0][2], normalize_reward=False)
    res = evaluate_agent(r.agent, r.envs.env, episodes=4, seed=3)
    assert res["eval_episodes"] == 4 and np.isfinite(res["eval_return_mean"])
    assert res["eval_length_mean"] == res["eval_return_mean"]  # reward 1 per step
    r.envs.close()


class _Ledger(__import__("gymnasium").Env):
    """Four-step episodes that report money figures at their end, with units."""

    metadata = {"render_modes": [], "episode_metric_units": {"final_equity": "USDT", "return_pct": "%"},
                "progress_info": ("equity",)}

    def __init__(self):
        import gymnasium as gym

        self.observation_space = gym.spaces.Box(-1, 1, (2,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.t, self.equity = 0, 100.0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.equity = 0, 100.0
        return np.zeros(2, np.float32), {"equity": self.equity}

    def step(self, action):
        self.t += 1
        self.equity += 1.0 if int(action) == 1 else -1.0
        info = {"equity": self.equity}
        if self.t == 4:
            info["episode_metrics"] = {"final_equity": self.equity,
                                       "return_pct": self.equity - 100.0}
        return np.zeros(2, np.float32), 0.0, False, self.t == 4, info


def test_episode_metrics_are_logged_evaluated_and_summarised(tmp_path):
    """The engine carries an environment's own episode figures (and units) to TensorBoard,
    the evaluation, summary.json and the closing line, without knowing what they mean."""
    import gymnasium as gym
    from click.testing import CliRunner

    import cli as cli_module
    from rlcore.stepping import evaluate_agent

    if "test/Ledger-v0" not in gym.registry:
        gym.register("test/Ledger-v0", entry_point=_Ledger)
    r, sink = _runner("dqn", "test/Ledger-v0", {"learning_starts": 1000})  # random actions
    r.run(64)
    eps = [v for _, v in sink.records if "episode/final_equity" in v]
    # 32 vector steps of 2 envs; an episode takes 4 steps and the ignored reset step: 6 each
    assert len(eps) == 12 and all(v["episode/final_equity"] - 100.0 == v["episode/return_pct"]
                                  for v in eps)
    assert r.recent_metrics_mean()["final_equity"] == pytest.approx(
        np.mean([v["episode/final_equity"] for v in eps]))
    res = evaluate_agent(r.agent, r.envs.env, episodes=4, seed=0)
    assert res["eval_metric_units"] == {"final_equity": "USDT", "return_pct": "%"}
    assert res["eval_metrics"]["final_equity"] - 100.0 == pytest.approx(
        res["eval_metrics"]["return_pct"])
    r.envs.close()
    out = CliRunner().invoke(cli_module.cli, [
        "train", "--algo", "dqn", "--env", "test/Ledger-v0", "--steps", "64", "--n-envs", "2",
        "--runs-dir", str(tmp_path), "--no-progress", "--set", "eval_episodes=2"])
    assert out.exit_code == 0, out.output
    assert "final equity" in out.output and "USDT" in out.output and "return " in out.output
    import json

    summary = json.loads(Path(out.output.strip().splitlines()[-1]).read_text())
    assert set(summary["eval_metrics"]) == {"final_equity", "return_pct"}
    assert set(summary["train_metrics_mean_100"]) == {"final_equity", "return_pct"}
