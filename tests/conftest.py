"""Shared fixtures: small PPO runs on CartPole in temporary run folders."""

from pathlib import Path

import pytest

from rlcore.config import resolve_configs
from rlcore.runs import RunDir
from rlcore.training import TrainingRun

SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


@pytest.fixture
def make_runner(tmp_path):
    """Factory: make_runner(**overrides) -> TrainingRun in a fresh run folder under tmp_path."""
    counter = {"n": 0}

    def _make(resume_dir=None, **overrides):
        base = {"algo": "ppo", "env": "CartPole-v1", "steps": 2048, "n_envs": 2, "seed": 0,
                "n_steps": 64, "batch_size": 64, "n_epochs": 2, "progress": False,
                "eval_episodes": 2, "eval_envs": 2, "control_settle_s": 0.0}
        base.update(overrides)
        run, algo = resolve_configs(base)
        if resume_dir is not None:
            return TrainingRun(run, algo, RunDir(resume_dir), resume=True)
        counter["n"] += 1
        rd = RunDir(tmp_path / f"run{counter['n']}").create()
        return TrainingRun(run, algo, rd)

    return _make
