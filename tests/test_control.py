"""The control file: edits applied, rejected (and logged), and commands executed mid-run."""

import json

import pytest
import yaml

from rlcore.control import edit_control
from rlcore.hparams import HParamError
from rlcore.ppo import PPO_HPARAMS


def _edit(runner, **hp):
    path = runner.rd.control
    data = yaml.safe_load(path.read_text())
    data["hparams"].update(hp)
    path.write_text(yaml.safe_dump(data))


def _lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_control_file_starts_with_every_mutable_value(make_runner):
    r = make_runner()
    data = yaml.safe_load(r.rd.control.read_text())
    assert set(data["hparams"]) == {s.name for s in PPO_HPARAMS}
    assert data["hparams"]["gamma"] == 0.99 and data["command"] is None


def test_valid_edits_are_applied_and_logged(make_runner):
    r = make_runner()
    r.runner.step = 640
    _edit(r, gamma=0.995, clip_range="lin:0.2->0.1", n_epochs=3)
    changes = r.runner.poll_control()
    assert {c.field for c in changes} == {"gamma", "clip_range", "n_epochs"}
    vals = r.runner.agent.hparam_values()
    assert vals["gamma"] == 0.995 and vals["n_epochs"] == 3 and vals["clip_range"] == 0.2
    logged = _lines(r.rd.changes)
    assert {(x["field"], x["old"], x["new"], x["source"], x["step"]) for x in logged} == {
        ("gamma", 0.99, 0.995, "control", 640), ("clip_range", 0.2, "lin:0.2->0.1", "control", 640),
        ("n_epochs", 2, 3, "control", 640)}
    # the schedule runs from the step it was set at
    r.runner.agent.advance(640 + (2048 - 640) // 2)
    assert r.runner.agent.hparam_values()["clip_range"] == pytest.approx(0.15)
    assert r.runner.poll_control() == []  # unchanged file: nothing happens


@pytest.mark.parametrize("field,value,words", [
    ("gamma", "abc", "not a number"), ("gamma", 1.5, "out of range"),
    ("n_epochs", 2.5, "integer"), ("foo", 1, "unknown hyperparameter"),
])
def test_invalid_edits_are_rejected_with_reason(make_runner, field, value, words):
    r = make_runner()
    before = r.runner.agent.hparam_values()
    _edit(r, **{field: value})
    assert r.runner.poll_control() == []
    assert r.runner.agent.hparam_values() == before
    rej = _lines(r.rd.rejections)
    assert len(rej) == 1 and rej[0]["field"] == field and words in rej[0]["reason"]
    assert not r.rd.changes.exists()
    # the file stays as the user wrote it (the runner never rewrites it), and is not refused
    # again until it changes
    assert yaml.safe_load(r.rd.control.read_text())["hparams"][field] == value
    assert r.runner.poll_control() == [] and len(_lines(r.rd.rejections)) == 1


def test_broken_yaml_is_rejected_and_training_goes_on(make_runner):
    r = make_runner(steps=1024)
    r.rd.control.write_text("hparams: {gamma: [0.9\ncommand: stop\n")
    r.runner.poll_control()
    rej = _lines(r.rd.rejections)
    assert rej and "invalid YAML" in rej[0]["reason"] and "control.yaml" in rej[0]["reason"]
    summary = r.train()
    assert summary["status"] == "completed" and summary["steps"] >= 1024
    assert r.runner.agent.hparam_values()["gamma"] == 0.99


def test_stop_command_saves_and_exits(make_runner):
    r = make_runner(steps=100_000)
    data = yaml.safe_load(r.rd.control.read_text())
    data["command"] = "stop"
    r.rd.control.write_text(yaml.safe_dump(data))
    summary = r.train()
    assert summary["status"] == "stopped"
    assert summary["steps"] == 64 * 2  # stopped at the first iteration boundary
    assert (r.rd.checkpoints / "latest").exists()


def test_edit_control_validates_before_writing(tmp_path, make_runner):
    r = make_runner()
    original = r.rd.control.read_text()
    with pytest.raises(HParamError, match="gamma"):
        edit_control(r.rd.control, PPO_HPARAMS, {"gamma": 2})
    assert r.rd.control.read_text() == original
    edit_control(r.rd.control, PPO_HPARAMS, {"gamma": 0.97}, "checkpoint")
    data = yaml.safe_load(r.rd.control.read_text())
    assert data["hparams"]["gamma"] == 0.97 and data["command"] == "checkpoint"
    r.runner.poll_control()
    assert r.runner.agent.hparam_values()["gamma"] == 0.97
    assert r.runner.last_checkpoint is not None and r.runner.last_checkpoint.exists()


@pytest.mark.parametrize("algo,env,field,good,bad", [
    ("ppo", "CartPole-v1", "clip_range", "lin:0.3->0.1", -1),
    ("a2c", "CartPole-v1", "gae_lambda", 0.9, 2),
    ("sac", "Pendulum-v1", "tau", 0.01, 5),
    ("dqn", "CartPole-v1", "per_beta", "lin:0.4->1", -0.5),
])
def test_cli_control_validates_with_the_algorithms_own_fields(tmp_path, algo, env, field, good,
                                                              bad):
    from click.testing import CliRunner

    import cli as cli_module
    from rlcore.config import resolve_configs
    from rlcore.runs import RunDir
    from rlcore.training import TrainingRun

    run, cfg = resolve_configs({"algo": algo, "env": env, "n_envs": 1, "progress": False,
                                "control_settle_s": 0.0})
    rd = RunDir(tmp_path / algo).create()
    runner = TrainingRun(run, cfg, rd)
    res = CliRunner().invoke(cli_module.cli, ["control", str(rd.path), "--set", f"{field}={good}"])
    assert res.exit_code == 0, res.output
    assert yaml.safe_load(rd.control.read_text())["hparams"][field] == good
    res = CliRunner().invoke(cli_module.cli, ["control", str(rd.path), "--set", f"{field}={bad}"])
    assert res.exit_code != 0 and field in res.output
    runner.runner.poll_control()
    assert runner.runner.agent.hparam_schedules()[field] == good
    runner.runner.envs.close()
