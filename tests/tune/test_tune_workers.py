"""Studies across processes: resume after ``kill -9`` with no trial lost or duplicated, two
worker processes on one journal file, two workers on a real PostgreSQL server, and Ray tasks on
one machine."""

from __future__ import annotations

import dataclasses
import glob
import multiprocessing as mp
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections import Counter

import optuna
import pytest
from optuna.trial import TrialState

from rlcore.tune.study import make_storage
from tests.tune.tune_helpers import load, run_tune, tune_cmd


def _check_whole(study, trials: int) -> None:
    """``trials`` finished trials, numbered once each; every killed one retried exactly once,
    with the values it had drawn."""
    numbers = [t.number for t in study.trials]
    assert len(numbers) == len(set(numbers))
    done = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(done) == trials
    failed = [t for t in study.trials if t.state == TrialState.FAIL]
    retries = Counter(t.user_attrs.get("retry_of") for t in done if "retry_of" in t.user_attrs)
    for f in failed:
        assert "died" in f.user_attrs["reason"] and retries[f.number] == 1
        (retry,) = [t for t in done if t.user_attrs.get("retry_of") == f.number]
        assert f.params.items() <= retry.params.items()  # what it had drawn before it died
    assert not [t for t in study.trials if t.state == TrialState.RUNNING]


def test_resume_after_kill_9_loses_and_duplicates_no_trial(tmp_path):
    cmd = tune_cmd(tmp_path, "--pruner", "none", trials=4, steps=1024)
    p = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    for line in p.stderr:  # the progress lines: kill while the third trial runs
        if "2/4 done" in line:
            break
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(
            t.state == TrialState.RUNNING and "pid" in t.user_attrs for t in load(tmp_path).trials):
        time.sleep(0.05)
    p.kill()
    p.wait()
    before = load(tmp_path)
    assert sum(t.state == TrialState.COMPLETE for t in before.trials) >= 2
    killed = [t.number for t in before.trials if t.state == TrialState.RUNNING]
    assert killed, "the study was killed between trials"
    res = run_tune(tmp_path, "--pruner", "none", trials=4, steps=1024)
    assert all(f"trial {n} was left running" in res.stderr for n in killed)
    study = load(tmp_path)
    _check_whole(study, 4)
    assert [t.number for t in study.trials if t.state == TrialState.FAIL] == killed


def test_two_worker_processes_share_one_journal(tmp_path):
    run_tune(tmp_path, "--workers", "2", "--pruner", "none", trials=4, steps=1024)
    study = load(tmp_path)
    _check_whole(study, 4)
    assert len({t.user_attrs["pid"] for t in study.trials}) == 2
    assert os.getpid() not in {t.user_attrs["pid"] for t in study.trials}


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1][0] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False


def test_killing_the_command_ends_its_workers(tmp_path):
    cmd = tune_cmd(tmp_path, "--workers", "2", "--pruner", "none", trials=40, steps=4096)
    p = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, pids = time.monotonic() + 120, set()
    while time.monotonic() < deadline and len(pids) < 2 and p.poll() is None:
        time.sleep(0.2)
        try:
            pids = {t.user_attrs["pid"] for t in load(tmp_path).trials if "pid" in t.user_attrs}
        except Exception:  # the journal is being created
            continue
    assert len(pids) == 2, "the workers did not start trials"
    p.kill()
    p.wait()
    deadline = time.monotonic() + 30  # far less than the 38 trials left would take
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.2)
    assert not [pid for pid in pids if _alive(pid)], "workers outlived the killed command"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgres_url():
    """A PostgreSQL server of Debian's ``postgresql`` package in a temporary folder, on a free
    127.0.0.1 port, run as ``nobody`` when the tests run as root (postgres refuses root)."""
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        pytest.skip("PostgreSQL is not installed (Debian's postgresql package; .ci/run "
                    "installs it)")
    psycopg2 = pytest.importorskip("psycopg2", reason="psycopg2-binary (the dev extra)")
    bindir = os.path.dirname(bins[-1])
    as_user: list[str] = []
    if os.geteuid() == 0:
        if not shutil.which("runuser"):
            pytest.skip("running as root and runuser is missing: postgres refuses to run as root")
        as_user = ["runuser", "-u", "nobody", "--"]
    d = tempfile.mkdtemp(prefix="tune-pg-")
    os.chmod(d, 0o755)
    if as_user:
        shutil.chown(d, "nobody")
    data, port = os.path.join(d, "data"), _free_port()
    ctl = [*as_user, os.path.join(bindir, "pg_ctl"), "-D", data]
    try:
        subprocess.run([*as_user, os.path.join(bindir, "initdb"), "-D", data, "-U", "postgres",
                        "--auth=trust", "-E", "UTF8"], check=True, capture_output=True, cwd=d)
        subprocess.run([*ctl, "-o", f"-p {port} -k {d} -c listen_addresses=127.0.0.1", "-l",
                        os.path.join(d, "log"), "-w", "start"], check=True, capture_output=True,
                       cwd=d)
        conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
        conn.autocommit = True
        conn.cursor().execute("CREATE DATABASE optuna")
        conn.close()
        yield f"postgresql://postgres@127.0.0.1:{port}/optuna"
    finally:
        subprocess.run([*ctl, "-m", "immediate", "stop"], capture_output=True, cwd=d)
        shutil.rmtree(d, ignore_errors=True)


def test_postgresql_storage_with_two_workers(tmp_path, postgres_url):
    run_tune(tmp_path, "--workers", "2", "--storage", postgres_url, "--pruner", "none",
             trials=4, steps=1024)
    study = load(tmp_path, postgres_url)
    _check_whole(study, 4)
    assert len({t.user_attrs["pid"] for t in study.trials}) == 2
    assert not (tmp_path / "studies" / "s" / "journal.log").exists()


def test_ray_backend_runs_trials_on_one_machine(tmp_path):
    pytest.importorskip("ray", reason="the ray extra: pip install -e \".[ray]\"")
    run_tune(tmp_path, "--backend", "ray", "--workers", "2", "--pruner", "none", trials=2, steps=1024)
    study = load(tmp_path)
    _check_whole(study, 2)
    assert os.getpid() not in {t.user_attrs["pid"] for t in study.trials}


def _instant_spec(tmp_path, trials: int, storage: str = "", study: str = "s"):
    from rlcore.tune.spec import TuneSpec

    return TuneSpec(folder=str(tmp_path / "studies" / study), study=study, overrides={},
                    space={}, trials=trials, storage=storage, pruner="none",
                    objective="tests.tune.tune_helpers:Instant")


def _start_together(spec, barrier) -> None:
    from rlcore.tune.study import work

    barrier.wait()
    work(spec, 0, echo=lambda s: None)


@pytest.mark.parametrize("storage", ["journal", "postgresql"])
def test_workers_started_at_one_instant_never_overshoot_the_count(tmp_path, storage, request):
    """Four processes released by one barrier, for studies of 1, 2 and 3 trials: each study ends
    with exactly its count (counting and starting happen under one claim)."""
    url = request.getfixturevalue("postgres_url") if storage == "postgresql" else ""
    ctx = mp.get_context("fork")
    for trials in (1, 2, 3):
        spec = _instant_spec(tmp_path, trials, url, study=f"s{trials}")
        barrier = ctx.Barrier(4)
        procs = [ctx.Process(target=_start_together, args=(spec, barrier)) for _ in range(4)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(120)
        assert [p.exitcode for p in procs] == [0] * 4
        study = optuna.load_study(study_name=spec.study,
                                  storage=make_storage(spec.storage, spec.folder))
        assert [t.state for t in study.trials] == [TrialState.COMPLETE] * trials


def test_a_trial_killed_while_it_was_the_last_is_run_again(tmp_path):
    """Two of three trials done, the third's worker dead: the next worker runs the retry even
    though complete + queued already make three."""
    from rlcore.tune.study import open_study, reap_dead, work

    spec = _instant_spec(tmp_path, 2)
    assert work(spec, echo=lambda s: None) == 2
    study = open_study(spec)
    dead = subprocess.Popen(["true"])
    dead.wait()
    trial = study.ask()
    trial.suggest_float("x", 0.0, 1.0)
    trial.set_user_attr("pid", dead.pid)
    trial.set_user_attr("host", socket.gethostname())
    assert reap_dead(study) == [2]
    spec3 = dataclasses.replace(spec, trials=3)
    assert work(spec3, echo=lambda s: None) == 1
    study = open_study(spec3)
    _check_whole(study, 3)
