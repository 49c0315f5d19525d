"""Population-based training: the worst members copy the weights of the best
(``load_state_dict``) and perturb their hyperparameters through ``set_hparam`` while running;
both are logged in the member's ``changes.jsonl``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rlcore.tune.pbt import PBTError, build_member, exploit_and_explore, run_pbt
from rlcore.tune.space import parse_space

BASE = {"algo": "ppo", "env": "CartPole-v1", "steps": 1024, "n_envs": 4, "n_steps": 64,
        "batch_size": 64, "n_epochs": 2, "eval_episodes": 2, "eval_envs": 2,
        "torch_threads": 1}
SPACE = {"learning_rate": {"type": "float", "low": 1e-4, "high": 3e-3, "log": True},
         "gamma": {"type": "float", "low": 0.9, "high": 0.999}}


def _lines(folder):
    p = folder / "changes.jsonl"
    return [json.loads(x) for x in p.read_text().splitlines()] if p.exists() else []


def test_exploit_copies_weights_and_explore_changes_values(tmp_path):
    space = parse_space(SPACE, "ppo")
    loser = build_member(BASE, {"learning_rate": 1e-4, "gamma": 0.95}, 0, tmp_path / "member-0")
    winner = build_member(BASE, {"learning_rate": 1e-3, "gamma": 0.95}, 1, tmp_path / "member-1")
    try:
        for m in (loser, winner):
            m.runner.run(256)
        exploit_and_explore(loser, winner, space, np.random.default_rng(0))
        lp = loser.runner.agent.state_dict()["policy"]
        wp = winner.runner.agent.state_dict()["policy"]
        assert all(torch.equal(lp[k], wp[k]) for k in wp)  # weights copied
        lr = loser.runner.agent.hparam_values()["learning_rate"]
        assert lr == pytest.approx(1e-3 * 0.8) or lr == pytest.approx(1e-3 * 1.2)
        lines = _lines(loser.folder)
        assert lines[0] == {"step": 256, "field": "weights", "old": "member-0",
                            "new": "member-1", "source": "pbt:exploit"}
        explore = {x["field"]: x for x in lines[1:]}
        assert explore["learning_rate"]["source"] == "pbt:explore"
        assert explore["learning_rate"]["old"] == pytest.approx(1e-3)
        assert explore["learning_rate"]["new"] == pytest.approx(lr)
        loser.runner.run(512)  # and the run goes on with them
        assert loser.runner.agent.hparam_values()["learning_rate"] == lr
    finally:
        for m in (loser, winner):
            m.runner.sink.close()
            m.runner.envs.close()


def test_run_pbt_logs_rounds_and_the_fixed_baseline_never_changes(tmp_path):
    res = run_pbt(BASE, SPACE, tmp_path / "pbt", population=3, interval=256, seed=0,
                  echo=lambda s: None)
    lines = [x for i in range(3) for x in _lines(tmp_path / "pbt" / f"member-{i}")]
    assert sum(x["source"] == "pbt:exploit" for x in lines) == 3  # one per round but the last
    assert any(x["source"] == "pbt:explore" for x in lines)
    assert len(res["history"]) == 3 * 4 and (tmp_path / "pbt" / "pbt.json").is_file()
    fixed = run_pbt(BASE, SPACE, tmp_path / "fixed", population=3, interval=256, seed=0,
                    exploit=False, echo=lambda s: None)
    assert fixed["mode"] == "fixed"
    assert not any(_lines(tmp_path / "fixed" / f"member-{i}") for i in range(3))


def test_pbt_refuses_settings_that_cannot_change_mid_run(tmp_path):
    with pytest.raises(PBTError, match="net cannot change while a run goes on"):
        run_pbt(BASE, {"net": {"type": "categorical", "choices": ["mlp", "resmlp"]}},
                tmp_path / "p")


def test_pbt_resumes_after_kill_9_without_repeating_or_losing_a_round(tmp_path):
    import os
    import subprocess
    import sys
    import time

    folder = tmp_path / "pbt"
    base = {**BASE, "steps": 2048}
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    code = (f"import sys; sys.path.insert(0, {root!r})\n"
            "from rlcore.tune.pbt import run_pbt\n"
            f"run_pbt({base!r}, {SPACE!r}, {str(folder)!r}, population=2, interval=256, seed=0, "
            "echo=lambda s: None)\n")
    p = subprocess.Popen([sys.executable, "-c", code])
    state = folder / "pbt_state.json"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and p.poll() is None:
        if state.exists() and json.loads(state.read_text())["t"] >= 512:
            break
        time.sleep(0.05)
    assert p.poll() is None, "the run ended before it could be killed"
    p.kill()
    p.wait()
    killed_at = json.loads(state.read_text())["t"]
    assert 512 <= killed_at < 2048
    res = run_pbt(base, SPACE, folder, population=2, interval=256, seed=0, echo=lambda s: None)
    rounds = 2048 // 256
    steps = [(h["member"], h["step"]) for h in res["history"]]
    assert len(steps) == len(set(steps)) == 2 * rounds  # every round once, none repeated
    lines = [x for i in range(2) for x in _lines(folder / f"member-{i}")]
    exploits = [x["step"] for x in lines if x["source"] == "pbt:exploit"]
    assert len(exploits) == rounds - 1 == len(set(exploits))
    with pytest.raises(PBTError, match="finished"):
        run_pbt(base, SPACE, folder, population=2, interval=256, seed=0, echo=lambda s: None)
    with pytest.raises(PBTError, match="other settings"):
        (folder / "pbt.json").unlink()
        run_pbt(base, SPACE, folder, population=3, interval=256, seed=0, echo=lambda s: None)
