"""Run folders and checkpoints: a failed start leaves nothing, folders are claimed atomically,
checkpoints are periodic by default, pruned, and survive corruption; a resume rolls back what the
lost process did after its checkpoint; summaries are strict JSON; diverging updates roll back."""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner

import cli as cli_module
from rlcore.config import RunConfig
from rlcore.io import locked
from rlcore.runs import RunDir, run_status
from rlcore.training import MAX_ROLLBACKS, claim_run_dir


def _strict(text: str):
    """json.loads that refuses NaN and Infinity (what other JSON readers do)."""
    def bad(c):
        raise ValueError(f"non-standard JSON constant {c}")
    return json.loads(text, parse_constant=bad)


def _cli(*args: str):
    return CliRunner().invoke(cli_module.cli, list(args), catch_exceptions=True)


@pytest.mark.parametrize("args,words", [
    (["--env", "Nope-v0"], "Nope"),
    (["--env", "CartPole-v1", "--set", "gamma=abc"], "gamma"),
    (["--algo", "dqn", "--env", "Pendulum-v1"], "Discrete"),
    (["--env", "CartPole-v1", "--steps", "0"], "steps"),
    (["--env", "CartPole-v1", "--steps", "-5"], "steps"),
    (["--env", "CartPole-v1", "--set", "n_envs=0"], "n_envs"),
    (["--env", "CartPole-v1", "--device", "cuda"], "CUDA"),
], ids=["bad-env", "bad-value", "dqn-continuous", "steps-0", "steps-negative", "n-envs-0",
        "cuda-missing"])
def test_a_failed_start_leaves_no_folder(tmp_path, args, words):
    if "cuda" in args and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    runs = tmp_path / "runs"
    res = _cli("train", *args, "--runs-dir", str(runs), "--no-progress")
    assert res.exit_code == 1 and words in res.output, res.output
    assert "Traceback" not in res.output and isinstance(res.exception, SystemExit)
    assert not runs.exists() or list(runs.iterdir()) == []


def test_resume_of_a_folder_that_is_not_a_run_says_so(tmp_path):
    (tmp_path / "empty").mkdir()
    res = _cli("train", "--resume", str(tmp_path / "empty"))
    assert res.exit_code == 1 and "not a run folder (no config.yaml)" in res.output
    assert "Errno" not in res.output


def test_run_folders_are_claimed_atomically(tmp_path):
    run = RunConfig(algo="ppo", env="CartPole-v1", runs_dir=str(tmp_path), progress=False)
    barrier, claimed, errors = threading.Barrier(8), [], []

    def claim():
        barrier.wait()
        claimed.append(claim_run_dir(run).path)

    threads = [threading.Thread(target=claim) for _ in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(set(claimed)) == 8  # eight runs started at the same instant: eight folders

    same = tmp_path / "one"
    barrier = threading.Barrier(8)

    def create():
        barrier.wait()
        try:
            RunDir(same).create()
            claimed.append(same)
        except FileExistsError as e:
            errors.append(str(e))

    claimed.clear()
    threads = [threading.Thread(target=create) for _ in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(claimed) == 1 and len(errors) == 7
    assert all("already used" in e or "not empty" in e for e in errors)


def test_checkpoints_are_on_by_default_and_shown():
    run = RunConfig()
    assert run.checkpoint_every > 0 and run.checkpoint_minutes > 0 and run.keep_checkpoints >= 2
    res = _cli("train", "--help")
    assert f"checkpoint_every={run.checkpoint_every}" in res.output
    assert f"checkpoint_minutes={run.checkpoint_minutes:g}" in res.output


def test_config_yaml_shows_the_checkpoint_defaults(make_runner):
    r = make_runner()
    cfg = yaml.safe_load(r.rd.config.read_text())["run"]
    assert cfg["checkpoint_every"] == RunConfig().checkpoint_every
    assert cfg["checkpoint_minutes"] == RunConfig().checkpoint_minutes
    r.runner.envs.close()


def test_time_based_checkpoints_at_every_due_boundary(make_runner):
    # a period of ~0 minutes makes every boundary due: the count is exact, no timing involved
    r = make_runner(steps=640, checkpoint_every=0, checkpoint_minutes=1e-12, keep_checkpoints=2)
    written = []
    inner = r.runner.checkpointer
    r.runner.checkpointer = lambda st, step: written.append(step) or inner(st, step)
    r.train()
    # rollouts of 64 x 2 envs: boundaries at 128..640; periodic ones before the end, then the
    # final checkpoint at 640
    assert written == [128, 256, 384, 512, 640]
    assert [p.name for p in r.rd.checkpoint_files()] == ["step_000000000640.pt",
                                                         "step_000000000512.pt"]


def test_step_checkpoints_are_pruned_and_temp_files_cleaned(make_runner):
    r = make_runner(steps=1024, checkpoint_every=256, keep_checkpoints=3)
    r.train()
    assert [p.name for p in r.rd.checkpoint_files()] == [
        "step_000000001024.pt", "step_000000000768.pt", "step_000000000512.pt"]
    stale = [r.rd.checkpoints / ".step_000000000999.pt.abc123.tmp", r.rd.path / ".summary.json.x.tmp"]
    for p in stale:
        p.write_bytes(b"half a file")
    r2 = make_runner(resume_dir=r.rd.path, steps=1280, checkpoint_every=256)
    assert not any(p.exists() for p in stale)
    assert r2.train()["steps"] == 1280


def test_resume_falls_back_to_the_newest_intact_checkpoint(make_runner, capsys):
    r = make_runner(steps=768, checkpoint_every=256, keep_checkpoints=3)
    r.train()
    newest, second = r.rd.checkpoint_files()[:2]
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # a torn write
    (r.rd.checkpoints / "latest").write_bytes(b"\xff\x00garbage")  # and a damaged pointer
    r2 = make_runner(resume_dir=r.rd.path, steps=1024, checkpoint_every=256)
    assert r2.runner.step == 512 and r2.runner.last_checkpoint == second
    err = capsys.readouterr().err
    assert f"skipped {newest.name}" in err and "from step_000000000512.pt (step 512)" in err
    assert not newest.exists()  # the torn file of the lost future is gone
    summary = r2.train()
    assert summary["steps"] == 1024 and summary["status"] == "completed"


def test_resume_takes_the_newest_file_when_latest_is_one_behind(make_runner, capsys):
    """A kill between a checkpoint's rename and the ``latest`` write leaves the pointer naming the
    one before (CI's kill test landed there): resume takes the newer, intact file and keeps it."""
    r = make_runner(steps=768, checkpoint_every=256, keep_checkpoints=3)
    r.train()
    newest, second = r.rd.checkpoint_files()[:2]
    (r.rd.checkpoints / "latest").write_text(second.name + "\n")
    r2 = make_runner(resume_dir=r.rd.path, steps=1024, checkpoint_every=256)
    assert r2.runner.step == 768 and r2.runner.last_checkpoint == newest
    assert newest.exists() and "from step_000000000768.pt (step 768)" in capsys.readouterr().err
    r2.runner.envs.close()


def test_resume_with_latest_naming_a_missing_file(make_runner):
    r = make_runner(steps=512, checkpoint_every=256)
    r.train()
    (r.rd.checkpoints / "latest").write_text("step_000000099999.pt\n")
    r2 = make_runner(resume_dir=r.rd.path, steps=640)
    assert r2.runner.step == 512
    r2.runner.envs.close()


def test_no_checkpoint_at_all_is_a_clear_error(make_runner):
    r = make_runner(steps=512)
    for p in r.rd.checkpoints.iterdir():
        p.unlink()
    with pytest.raises(FileNotFoundError, match="no checkpoint to resume from"):
        make_runner(resume_dir=r.rd.path)
    r.runner.envs.close()


def test_resume_rolls_back_the_changes_made_after_the_checkpoint(make_runner):
    r = make_runner(steps=512, checkpoint_every=256)
    r.runner.apply_change("gamma", 0.98, "test")  # at step 0: kept
    r.train()
    with open(r.rd.changes, "a") as f:  # what a killed process logged after its checkpoint
        f.write(json.dumps({"step": 600, "field": "gamma", "old": 0.98, "new": 0.9,
                            "source": "control"}) + "\n")
        f.write('{"step": 640, "field": "gam')  # and a torn line
    r2 = make_runner(resume_dir=r.rd.path, steps=768)
    lines = [json.loads(x) for x in r.rd.changes.read_text().splitlines()]
    assert [(x["step"], x["new"]) for x in lines] == [(0, 0.98)]
    assert r2.runner.agent.hparam_values()["gamma"] == 0.98
    r2.runner.envs.close()


def test_resuming_to_no_more_steps_is_refused(make_runner):
    r = make_runner(steps=256)
    r.train()
    with pytest.raises(ValueError, match=r"has done 256 of 256 steps; pass --steps N with N > 256"):
        make_runner(resume_dir=r.rd.path, steps=256)
    res = _cli("train", "--resume", str(r.rd.path), "--steps", "100", "--no-progress")
    assert res.exit_code == 1 and "has done 256 of 100 steps" in res.output


def test_interrupt_saves_a_resumable_run_with_strict_json(make_runner):
    r = make_runner(steps=1024)
    r.runner.stop_requested = "SIGINT"  # what the signal handler sets
    summary = r.train()
    assert summary["status"] == "interrupted" and summary["interrupted_by"] == "SIGINT"
    text = r.rd.summary.read_text()
    data = _strict(text)  # no bare NaN: the mean return of no episode is null
    assert data["train_return_mean_100"] is None and data["steps"] == 0
    assert (r.rd.checkpoints / "latest").exists()
    assert run_status(r.rd.path)[1] == "interrupted"
    r2 = make_runner(resume_dir=r.rd.path, steps=256)
    assert r2.train()["status"] == "completed"


def test_wall_time_of_a_resumed_run_includes_the_first_session(make_runner):
    r = make_runner(steps=512, checkpoint_every=256)
    first = r.train()["wall_s"]
    mid = torch.load(r.rd.checkpoints / "step_000000000256.pt", weights_only=False)
    assert 0 < mid["wall_s"] <= first  # a periodic checkpoint counts the running session
    r2 = make_runner(resume_dir=r.rd.path, steps=640)
    assert r2.train()["wall_s"] > first


def test_runs_lists_every_status(make_runner, tmp_path):
    done = make_runner(steps=128)
    done.train()
    killed = make_runner(steps=512, checkpoint_every=128)
    killed.runner.run(256)
    killed.runner.checkpoint()
    killed.runner.envs.close()
    failed = make_runner(steps=128)
    failed.runner.agent.update = lambda: (_ for _ in ()).throw(RuntimeError("boom"))
    with pytest.raises(RuntimeError):
        failed.train()
    assert run_status(done.rd.path)[1] == "completed"
    assert run_status(killed.rd.path)[1] == "killed (resumable)"
    assert run_status(failed.rd.path)[1] == "failed"
    assert _strict(failed.rd.summary.read_text())["error"] == "RuntimeError: boom"
    with locked(done.rd.checkpoints):
        assert run_status(done.rd.path)[1] == "running"
    out = _cli("runs", "--runs-dir", str(tmp_path)).output
    assert "killed (resumable)" in out and "failed" in out and "completed" in out


def test_a_second_process_cannot_train_the_same_run(make_runner):
    r = make_runner(steps=128)
    with locked(r.rd.checkpoints):
        with pytest.raises(ValueError, match="another process is training this run"):
            r.train()


def test_non_finite_losses_roll_back_to_the_last_checkpoint(make_runner):
    r = make_runner(steps=1024, checkpoint_every=256)
    agent, real_update, calls = r.runner.agent, r.runner.agent.update, []

    def update():
        calls.append(r.runner.step)
        out = real_update()
        if len(calls) == 5:  # the 5th update diverges (at step 640, after the 512 checkpoint)
            out = {**out, "losses/policy": math.nan}
        return out

    agent.update = update
    summary = r.train()
    assert summary["status"] == "completed" and summary["steps"] == 1024
    rej = [json.loads(x) for x in r.rd.rejections.read_text().splitlines()]
    assert rej[-1]["field"] == "run" and "rolled back to step_000000000512.pt" in rej[-1]["reason"]
    assert calls[:6] == [128, 256, 384, 512, 640, 640]  # the clock went back to 512


def test_a_run_that_keeps_diverging_fails_with_a_summary(make_runner):
    r = make_runner(steps=2048, checkpoint_every=128)
    real = r.runner.agent.update
    r.runner.agent.update = lambda: {**real(), **({"losses/policy": math.nan}
                                                  if r.runner.step > 256 else {})}
    with pytest.raises(FloatingPointError):
        r.train()
    data = _strict(r.rd.summary.read_text())
    assert data["status"] == "failed" and "non-finite" in data["error"]
    rej = [json.loads(x) for x in r.rd.rejections.read_text().splitlines()]
    assert sum(x["field"] == "run" for x in rej) == MAX_ROLLBACKS


def test_train_cli_failure_mid_run_is_a_message(tmp_path, monkeypatch):
    import rlcore.training as training

    def boom(self, until):
        raise FloatingPointError("step 128: non-finite losses/policy")

    monkeypatch.setattr(training.TrainingRun, "_run_rolling_back", boom)
    res = _cli("train", "--env", "CartPole-v1", "--steps", "256", "--runs-dir", str(tmp_path),
               "--no-progress")
    assert res.exit_code == 1 and "training failed: FloatingPointError" in res.output
    assert "--resume" in res.output and "Traceback" not in res.output
    (folder,) = tmp_path.iterdir()
    assert _strict((folder / "summary.json").read_text())["status"] == "failed"
    Path(folder)  # the folder stays: it holds the checkpoints to resume from
