"""A small CartPole study: the pruner acts on the reported evaluations, failed trials are
pruned with their reason, the results folder is complete, and best.yaml reproduces."""

from __future__ import annotations

import json

import yaml
from optuna.trial import TrialState

from tests.tune.tune_helpers import invoke, load, run_tune


def test_study_prunes_on_reported_values_and_writes_results(tmp_path):
    res = run_tune(tmp_path, trials=5, seeds=2, steps=1024)
    study = load(tmp_path)
    states = [t.state for t in study.trials]
    assert len(states) == 5 and TrialState.PRUNED in states and TrialState.COMPLETE in states
    for t in study.trials:
        assert t.intermediate_values, "every trial reports its periodic evaluations"
        if t.state == TrialState.PRUNED:
            # pruned at a reported step, below the median of earlier trials at that step
            step = max(t.intermediate_values)
            earlier = [u.intermediate_values[step] for u in study.trials
                       if u.number < t.number and step in u.intermediate_values]
            assert t.intermediate_values[step] < sorted(earlier)[len(earlier) // 2] + 1e-9
            assert "pruner's threshold" in t.user_attrs["reason"]
        else:
            assert len(t.user_attrs["seed_scores"]) == 2
    folder = tmp_path / "studies" / "s"
    assert {"best.yaml", "trials.csv", "study.html", "summary.json", "journal.log"} <= \
        {p.name for p in folder.iterdir()}
    assert "plotly" in (folder / "study.html").read_text()
    assert res.stdout.strip().splitlines()[-1] == str(folder / "summary.json")
    assert "done:" in res.stderr and "best" in res.stderr  # progress lines


def test_best_yaml_reproduces_the_best_trials_first_seed(tmp_path):
    run_tune(tmp_path, trials=2, seeds=1)
    folder = tmp_path / "studies" / "s"
    summary = json.loads((folder / "summary.json").read_text())
    best = yaml.safe_load((folder / "best.yaml").read_text())
    assert best["run"]["seed"] == 0
    out = invoke("train", "--config", str(folder / "best.yaml"), "--runs-dir",
                 str(tmp_path / "runs"), "--no-progress")
    assert out.exit_code == 0, out.output
    trained = json.loads(open(out.stdout.strip().splitlines()[-1]).read())
    assert trained["eval_return_mean"] == summary["best_seed_scores"][0]


def test_a_failing_trial_is_pruned_with_its_reason(tmp_path):
    space = tmp_path / "bad.yaml"  # batch_size 0 cannot build a PPO agent
    space.write_text("batch_size: {type: categorical, choices: [0]}\n")
    run_tune(tmp_path, "--space", str(space), trials=1)
    (t,) = load(tmp_path).trials
    assert t.state == TrialState.PRUNED and t.user_attrs["reason"].startswith("failed: ")
