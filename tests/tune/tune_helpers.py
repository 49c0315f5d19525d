"""Small CartPole studies for the tuning tests: a few thousand steps per trial."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SPACE = """\
learning_rate: {type: float, low: 1.0e-4, high: 3.0e-3, log: true}
gamma: {type: float, low: 0.9, high: 0.999}
"""

FAST = ["--set", "n_envs=4", "--set", "n_steps=64", "--set", "batch_size=64", "--set",
        "n_epochs=2", "--set", "eval_episodes=2", "--set", "eval_envs=2", "--set",
        "torch_threads=1"]
"""Settings that make a 2048-step CartPole run take about a second."""


def tune_cmd(tmp: Path, *extra: str, trials: int = 4, steps: int = 2048,
             seeds: int = 1) -> list[str]:
    """``python cli.py tune`` on CartPole with the test space, studies under ``tmp``."""
    space = tmp / "space.yaml"
    space.write_text(SPACE)
    return [sys.executable, str(ROOT / "cli.py"), "tune", "--env", "CartPole-v1", "--trials",
            str(trials), "--steps", str(steps), "--seeds", str(seeds), "--space", str(space),
            "--out", str(tmp / "studies"), "--study", "s", "--startup-trials", "2", *FAST,
            *extra]


def invoke(*args: str):
    """``python cli.py ARGS`` in this process (click's runner: no interpreter start-up);
    returns the result (``exit_code``, ``stdout``, ``stderr``)."""
    from click.testing import CliRunner

    from cli import cli

    return CliRunner().invoke(cli, list(args))


def run_tune(tmp: Path, *extra: str, **kw):
    """Run the command to its end in this process; fail with its output if it fails."""
    res = invoke(*tune_cmd(tmp, *extra, **kw)[2:])
    assert res.exit_code == 0, res.output + repr(res.exception)
    return res


def load(tmp: Path, storage: str = ""):
    """The study the command wrote."""
    import optuna

    from rlcore.tune.study import make_storage

    return optuna.load_study(study_name="s", storage=make_storage(storage, tmp / "studies" / "s"))


class Instant:
    """An objective that trains nothing: it draws ``x`` and scores it, so that workers race to
    start trials (``TuneSpec(objective="tests.tune.tune_helpers:Instant")``)."""

    def __init__(self, spec):
        self.spec = spec

    def __call__(self, trial) -> float:
        """The drawn value, with this process's id recorded as the real objective does."""
        trial.set_user_attr("pid", os.getpid())
        return trial.suggest_float("x", 0.0, 1.0)
