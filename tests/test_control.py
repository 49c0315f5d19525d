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


# -- the issue-14 cases, one by one: each is a rejection with a short reason, never a crash ----

def _poll_rejects(r, text: bytes | None = None, *words):
    """Write ``text`` (bytes) as the control file, poll, and return the new rejection."""
    n = len(_lines(r.rd.rejections))
    if text is not None:
        r.rd.control.write_bytes(text)
    before = r.runner.agent.hparam_values()
    assert r.runner.poll_control() == []
    assert r.runner.agent.hparam_values() == before
    rej = _lines(r.rd.rejections)[n:]
    assert len(rej) >= 1, "no rejection logged"
    for w in words:
        assert any(w in x["reason"] for x in rej), (w, rej)
    assert all(len(json.dumps(x)) < 1500 for x in rej)  # reasons and values are cut short
    return rej


@pytest.mark.parametrize("field,value,words", [
    ("learning_rate", "lin:0.001->0.0001@inf", "not finite"),
    ("learning_rate", "lin:0.001->0.0001@nan", "not finite"),
    ("learning_rate", "lin:0.001->0.0001@1e400", "not finite"),
    ("learning_rate", {"type": "pw", "points": 5}, "list of [step, value] pairs"),
    ("learning_rate", {"type": "pw", "points": [1, 2]}, "list of [step, value] pairs"),
    ("n_epochs", 10**50, "out of range"),
    ("learning_rate", "pw:-inf=0.0003,inf=0.0003", "not finite"),
    ("learning_rate", "pw:0=0.0003,nan=0.0001", "not finite"),
    ("gamma", "9" * 20_000, "not finite"),
])
def test_the_values_that_killed_runs_are_refused(make_runner, field, value, words):
    r = make_runner()
    data = yaml.safe_load(r.rd.control.read_text())
    data["hparams"][field] = value
    rej = _poll_rejects(r, yaml.safe_dump(data).encode(), words)
    assert rej[-1]["field"] == field


@pytest.mark.parametrize("case,words", [
    ("latin1", "not UTF-8"), ("binary", ""), ("alias_bomb", "aliases"), ("empty", "empty"),
    ("directory", "a directory"), ("fifo", "a FIFO"), ("huge", "bytes"),
])
def test_files_that_killed_or_hung_runs_are_refused(make_runner, case, words):
    import os

    r = make_runner()
    path = r.rd.control
    good = path.read_bytes()
    if case == "latin1":
        text = good + "# caf\xe9\n".encode("latin-1")
    elif case == "binary":
        text = bytes(range(256)) * 4
    elif case == "alias_bomb":
        lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
        lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i-1}"] * 9) + "]" for i in range(1, 9)]
        text = ("\n".join(lines) + "\nhparams: {gamma: *a8}\n").encode()  # 360 bytes
    elif case == "empty":
        text = b""
    elif case == "huge":
        text = good + b"#" * (10 * 2**20)
    else:
        text = None
        path.unlink()
        path.mkdir() if case == "directory" else os.mkfifo(path)
    _poll_rejects(r, text, words)  # a FIFO is never opened: this returns at once
    assert r.train()["status"] == "completed"  # and the run trains on


def test_a_two_chunk_write_in_place_is_read_only_once_complete(make_runner):
    r = make_runner(control_settle_s=1.0)
    now = {"t": 0.0}
    r.runner.control.clock = lambda: now["t"]
    path = r.rd.control
    text = path.read_text().replace("learning_rate: 0.0003", "learning_rate: 0.0001098")
    cut = text.index("0.0001098") + len("0.0")
    with open(path, "w") as f:  # in place, as an editor that writes in two chunks
        f.write(text[:cut])  # "... learning_rate: 0.0" for now
        f.flush()
        now["t"] = path.stat().st_mtime + 0.2  # 0.2 s later the runner comes by
        assert r.runner.poll_control() == []
        assert r.runner.agent.hparam_values()["learning_rate"] == 3e-4
        f.write(text[cut:])
    now["t"] = path.stat().st_mtime + 1.5  # settled
    (ch,) = r.runner.poll_control()
    assert ch.field == "learning_rate" and r.runner.agent.hparam_values()["learning_rate"] == \
        pytest.approx(1.098e-4)
    r.runner.envs.close()


def test_two_cli_writers_at_the_same_instant_lose_nothing(make_runner):
    import threading

    r = make_runner()
    values = {s.name: s for s in PPO_HPARAMS if s.kind is float and s.high is not None}
    sets = {name: (s.low or 0.0) / 2 + s.high / 2 for name, s in values.items()}
    barrier = threading.Barrier(len(sets))

    def edit(name, value):
        barrier.wait()
        edit_control(r.rd.control, PPO_HPARAMS, {name: value})

    threads = [threading.Thread(target=edit, args=kv) for kv in sets.items()]
    [t.start() for t in threads]
    [t.join() for t in threads]
    in_file = yaml.safe_load(r.rd.control.read_text())["hparams"]
    assert {k: in_file[k] for k in sets} == sets  # every update landed
    r.runner.envs.close()


def test_a_command_runs_once_and_not_again_after_a_resume(make_runner):
    r = make_runner(steps=1024)
    edit_control(r.rd.control, PPO_HPARAMS, {}, "stop")
    assert r.train()["status"] == "stopped"
    edit_control(r.rd.control, PPO_HPARAMS, {"gamma": 0.98})  # the file still says stop
    r2 = make_runner(resume_dir=r.rd.path, steps=1024)
    summary = r2.train()
    assert summary["status"] == "completed" and summary["steps"] == 1024
    assert r2.runner.agent.hparam_values()["gamma"] == 0.98
    # a new stop (a new command_id) stops the resumed run again
    edit_control(r.rd.control, PPO_HPARAMS, {}, "stop")
    r3 = make_runner(resume_dir=r.rd.path, steps=4096)
    assert r3.train()["status"] == "stopped" and r3.runner.step < 4096


def test_cli_control_bad_mapping_is_a_message(make_runner):
    from click.testing import CliRunner

    import cli as cli_module

    r = make_runner()
    res = CliRunner().invoke(cli_module.cli, ["control", str(r.rd.path), "--set",
                                              "learning_rate={type: pw, points: 5}"])
    assert res.exit_code == 1 and "learning_rate" in res.output
    assert isinstance(res.exception, SystemExit) and "Traceback" not in res.output
    r.runner.envs.close()


def test_sac_target_entropy_is_bounded():
    from rlcore.sac import sac_hparam_specs

    (spec,) = [s for s in sac_hparam_specs(True) if s.name == "target_entropy"]
    with pytest.raises(HParamError, match="out of range"):
        from rlcore.hparams import check_value

        check_value(spec, 1e300)
