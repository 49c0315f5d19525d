"""Each algorithm trains on MarketMaking-v0 (model mode) through the CLI and is evaluated on
the baselines' seeded paths by ``benchmarks/bench_mm_agents.py``; its path evaluation matches
``run_baseline`` exactly for a fixed policy."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from marketsim.mm.baselines import run_baseline
from rlcore.agent import ActResult

from .conftest import ROOT

SHORT = {"n_steps": 40}
"""Short episodes keep the smoke runs small."""


def _bench():
    """Import the benchmark script as a module."""
    spec = importlib.util.spec_from_file_location("bench_mm_agents",
                                                  ROOT / "benchmarks" / "bench_mm_agents.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


bench = _bench()


class FixedAction:
    """A stand-in agent that always plays one discrete action (a fixed gamma)."""

    def __init__(self, action: int) -> None:
        self.action = action

    def initial_state(self, n: int) -> None:
        return None

    def act(self, obs, state=None, episode_start=None, deterministic=False) -> ActResult:
        return ActResult(np.full(obs.shape[0], self.action))


def _run_cfg(**kw):
    from rlcore.config import resolve_configs

    run, _ = resolve_configs({"algo": "ppo", "env": bench.ENV_ID, **kw})
    return run


def test_baseline_paths_equal_run_baseline():
    for strategy, gamma in (("as", 0.1), ("cj", 0.1)):
        paths = bench.baseline_paths(strategy, gamma, 30, 5, SHORT)
        ref = run_baseline(strategy, gamma, 30, seed=5, **SHORT)
        got = bench.summarise(paths)
        for key in ("reward_mean", "pnl_mean", "pnl_std", "inventory_std", "spread_mean",
                    "fills_mean"):
            assert got[key] == pytest.approx(ref[key], rel=1e-12, abs=1e-12), key


def test_fixed_agent_meets_the_baselines_paths():
    """An agent that always picks gamma = 0.1 is the AS baseline with gamma = 0.1, path by path:
    the agents and the baselines are scored on the same seeded paths."""
    kw = {**SHORT, "action_type": "discrete"}
    gammas = (0.01, 0.05, 0.1, 0.2, 0.5, 1.0)
    run = _run_cfg(env_kwargs=kw)
    paths = bench.agent_paths(FixedAction(gammas.index(0.1)), run, {}, 25, 7)
    ref = bench.baseline_paths("as", 0.1, 25, 7, SHORT)
    for key in ("reward", "pnl", "inventory", "fills", "spread"):
        np.testing.assert_allclose(paths[key], ref[key], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(paths["gamma"], 0.1)
    # a different gamma gives different paths (the check can fail)
    other = bench.agent_paths(FixedAction(gammas.index(1.0)), run, {}, 25, 7)
    assert not np.allclose(other["reward"], ref["reward"])


def test_scores_by_hand():
    assert bench.percent_of(95.0, 100.0) == pytest.approx(95.0)
    assert bench.percent_of(-3.0, -10.0) is None
    p = bench.paired(np.array([1.0, 2.0, 6.0]), np.array([0.0, 0.0, 3.0]))
    # differences 1, 2, 3: mean 2, sample std 1, standard error 1/sqrt(3)
    assert p["diff_mean"] == pytest.approx(2.0)
    assert p["diff_se"] == pytest.approx(1.0 / np.sqrt(3.0))
    with pytest.raises(ValueError, match="unknown"):
        bench.parse_algos("ppo,td3")


def test_split_candles_keeps_time_order(tmp_path):
    import gzip

    lines = ["open_time_ms,open_time_utc,open,high,low,close,volume"]
    lines += [f"{i},t{i},1,2,0.5,1,1" for i in range(100)]
    src = tmp_path / "c.csv.gz"
    with gzip.open(src, "wt") as handle:
        handle.write("\n".join(lines) + "\n")
    ins, oos, info = bench.split_candles(src, tmp_path, 0.6, 10)
    ins_rows = ins.read_text().splitlines()[1:]
    oos_rows = oos.read_text().splitlines()[1:]
    assert len(ins_rows) == 60 and ins_rows[-1].startswith("59,")
    # out of sample: the 10 last in-sample rows (calibration only), then rows 60..99
    assert len(oos_rows) == 50 and oos_rows[0].startswith("50,") and oos_rows[10].startswith("60,")
    assert info["split_row"] == 60 and info["out_of_sample_first"] == "t60"


ALGO_SETTINGS = {
    "ppo": ["n_steps=40", "batch_size=80", "n_epochs=2"],
    "a2c": ["n_steps=10"],
    "dqn": ["learning_starts=100", "batch_size=32", "train_freq=1", "log_every=200"],
    "sac": ["learning_starts=100", "batch_size=32", "hidden=[32, 32]", "log_every=200"],
}


@pytest.mark.parametrize("algo", sorted(ALGO_SETTINGS))
def test_algo_trains_through_cli_and_evaluates(algo, tmp_path):
    import cli

    args = ["train", "--algo", algo, "--env", "marketsim/MarketMaking-v0", "--steps", "320",
            "--n-envs", "4", "--seed", "1", "--runs-dir", str(tmp_path), "--run-id", algo,
            "--no-progress", "--env-arg", "n_steps=40", "--set", "eval_episodes=2",
            "--set", "eval_envs=2", "--set", "normalize_obs=true"]
    for item in ALGO_SETTINGS[algo]:
        args += ["--set", item]
    result = CliRunner().invoke(cli.cli, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(Path(result.output.strip().splitlines()[-1]).read_text())
    assert summary["status"] == "completed" and summary["steps"] >= 320
    paths = bench.evaluate_trained(tmp_path / algo, 12, 0)
    stats = bench.summarise(paths)
    assert stats["episodes"] == 12
    assert all(np.isfinite(v) for v in stats.values())
    # eq. (16): the summed reward is the PnL minus a non-negative inventory penalty
    assert np.all(paths["reward"] <= paths["pnl"] + 1e-9)
    # the action type the runner chose: discrete gammas for DQN, continuous for the others
    from rlcore.saved import load_run_agent

    agent, run_cfg, _, _ = load_run_agent(tmp_path / algo)
    expected = "discrete" if algo == "dqn" else "continuous"
    assert bench.run_action_type(run_cfg) == expected
    obs = np.zeros((3, 8), dtype=np.float32)
    actions = np.asarray(agent.act(obs, None, np.ones(3, bool), deterministic=True).actions)
    if algo == "dqn":
        assert actions.shape == (3,) and set(actions.tolist()) <= set(range(6))
    else:
        assert actions.shape == (3, 4) and np.all(np.abs(actions) <= 1.0 + 1e-6)
    assert np.all((paths["gamma"] >= 0.01 - 1e-12) & (paths["gamma"] <= 1.0 + 1e-12))
